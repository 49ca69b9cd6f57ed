"""The model client: streamed chat completions from any OpenAI-compatible endpoint.

It uses the official openai SDK (`AsyncOpenAI`, `chat.completions.create(stream=True)`)
with the SDK's own retries switched off, because streams fail in ways the SDK does not
report and the retry policy is ours:

* errors before the stream starts: 429, 5xx, timeouts and connection errors are retried
  with exponential backoff, honouring `Retry-After`; 400, 401, 403, 404 and 422 never
  are. A context-length error is raised as `CONTEXT_TOO_LONG` for the engine to shrink
  the request and retry once.
* a stream that breaks after it started (ends without a finish reason, carries a chunk
  that is not valid JSON, is cut, or stalls past the read timeout) is retried once from
  scratch (`on_restart` tells the caller to drop what it showed); if the retry breaks
  too, `ModelError(kind=STREAM)` carries the partial text.
* whatever happens, a model that keeps failing gives up within `deadline_seconds`.

Errors say what is wrong, naming the address: nothing listening (connection refused, no
route, no connection within `connect_seconds`) is `UNREACHABLE`, a name that does not
resolve is `DNS`, a failed TLS handshake is `TLS`; the first two are retried for a few
seconds only (`unreachable_seconds`), not for the whole deadline, so the user hears within
seconds. A 404 is `NOT_FOUND` (check COMPANION_MODEL) only when the body says the *model*
is unknown; any other 404 or 405 (FastAPI's `{"detail":"Not Found"}`, an HTML page), and
an HTML page instead of an event stream, is `WRONG_URL` (check OPENAI_BASE_URL, which
usually ends in /v1).

Every request passes the endpoint's `ModelGate` (memory/model_gate.py): a turn first,
background work (`task=...`) only when it cannot cut a turn (with `preempt_background`, a
background request a turn takes over is sent again when the endpoint is free); `messages` may be a function, so
that the request is built when its slot is granted (it then shares the newest prefix).

Usage is read from the final chunk (`stream_options.include_usage`), including cached
prompt tokens in the shapes OpenAI/Kimi (`prompt_tokens_details.cached_tokens`,
`cached_tokens`) and DeepSeek (`prompt_cache_hit_tokens`) report them. A server that sends
none (llama-cpp-python) leaves `Usage.reported` False: the engine records its own
estimate, marked as such, and never calibrates on it.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

import openai

from memory.model_gate import ModelGate, Preempted, default_slots

log = logging.getLogger(__name__)

Delta = Callable[[str], Awaitable[None]]
Restart = Callable[[], Awaitable[None]]
Messages = Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]]
DEFAULT_URL = "https://api.openai.com/v1"


class ErrorKind(enum.StrEnum):
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UNREACHABLE = "unreachable"  # connection refused, no route, no connection in time
    DNS = "dns"  # the host name does not resolve
    TLS = "tls"  # the TLS handshake failed (a certificate, or https to a plain-HTTP server)
    WRONG_URL = "wrong_url"  # 404/405 not about the model, or a web page: OPENAI_BASE_URL is wrong
    SERVER = "server"
    AUTH = "auth"
    NOT_FOUND = "not_found"  # the endpoint says it does not know the model (COMPANION_MODEL)
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"
    STREAM = "stream"


RETRYABLE = {ErrorKind.RATE_LIMIT, ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER,
             ErrorKind.UNREACHABLE, ErrorKind.DNS}
# retried a little only: a server that is not there rarely appears within a minute
QUICK_GIVE_UP = {ErrorKind.UNREACHABLE, ErrorKind.DNS}


class ModelError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, *, status: int | None = None,
                 retry_after: float | None = None, partial: str = ""):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.partial = partial


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reported: bool = True  # False: the server sent no usage (the engine estimates it)


@dataclass
class Completion:
    text: str
    finish_reason: str  # stop | length | content_filter | stopped (by the user) | ...
    usage: Usage
    model: str
    first_token_ms: int | None
    latency_ms: int
    attempts: int = 1
    fallback_from: str | None = None  # the model that failed, when a fallback endpoint answered


_CONTEXT_PATTERNS = re.compile(
    r"context[ _-]?length|maximum context|context window|too many tokens|prompt is too long|"
    r"reduce the length|exceeds? the (model's )?(max|limit)|input is too long|token limit",
    re.IGNORECASE,
)


def _mro_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_timeout(exc: BaseException) -> bool:
    # The SDK's HTTP layer (httpx, or httpx2 in newer SDKs) raises its own timeout
    # classes while a stream is read; match them by name rather than import either.
    return isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)) or bool(
        _mro_names(exc) & {"TimeoutException", "ReadTimeout", "ConnectTimeout", "PoolTimeout"})


def _is_transport(exc: BaseException) -> bool:
    return isinstance(exc, (openai.APIConnectionError, ConnectionError, OSError)) or bool(
        _mro_names(exc) & {"TransportError", "NetworkError", "ProtocolError", "HTTPError", "StreamError"})


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    if (value := headers.get("retry-after-ms")) is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


_NO_ROUTE = {111, 113, 101, 10061, 10065, 10051}  # ECONNREFUSED, EHOSTUNREACH, ENETUNREACH (+ Windows)


def _connect_failure(exc: BaseException) -> tuple[ErrorKind, str] | None:
    """Why a connection could not be made, from the exception and its causes (the SDK's
    HTTP layers report a refused connection as a *timeout*, so the class alone misleads)."""
    causes = _causes(exc)
    for cause in causes:
        names = _mro_names(cause)
        if isinstance(cause, socket.gaierror) or "ClientConnectorDNSError" in names:
            return ErrorKind.DNS, "the host name does not resolve"
        if isinstance(cause, ssl.SSLError) or names & {"ClientConnectorSSLError", "ClientConnectorCertificateError",
                                                        "SSLError"}:
            reason = getattr(cause, "reason", None) or str(cause)
            return ErrorKind.TLS, f"the TLS handshake failed ({str(reason)[:120]})"
        if isinstance(cause, ConnectionRefusedError):
            return ErrorKind.UNREACHABLE, "connection refused: nothing is listening there"
    for cause in causes:
        names = _mro_names(cause)
        if isinstance(cause, OSError) and cause.errno in _NO_ROUTE:
            return ErrorKind.UNREACHABLE, f"no connection ({cause.strerror or cause})"
        if "ConnectionTimeoutError" in names or ("ConnectTimeout" in names and not any(
                "ClientConnectorError" in _mro_names(c) for c in _causes(cause))):
            return ErrorKind.UNREACHABLE, "no connection could be made in time"
    return None


_MODEL_WORD = re.compile(r"\bmodel", re.IGNORECASE)
_UNKNOWN = re.compile(r"not[ _-]?found|does not exist|not exist|unknown|no such|not available|invalid|"
                      r"try pulling|not loaded|not supported", re.IGNORECASE)


def _about_the_model(exc: openai.APIStatusError, message: str) -> bool:
    """Whether a 404 says the model is unknown (OpenAI's `model_not_found`, Ollama's
    `model "x" not found`, vLLM's `The model `x` does not exist`), rather than the path."""
    code = str(getattr(exc, "code", "") or "")
    if "model" in code.lower():
        return True
    body = exc.body
    if not isinstance(body, (dict, str)):
        return False
    if isinstance(body, dict) and set(body) == {"detail"}:
        return False  # FastAPI's own 404 for an unknown path
    return bool(_MODEL_WORD.search(message) and _UNKNOWN.search(message))


def classify(exc: BaseException, endpoint: str | None = None) -> ModelError:
    """Turn an SDK or transport exception into a ModelError with a kind the user can be
    told; `endpoint` (the base URL) is named in the errors about the address."""
    if isinstance(exc, ModelError):
        return exc
    where = endpoint or DEFAULT_URL
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _error_message(exc)
        retry_after = _retry_after(exc.response.headers)
        code = str(getattr(exc, "code", "") or "")
        if status == 429:
            kind = ErrorKind.RATE_LIMIT
        elif status in (401, 403):
            kind = ErrorKind.AUTH
        elif status == 404 and _about_the_model(exc, message):
            kind = ErrorKind.NOT_FOUND
        elif status in (404, 405):
            return ModelError(ErrorKind.WRONG_URL, f"{where}/chat/completions answered {status} "
                                                   f"({message[:80]}): not a chat completions endpoint",
                              status=status)
        elif status == 413 or "context_length" in code or _CONTEXT_PATTERNS.search(message):
            kind = ErrorKind.CONTEXT_TOO_LONG
        elif status >= 500 or status in (408, 409):
            kind = ErrorKind.SERVER
        else:
            kind = ErrorKind.BAD_REQUEST
        return ModelError(kind, message, status=status, retry_after=retry_after)
    failure = _connect_failure(exc)
    if failure is not None:
        kind, why = failure
        return ModelError(kind, f"{where}: {why}")
    if _is_timeout(exc):
        return ModelError(ErrorKind.TIMEOUT, f"the model at {where} did not answer in time")
    if _is_transport(exc):
        return ModelError(ErrorKind.CONNECTION, f"cannot reach the model endpoint at {where} ({type(exc).__name__})")
    return ModelError(ErrorKind.STREAM, f"{type(exc).__name__}: {exc}")


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("detail"), str) and "error" not in body:
        return body["detail"][:500]  # FastAPI
    if isinstance(body, str) and body.lstrip().startswith("<"):
        return "an HTML page"
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]  # the SDK unwraps {"error": "…"} (Ollama) to the string
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
    return str(exc.message)[:500]


