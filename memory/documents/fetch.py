"""Downloading a link a user sent, safely: bounded in size, time and redirects, and
never towards the bot's own network.

Each hop (the URL, then every redirect target, followed by hand up to
`max_redirects`) is resolved first with the injectable `resolver`, and every
address it yields must pass the `AddressPolicy` before any connection is made. The
connection then goes to exactly those vetted addresses: aiohttp gets a resolver
that answers only with what was pinned for that host, so a DNS answer that changes
between the check and the connect (DNS rebinding) cannot slip through. IP-literal
hosts are checked as they are. Environment proxies are ignored (a proxy would make
the address check meaningless).

Size: a declared Content-Length over the limit is refused before reading; the body
is then read in chunks and cut off at `max_document_bytes`. Compression is undone
here (aiohttp's automatic decompression is off) with a bounded zlib loop, so a
gzip bomb stops at the limit instead of filling memory. Time: the whole download,
redirects included, runs under one `fetch_timeout_seconds` deadline, and each
connection attempt under `fetch_connect_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .addresses import PUBLIC_ONLY, AddressPolicy
from .errors import DocumentError, ErrorCode
from .limits import DEFAULT_LIMITS, DocumentLimits

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""async (host, port) -> IP address strings. Tests inject one mapping names to addresses."""

_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
_HEADERS = {
    "User-Agent": "Mozilla/5.0 (compatible; companion-bot document fetcher)",
    "Accept": "text/html,application/xhtml+xml,text/plain,application/pdf,application/epub+zip,*/*;q=0.5",
    "Accept-Encoding": "gzip, deflate",
}
_ZLIB_WINDOW = {"gzip": 31, "x-gzip": 31, "deflate": 47}  # 47: zlib or gzip header, detected


@dataclass(frozen=True, slots=True)
class FetchedResource:
    url: str  # the final URL, after redirects
    content_type: str  # the media type without parameters, lower case; "" if none was sent
    charset: str | None  # the charset parameter of Content-Type, if any
    data: bytes
    filename: str  # from Content-Disposition, else the URL's last path segment, else the host


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (getaddrinfo), all address families."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def fetch_url(
    url: str,
    limits: DocumentLimits = DEFAULT_LIMITS,
    *,
    resolver: Resolver | None = None,
    policy: AddressPolicy = PUBLIC_ONLY,
) -> FetchedResource:
    """Download `url` within `limits`; DocumentError on refusal or failure."""
    try:
        async with asyncio.timeout(limits.fetch_timeout_seconds):
            return await _fetch(url, limits, resolver or system_resolver, policy)
    except TimeoutError:
        raise DocumentError(
            ErrorCode.TIMEOUT,
            f"The link took longer than {limits.fetch_timeout_seconds:g} seconds to download. Try again later, "
            "or download the file and send it.",
        ) from None
    except aiohttp.ClientError as error:
        raise DocumentError(ErrorCode.FETCH_FAILED, f"The link could not be downloaded ({_describe(error)}).") from error


