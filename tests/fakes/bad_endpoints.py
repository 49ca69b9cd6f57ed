"""Servers on 127.0.0.1 that are not (quite) an OpenAI-compatible endpoint, as a new user
meets them: a closed port, a web app's own 404s (FastAPI's `{"detail":"Not Found"}`, an
HTML page), an HTML page answered with 200, a model the server does not have (Ollama's
shape), and a server that accepts the request and never answers."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from tests.fakes.server import ThreadedServer


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BadEndpoint(ThreadedServer):
    """`/<mode>/v1/chat/completions` answers in that mode: fastapi_404, html_404,
    html_200, ollama_no_model, openai_no_model, hang."""

    def build_routes(self, app: web.Application) -> None:
        app.router.add_post("/{mode}/v1/chat/completions", self._chat)
        app.router.add_route("*", "/{tail:.*}", self._fastapi_not_found)

    def url(self, mode: str) -> str:
        return f"{self.base_url}/{mode}/v1"

    async def _fastapi_not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        mode = request.match_info["mode"]
        if mode == "fastapi_404":
            return await self._fastapi_not_found(request)
        if mode == "html_404":
            return web.Response(text="<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
                                status=404, content_type="text/html")
        if mode == "html_200":
            return web.Response(text="<!DOCTYPE html><html><body>Welcome to my web UI</body></html>",
                                content_type="text/html")
        if mode == "ollama_no_model":
            return web.json_response({"error": "model \"qwen3:8b\" not found, try pulling it first"}, status=404)
        if mode == "openai_no_model":
            return web.json_response({"error": {"message": "The model `gpt-9` does not exist or you do not have "
                                                           "access to it.", "type": "invalid_request_error",
                                                "code": "model_not_found"}}, status=404)
        if mode == "hang":
            await asyncio.sleep(3600)
        return web.json_response({"error": {"message": f"unknown mode {mode}"}}, status=500)