def _usage_from(raw: Any) -> Usage:
    if raw is None:
        return Usage(reported=False)
    data = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    details = data.get("prompt_tokens_details") or {}
    cached = (details.get("cached_tokens") if isinstance(details, dict) else None)
    if not cached:
        cached = data.get("prompt_cache_hit_tokens") or data.get("cached_tokens") or 0
    return Usage(int(data.get("prompt_tokens") or 0), int(cached or 0), int(data.get("completion_tokens") or 0))


def _http_client(timeout: "openai.Timeout"):
    """aiohttp as the SDK's transport where available: with many conversations streaming
    at once, the default pool's per-request scan of every open connection costs more CPU
    than the rest of a turn (measured in benchmarks/bench_telegram.py)."""
    try:
        return openai.DefaultAioHttpClient(timeout=timeout)
    except (AttributeError, RuntimeError):  # an SDK without it, or without its extra installed
        return None


async def _sse_data(response) -> AsyncIterator[str]:
    """The `data` of each server-sent event, as text. The SDK's own stream would build a
    typed object for every chunk (about a quarter of a millisecond each, and providers
    send one or two tokens a chunk: tens of milliseconds of CPU per reply), so the SDK
    sends the request and reports HTTP errors, and the chunks are read as plain JSON."""
    lines: list[str] = []
    async for line in response.iter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
        # other fields (event:, id:, retry:) and comments (":" keep-alives) carry no text
    if lines:
        yield "\n".join(lines)