async def _fetch(url: str, limits: DocumentLimits, resolver: Resolver, policy: AddressPolicy) -> FetchedResource:
    current = parse_link(url)
    pinned = _PinnedResolver()
    connector = aiohttp.TCPConnector(resolver=pinned, use_dns_cache=False, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=limits.fetch_connect_timeout_seconds)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, trust_env=False, headers=_HEADERS
    ) as session:
        for _ in range(limits.max_redirects + 1):
            pinned.pin(current.raw_host or "", await _vetted_addresses(current, resolver, policy))
            async with session.get(current, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    current = _redirect_target(current, response)
                    continue
                if not 200 <= response.status < 300:
                    raise DocumentError(
                        ErrorCode.FETCH_FAILED,
                        f"The link answered with HTTP {response.status}. Check that it opens in a browser.",
                    )
                data = await _read_body(response, limits)
                return FetchedResource(
                    url=str(current),
                    content_type=(response.content_type or "").lower() if "Content-Type" in response.headers else "",
                    charset=response.charset,
                    data=data,
                    filename=_filename(current, response),
                )
    raise DocumentError(
        ErrorCode.TOO_MANY_REDIRECTS,
        f"The link redirected more than {limits.max_redirects} times. Send the final address of the page.",
    )


def parse_link(url: str) -> URL:
    """The URL if it is an absolute http(s) URL with a host; DocumentError otherwise."""
    try:
        parsed = URL(url.strip())
    except (ValueError, TypeError) as error:
        raise _bad_url() from error
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise _bad_url()
    return parsed


def _bad_url() -> DocumentError:
    return DocumentError(ErrorCode.BAD_URL, "That is not a web link. Send a link starting with http:// or https://.")


async def _vetted_addresses(url: URL, resolver: Resolver, policy: AddressPolicy) -> list[str]:
    host = url.raw_host or ""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            addresses = list(await resolver(host, url.port or 0))
        except (OSError, UnicodeError) as error:
            raise DocumentError(
                ErrorCode.FETCH_FAILED, f"The host name {host} could not be found. Check the link."
            ) from error
    policy.check(host, addresses)
    return addresses


def _redirect_target(current: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise DocumentError(ErrorCode.FETCH_FAILED, "The link redirected without saying where to.")
    try:
        target = current.join(URL(location))
    except (ValueError, TypeError) as error:
        raise _bad_url() from error
    return parse_link(str(target))


async def _read_body(response: aiohttp.ClientResponse, limits: DocumentLimits) -> bytes:
    limit = limits.max_document_bytes
    if response.content_length is not None and response.content_length > limit:
        raise _too_large(limits)
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    decompressor = None
    if coding not in ("", "identity"):
        if coding not in _ZLIB_WINDOW:
            raise DocumentError(
                ErrorCode.FETCH_FAILED, f"The server sent the page in an unsupported compression ({coding})."
            )
        decompressor = zlib.decompressobj(_ZLIB_WINDOW[coding])
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        if decompressor is not None:
            chunk = _inflate(decompressor, chunk, limit - total)
        total += len(chunk)
        if total > limit:
            raise _too_large(limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _inflate(decompressor: zlib._Decompress, chunk: bytes, budget: int) -> bytes:
    """Decompress `chunk`, producing at most budget + 1 bytes (one more means too much)."""
    try:
        pieces = [decompressor.decompress(chunk, budget + 1)]
        produced = len(pieces[0])
        while decompressor.unconsumed_tail and produced <= budget:
            piece = decompressor.decompress(decompressor.unconsumed_tail, budget + 1 - produced)
            if not piece:
                break
            pieces.append(piece)
            produced += len(piece)
    except zlib.error as error:
        raise DocumentError(ErrorCode.FETCH_FAILED, "The server sent a damaged compressed response.") from error
    return b"".join(pieces)


def _too_large(limits: DocumentLimits) -> DocumentError:
    megabytes = limits.max_document_bytes / (1024 * 1024)
    return DocumentError(
        ErrorCode.TOO_LARGE, f"The linked file is larger than the {megabytes:.1f} MB limit. Send a smaller file."
    )


def _filename(url: URL, response: aiohttp.ClientResponse) -> str:
    disposition = response.content_disposition
    if disposition is not None and disposition.filename:
        name = PurePosixPath(disposition.filename.replace("\\", "/")).name
        if name:
            return name
    segment = unquote(url.path.rstrip("/").rsplit("/", 1)[-1]) if url.path else ""
    return segment or (url.raw_host or "download")


def _describe(error: aiohttp.ClientError) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


class _PinnedResolver(AbstractResolver):
    """Answers aiohttp's lookups only with the addresses vetted for each host."""

    def __init__(self) -> None:
        self._pinned: dict[str, list[str]] = {}

    def pin(self, host: str, addresses: list[str]) -> None:
        self._pinned[host] = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = self._pinned.get(host)
        if not addresses:
            raise OSError(f"{host} was not vetted")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        self._pinned.clear()
