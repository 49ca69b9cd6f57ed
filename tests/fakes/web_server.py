"""A fake web server on 127.0.0.1 for the link-fetching tests.

Tests script pages with `page()` (body, content type, status, extra headers, an
optional delay) and redirects with `redirect()`; every request the server receives
is recorded in `requests` as (method, path, headers), so a test can prove that a
refused link never reached it. Unscripted paths answer 404.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .server import ThreadedServer


@dataclass
class _Page:
    body: bytes
    content_type: str | None
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunks: int = 1


class FakeWebServer(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self._pages: dict[str, _Page] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def page(
        self,
        path: str,
        body: bytes | str,
        content_type: str | None = "text/html; charset=utf-8",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        chunks: int = 1,
    ) -> str:
        """Serve `body` at `path`; returns the page's full URL. chunks > 1 streams it
        without a Content-Length, in that many pieces; delay > 0 drips whitespace
        for that many seconds before the body."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self._pages[path] = _Page(data, content_type, status, dict(headers or {}), delay, chunks)
        return self.base_url + path

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.page(path, b"", None, status=status, headers={"Location": location})

    def build_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self.lock:
            self.requests.append((request.method, request.path_qs, dict(request.headers)))
            page = self._pages.get(request.path)
        if page is None:
            return web.Response(status=404, text="not found")
        if page.delay:
            return await self._drip(request, page)
        if page.chunks <= 1:
            response = web.Response(status=page.status, body=page.body, headers=page.headers)
            if page.content_type:
                response.headers["Content-Type"] = page.content_type
            return response
        stream = web.StreamResponse(status=page.status, headers=page.headers)
        if page.content_type:
            stream.headers["Content-Type"] = page.content_type
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        size = max(1, len(page.body) // page.chunks + 1)
        for start in range(0, len(page.body), size):
            await stream.write(page.body[start : start + size])
        await stream.write_eof()
        return stream

    async def _drip(self, request: web.Request, page: _Page) -> web.StreamResponse:
        """Send headers, then one byte every 50 ms for `delay` seconds, then the body.

        A client that gives up makes the next write fail, which ends the handler
        instead of leaving it sleeping when the server stops.
        """
        stream = web.StreamResponse(status=page.status, headers=page.headers)
        if page.content_type:
            stream.headers["Content-Type"] = page.content_type
        await stream.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + page.delay
        try:
            while loop.time() < deadline:
                await stream.write(b" ")
                await asyncio.sleep(0.05)
            await stream.write(page.body)
            await stream.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up
        return stream


class NameMap:
    """A resolver (for `fetch_url`'s `resolver`) that maps host names to fixed addresses
    and records the lookups."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.names:
            raise OSError(f"unknown host {host}")
        return self.names[host]