def _stream_error(error: Any, response) -> openai.APIError:
    """An error the server reported inside the stream, as the SDK would raise it."""
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    return openai.APIError(message, request=response.http_request, body=error)


class ModelClient:
    def __init__(self, *, base_url: str | None, api_key: str | None, deadline_seconds: float = 60.0,
                 stall_seconds: float = 45.0, connect_seconds: float = 10.0, send_cache_key: bool = True,
                 max_backoff: float = 8.0, slots: int | None | str = "auto", unreachable_seconds: float = 4.0,
                 preempt_background: bool = False):
        """`slots`: requests the endpoint takes at once ("auto": 1 for a local or private
        address, else no limit; None or 0: no limit); `preempt_background`: a turn takes a
        slot over from background work instead of waiting for it (memory/model_gate.py);
        `unreachable_seconds`: how long an endpoint that cannot be reached is retried."""
        self.deadline_seconds = deadline_seconds
        self.stall_seconds = stall_seconds
        self.connect_seconds = connect_seconds
        self.send_cache_key = send_cache_key
        self.max_backoff = max_backoff
        self.unreachable_seconds = unreachable_seconds
        self.base_url = base_url
        self.gate = ModelGate(default_slots(base_url) if slots == "auto" else slots,  # type: ignore[arg-type]
                              preempt=preempt_background)
        timeout = openai.Timeout(stall_seconds, connect=connect_seconds)
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",  # local servers (Ollama, llama.cpp) take any key
            max_retries=0,
            timeout=timeout,
            http_client=_http_client(timeout),
        )

    @property
    def endpoint(self) -> str:
        return (self.base_url or DEFAULT_URL).rstrip("/")

    async def close(self) -> None:
        await self._client.close()

    async def stream_chat(
        self,
        *,
        model: str,
        messages: Messages,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cache_key: str | None = None,
        on_delta: Delta | None = None,
        on_restart: Restart | None = None,
        stop: asyncio.Event | None = None,
        task: str | None = None,
    ) -> Completion:
        """One streamed completion. `task` names background work (facts, summary…): it
        waits behind turns at the endpoint's gate and is sent with an `X-Companion-Task`
        header. `messages` may be a function, called when the request is sent."""
        request = dict(model=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                       top_p=top_p, cache_key=cache_key, on_delta=on_delta, on_restart=on_restart, stop=stop,
                       task=task)
        if task is None:
            async with self.gate.turn():
                return await self._stream_chat(**request)
        preemptible = True
        while True:
            async with self.gate.background(preemptible=preemptible) as hold:
                try:
                    return await hold.run(self._stream_chat(**request))
                except Preempted:
                    log.info("a turn took over the endpoint from background work (%s); it is sent again later", task)
                    preemptible = False  # the second time it runs to its end

    async def _stream_chat(self, *, model: str, messages: Messages, max_tokens: int | None,
                           temperature: float | None, top_p: float | None, cache_key: str | None,
                           on_delta: Delta | None, on_restart: Restart | None, stop: asyncio.Event | None,
                           task: str | None) -> Completion:
        started = time.monotonic()
        deadline = started + self.deadline_seconds
        stream_retry_used = False
        attempt = 0
        while True:
            attempt += 1
            shown = False

            async def delta(text: str) -> None:
                nonlocal shown
                shown = True
                if on_delta is not None:
                    await on_delta(text)

            try:
                completion = await self._attempt(
                    model=model, messages=list(messages() if callable(messages) else messages),
                    max_tokens=max_tokens, temperature=temperature,
                    top_p=top_p, cache_key=cache_key, on_delta=delta, stop=stop, task=task,
                    timeout=max(1.0, min(self.stall_seconds, deadline - time.monotonic())),
                )
                completion.attempts = attempt
                completion.latency_ms = int((time.monotonic() - started) * 1000)
                return completion
            except ModelError as error:
                remaining = deadline - time.monotonic()
                if error.kind in QUICK_GIVE_UP:
                    remaining = min(remaining, started + self.unreachable_seconds - time.monotonic())
                if error.kind is ErrorKind.STREAM or (shown and error.kind in RETRYABLE):
                    if stream_retry_used or remaining < 1:
                        if error.kind is not ErrorKind.STREAM:
                            error = ModelError(ErrorKind.STREAM, error.detail, partial=error.partial)
                        raise error
                    stream_retry_used = True
                    log.warning("model stream broke (%s); retrying once", error.detail)
                    if shown and on_restart is not None:
                        await on_restart()
                    continue
                if error.kind not in RETRYABLE:
                    raise
                wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
                if wait >= remaining:
                    raise
                log.warning("model request failed (%s); retrying in %.1fs", error.detail, wait)
                await asyncio.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, 0.5 * 2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())

    async def _attempt(self, *, model: str, messages: list[dict[str, Any]], max_tokens: int | None,
                       temperature: float | None, top_p: float | None, cache_key: str | None,
                       on_delta: Delta, stop: asyncio.Event | None, timeout: float,
                       task: str | None = None) -> Completion:
        kwargs: dict[str, Any] = {}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if temperature is not None:
            kwargs["temperature"] = temperature
        if top_p is not None:
            kwargs["top_p"] = top_p
        # The messages travel in extra_body, merged into the JSON as they are: the SDK would
        # otherwise walk every message through its TypedDict transform, which costs about a
        # millisecond per few messages; with a 2,000-message history that is most of a turn.
        extra_body: dict[str, Any] = {"messages": messages}
        if cache_key and self.send_cache_key:
            extra_body["prompt_cache_key"] = cache_key
        started = time.monotonic()
        pieces: list[str] = []
        first_token_ms: int | None = None
        finish_reason: str | None = None
        usage = Usage(reported=False)
        if task is not None:
            kwargs["extra_headers"] = {"X-Companion-Task": task}
        request = self._client.chat.completions.with_streaming_response.create(
            model=model, messages=[], stream=True, stream_options={"include_usage": True},
            timeout=openai.Timeout(timeout, connect=self.connect_seconds), extra_body=extra_body, **kwargs,
        )
        try:
            response = await request.__aenter__()
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            raise classify(exc, self.endpoint) from exc
        done = False
        try:
            if "text/html" in response.headers.get("content-type", ""):
                raise ModelError(ErrorKind.WRONG_URL, f"{self.endpoint}/chat/completions answered with a web page, "
                                                      "not an event stream")
            async for data in _sse_data(response):
                if data.startswith("[DONE]"):
                    done = True  # read on to the end of the body, so the connection can be reused
                if done:
                    continue
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise ModelError(ErrorKind.STREAM, "the model sent a malformed chunk")
                if chunk.get("error"):
                    raise _stream_error(chunk["error"], response)
                if chunk.get("usage"):
                    usage = _usage_from(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        if first_token_ms is None:
                            first_token_ms = int((time.monotonic() - started) * 1000)
                        pieces.append(text)
                        await on_delta(text)
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                if stop is not None and stop.is_set():
                    finish_reason = "stopped"
                    break
        except Exception as exc:  # noqa: BLE001 - a broken stream shows up as many types
            error = classify(exc, self.endpoint)
            if isinstance(exc, (json.JSONDecodeError, AttributeError)):
                error = ModelError(ErrorKind.STREAM, "the model sent a malformed chunk")
            elif error.kind in (ErrorKind.TIMEOUT, ErrorKind.CONNECTION):
                error = ModelError(ErrorKind.STREAM if pieces else error.kind, error.detail)
            error.partial = "".join(pieces)
            raise error from exc
        finally:
            await request.__aexit__(None, None, None)
        text = "".join(pieces)
        if finish_reason is None:
            raise ModelError(ErrorKind.STREAM, "the stream ended without a finish reason", partial=text)
        return Completion(text, finish_reason, usage, model, first_token_ms,
                          int((time.monotonic() - started) * 1000))
