"""A fake OpenAI-compatible server: `/v1/chat/completions` as JSON and as SSE, and
`/v1/embeddings`.

Scripted with `enqueue(Reply(...))`; every request body is recorded in `requests`.
When the queue is empty, `default_reply` answers. Failure modes the real providers
show are one field away: an HTTP error with headers (429 + Retry-After), a stream cut
mid-reply, a stream that ends without a finish reason, a malformed chunk, a stall.

Background memory work (summaries, fact extraction) runs while the next reply may be
requested, so it must not take replies scripted for the chat. Its requests carry an
`X-Companion-Task` header (or a `prompt_cache_key` starting with `memory-`), read as
`RecordedRequest.task`; they are answered from `task_queue` (`enqueue_task`), else by
`task_reply`, and listed in `task_requests`; `chat_requests` holds only the requests for
replies. The default task answers are an empty fact list and a short summary quoting the
excerpt's first line (or, in the prefixed form, the first message of the history).
The documents feature's jobs (`X-Companion-Task: reading`: chapter summaries, character
lists) read a document, not the conversation, and its tests script them like replies, so
they are answered from `queue`/`default_reply` and listed with the chat requests.

`single_slot = True` makes it behave like llama-cpp-python's server (one slot): a new chat
request interrupts the one streaming (that stream ends without a finish reason, as the
real server's does), and it keeps one prompt cache: each request's prompt (rendered with a
ChatML template, o200k tokens) is compared with the previous prompt plus its reply, the
common prefix is reported as `prompt_tokens_details.cached_tokens`, and only the rest is
"evaluated" (`eval_seconds_per_token` each). `slot_log` holds one `SlotEntry` per request
(prompt and cached tokens, whether it was interrupted); `full_reevaluations()` counts the
long prompts evaluated mostly afresh.

Embeddings are deterministic: a hashed bag of character bigrams and words (`embed_text`),
so texts that share words or characters are close, as with a real model; `embedding_error`
makes the route fail.

Audio and moderation routes, each recorded (`audio_requests`, `moderation_requests`):
- `/v1/audio/transcriptions` (multipart, as the SDK sends it) refuses, as OpenAI does, a
  file whose extension it does not accept (Telegram's `.oga`) or whose bytes do not decode
  as audio; otherwise it answers the next of `transcripts`, else `default_transcript`.
- `/v1/audio/speech` answers real audio in the requested `response_format` (Ogg Opus or
  WAV), or in `speech_format` when set (a server that ignores the requested format).
- `/v1/moderations` flags an input that contains one of `flagged_words`.
`audio_error` / `moderation_error` make those routes fail with that HTTP status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from tests.fakes.server import ThreadedServer


@dataclass
class Reply:
    text: str = "OK."
    chunk_size: int = 8  # characters per streamed chunk
    finish_reason: str | None = "stop"  # None: the stream ends without one
    prompt_tokens: int | None = None  # None: counted from the request
    cached_tokens: int = 0
    deepseek_cache_fields: bool = False  # report prompt_cache_hit_tokens like DeepSeek
    status: int = 200  # != 200: an error response with `error_body`
    error_body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # between chunks
    cut_after: int | None = None  # close the connection after N content chunks
    malformed_after: int | None = None  # send an invalid JSON chunk after N content chunks
    stall_after: int | None = None  # stop sending after N content chunks, for stall_seconds
    stall_seconds: float = 30.0
    error_after: int | None = None  # send an error object in the stream (as OpenRouter does) after N chunks
    usage: bool = True  # False: no usage chunk even when asked for (llama-cpp-python sends none)
    keepalive: bool = False  # SSE comment lines (": keep-alive") and multi-line data events, as proxies send
    wait_for: threading.Event | None = None  # hold the response until the test sets this event

    @classmethod
    def error(cls, status: int, message: str = "error", code: str | None = None,
              headers: dict[str, str] | None = None) -> "Reply":
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return cls(status=status, error_body=body, headers=headers or {})

    @classmethod
    def rate_limited(cls, retry_after: float = 1) -> "Reply":
        return cls.error(429, "Rate limit reached", "rate_limit_exceeded",
                         {"Retry-After": str(retry_after)})

    @classmethod
    def context_too_long(cls, limit: int = 8192) -> "Reply":
        return cls.error(
            400,
            f"This model's maximum context length is {limit} tokens. "
            f"However, your messages resulted in {limit + 1000} tokens.",
            "context_length_exceeded",
        )


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.time() on arrival
    finished_at: float | None = None  # when the response was complete

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def task(self) -> str | None:
        """The background task this request is (facts, summary, fold, reading…), else None."""
        return task_of(self.headers, self.body)


@dataclass
class SlotEntry:
    """One request through the single slot."""

    task: str | None  # None: a turn
    prompt_tokens: int
    cached_tokens: int
    interrupted: bool = False  # a newer request cut its stream
    completed: bool = False  # its stream ran to the finish reason

    @property
    def evaluated(self) -> int:
        return self.prompt_tokens - self.cached_tokens


def render_chatml(messages: list[dict[str, Any]]) -> str:
    """The prompt a local server builds from the messages (SmolLM2's ChatML template)."""
    parts = []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(f"<|im_start|>{message.get('role')}\n{content}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


EMBEDDING_DIMENSIONS = 256


def embed_text(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A unit vector from hashed character bigrams and lowercased words."""
    vector = [0.0] * dimensions
    lowered = text.lower()
    features = [lowered[i:i + 2] for i in range(len(lowered) - 1) if not lowered[i:i + 2].isspace()]
    features += re.findall(r"\w+", lowered)
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


DOCUMENT_TASKS = {"reading"}  # answered like replies (see the module docstring)


def memory_task(task: str | None) -> bool:
    """Whether a request is background memory work, answered by the task channel."""
    return task is not None and task not in DOCUMENT_TASKS


def task_of(headers: dict[str, str], body: dict[str, Any]) -> str | None:
    """The client's `X-Companion-Task` header; else the kind in a `memory-<kind>-…` cache key."""
    for name, value in headers.items():
        if name.lower() == "x-companion-task":
            return value
    key = str(body.get("prompt_cache_key") or "")
    return key.split("-")[1] if key.startswith("memory-") else None


def task_kind(body: dict[str, Any]) -> str:
    """facts | fold | summary, from what the task asks (for `task_reply` functions, which
    see only the body)."""
    text = "\n".join(str(m.get("content") or "") for m in body.get("messages", [])[-2:])
    if '{"facts": [' in text:
        return "facts"
    if "Summaries to merge:" in text or "要合并的摘要：" in text:
        return "fold"
    return "summary"


def default_task_reply(body: dict[str, Any]) -> Reply:
    if task_kind(body) == "facts":
        return Reply('{"facts": []}')
    messages = body["messages"]
    excerpt = messages[-1]["content"].splitlines()
    quoted = next((line for line in excerpt if line.startswith("[") and not line.startswith("[A task")), None)
    if quoted is None:  # the prefixed form: the excerpt is the conversation before the task
        first = next((m for m in messages[1:-1] if m["role"] in ("user", "assistant")
                      and not m["content"].startswith("[")), messages[-1])
        quoted = f"[{first['role']}] {first['content']}"
    return Reply(f"Summary: {quoted[:160]}")


class FakeOpenAI(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.queue: deque[Reply] = deque()
        self.task_queue: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self.default_reply: Callable[[dict[str, Any]], Reply] = lambda body: Reply()
        self.task_reply: Callable[[dict[str, Any]], Reply] = default_task_reply
        self.embedding_error: int | None = None  # an HTTP status for /v1/embeddings to fail with
        self.transcripts: deque[str] = deque()
        self.default_transcript = "Hello from a voice message."
        self.speech_format: str | None = None  # answer speech in this format, whatever was asked
        self.flagged_words: set[str] = set()
        self.audio_error: int | None = None
        self.moderation_error: int | None = None
        self.single_slot = False
        self.eval_seconds_per_token = 0.0
        self.slot_log: list[SlotEntry] = []
        self._slot_tokens: list[int] = []  # what the slot's cache holds: the last prompt and its reply
        self._slot_interrupt: asyncio.Event | None = None  # set to cut the stream in the slot

    def full_reevaluations(self, min_tokens: int = 1000) -> list[SlotEntry]:
        """Requests of at least `min_tokens` prompt tokens of which the cache served less than half."""
        with self.lock:
            return [e for e in self.slot_log if e.prompt_tokens >= min_tokens and e.cached_tokens * 2 < e.prompt_tokens]

    # -- scripting --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The value for OPENAI_BASE_URL."""
        return f"{self.base_url}/v1"

    def enqueue(self, *replies: Reply | str) -> None:
        with self.lock:
            for reply in replies:
                self.queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    def enqueue_task(self, *replies: Reply | str) -> None:
        """Answers for background memory requests, in order."""
        with self.lock:
            for reply in replies:
                self.task_queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests for replies (not background memory work)."""
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions") and not memory_task(r.task)]

    @property
    def task_requests(self) -> list[RecordedRequest]:
        """Background memory requests (summaries, fact extraction)."""
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions") and memory_task(r.task)]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/embeddings")]

    @property
    def audio_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if "/audio/" in r.path]

    @property
    def moderation_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/moderations")]

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.task_queue.clear()
            self.requests.clear()

    # -- HTTP -------------------------------------------------------------------------
    def build_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/moderations", self._moderation)

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.requests.append(RecordedRequest(request.path, dict(request.headers), body, time.time()))
            failure = self.embedding_error
        if failure is not None:
            return web.json_response({"error": {"message": "embeddings are down", "type": "server_error"}},
                                     status=failure)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        data = []
        for index, text in enumerate(texts):
            vector = embed_text(str(text), dimensions)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(t)) // 4 + 1 for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model", "fake-embed"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(RecordedRequest(request.path, dict(request.headers), body, time.time()))

    async def _transcription(self, request: web.Request) -> web.Response:
        from tests.fakes.audio import decoded_seconds

        body: dict[str, Any] = {}
        async for part in await request.multipart():
            if part.filename:
                body["file"] = {"filename": part.filename, "content_type": part.headers.get("Content-Type"),
                                "data": await part.read()}
            else:
                body[part.name] = await part.text()
        self._record(request, body)
        if self.audio_error:
            return web.json_response({"error": {"message": "audio is down"}}, status=self.audio_error)
        upload = body.get("file") or {}
        extension = str(upload.get("filename", "")).rsplit(".", 1)[-1].lower()
        if extension not in TRANSCRIPTION_FORMATS or decoded_seconds(upload.get("data", b"")) is None:
            return web.json_response({"error": {"message": "Invalid file format. Supported formats: "
                                                f"{sorted(TRANSCRIPTION_FORMATS)}", "type": "invalid_request_error"}},
                                     status=400)
        with self.lock:
            transcript = self.transcripts.popleft() if self.transcripts else self.default_transcript
        return web.json_response({"text": transcript})

    async def _speech(self, request: web.Request) -> web.Response:
        from tests.fakes.audio import ogg_opus_tone, wav_tone

        body = await request.json()
        self._record(request, body)
        if self.audio_error:
            return web.json_response({"error": {"message": "audio is down"}}, status=self.audio_error)
        kind = self.speech_format or body.get("response_format") or "mp3"
        seconds = min(3.0, 0.3 + len(body.get("input", "")) / 200)
        if kind == "opus":
            return web.Response(body=ogg_opus_tone(seconds), content_type="audio/ogg")
        if kind == "wav":
            return web.Response(body=wav_tone(seconds), content_type="audio/wav")
        return web.json_response({"error": {"message": f"this fake cannot speak {kind}"}}, status=400)

    async def _moderation(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if self.moderation_error:
            return web.json_response({"error": {"message": "moderation is down"}}, status=self.moderation_error)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = []
        for text in inputs:
            hit = any(word in str(text).lower() for word in self.flagged_words)
            categories = {name: hit and name == "harassment" for name in MODERATION_CATEGORIES}
            results.append({"flagged": hit, "categories": categories,
                            "category_scores": {name: 0.9 if flagged else 0.01 for name, flagged in categories.items()},
                            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES}})
        return web.json_response({"id": "modr-fake", "model": body.get("model") or "omni-moderation-latest",
                                  "results": results})

    def _next_reply(self, body: dict[str, Any], task: str | None) -> Reply:
        with self.lock:
            if memory_task(task):
                return self.task_queue.popleft() if self.task_queue else self.task_reply(body)
            return self.queue.popleft() if self.queue else self.default_reply(body)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(request.path, dict(request.headers), body, time.time())
        with self.lock:
            self.requests.append(record)
        try:
            return await self._answer(request, body, record.task)
        except ConnectionResetError:  # the client went away mid-answer (a killed bot process)
            return web.Response(status=499)
        finally:
            record.finished_at = time.time()

    async def _answer(self, request: web.Request, body: dict[str, Any], task: str | None) -> web.StreamResponse:
        reply = self._next_reply(body, task)
        if reply.wait_for is not None:
            await asyncio.to_thread(reply.wait_for.wait, 30)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return web.json_response(reply.error_body or {}, status=reply.status, headers=reply.headers)
        usage = self._usage(body, reply)
        slot = None
        if self.single_slot and (request.transport is None or request.transport.is_closing()):
            # The client gave up while the request waited (a preempted background request):
            # llama.cpp drops such a task before it reaches the slot, so it cuts nobody.
            return web.Response(status=499)
        if self.single_slot:
            slot, interrupt = await self._take_slot(body, task)
            usage["prompt_tokens"] = slot.prompt_tokens
            usage["prompt_tokens_details"] = {"cached_tokens": slot.cached_tokens}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            reply = Reply(**{**reply.__dict__, "chunk_delay": reply.chunk_delay or 0.002})
        if not body.get("stream"):
            return web.json_response(self._completion(body, reply, usage), headers=reply.headers)
        if slot is None:
            return await self._stream(request, body, reply, usage)
        try:
            return await self._stream(request, body, reply, usage, interrupt=interrupt, slot=slot)
        finally:
            if self._slot_interrupt is interrupt:
                self._slot_interrupt = None

    async def _take_slot(self, body: dict[str, Any], task: str | None) -> tuple[SlotEntry, asyncio.Event]:
        """Interrupt whatever streams, and evaluate this prompt against the slot's cache
        (llama-cpp-python matches at most all but the prompt's last token)."""
        from memory.tokens import load_encoding

        if self._slot_interrupt is not None:
            self._slot_interrupt.set()
        interrupt = self._slot_interrupt = asyncio.Event()
        tokens = load_encoding().encode_ordinary(render_chatml(body.get("messages", [])))
        hit = common_prefix(self._slot_tokens, tokens[:-1])
        self._slot_tokens = tokens
        entry = SlotEntry(task, len(tokens), hit)
        with self.lock:
            self.slot_log.append(entry)
        if self.eval_seconds_per_token:
            await asyncio.sleep((len(tokens) - hit) * self.eval_seconds_per_token)
        return entry, interrupt

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else count_prompt(body)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": max(1, len(reply.text) // 4),
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if reply.deepseek_cache_fields:
            del usage["prompt_tokens_details"]
            usage["prompt_cache_hit_tokens"] = reply.cached_tokens
            usage["prompt_cache_miss_tokens"] = prompt - reply.cached_tokens
        return usage

    def _completion(self, body: dict[str, Any], reply: Reply, usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason or "stop",
            }],
            "usage": usage,
        }

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply, usage: dict[str, Any],
                      interrupt: asyncio.Event | None = None, slot: SlotEntry | None = None) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **reply.headers})
        await response.prepare(request)
        model = body.get("model", "fake-model")

        def frame(payload: dict[str, Any]) -> bytes:
            if reply.keepalive:  # the same JSON split over several data lines, after a comment
                lines = "".join(f"data: {line}\n" for line in json.dumps(payload, indent=1).split("\n"))
                return f": keep-alive\n\nid: 1\n{lines}\n".encode()
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

        def payload(delta: dict[str, Any], finish: str | None = None, choices: bool = True) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
            }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return frame(payload(delta, finish))

        await response.write(chunk({"role": "assistant", "content": ""}))
        pieces = [reply.text[i:i + reply.chunk_size] for i in range(0, len(reply.text), reply.chunk_size)]
        for index, piece in enumerate(pieces):
            if interrupt is not None and interrupt.is_set():  # a newer request took the slot
                slot.interrupted = True
                await response.write_eof()
                return response
            if reply.cut_after is not None and index == reply.cut_after:
                request.transport.close()  # type: ignore[union-attr]
                return response
            if reply.malformed_after is not None and index == reply.malformed_after:
                await response.write(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": \n\n')
                await response.write(b"data: [DONE]\n\n")
                return response
            if reply.stall_after is not None and index == reply.stall_after:
                await asyncio.sleep(reply.stall_seconds)
            if reply.error_after is not None and index == reply.error_after:
                await response.write(b'data: {"error": {"message": "provider overloaded", "code": 502}}\n\n')
                await response.write_eof()
                return response
            await response.write(chunk({"content": piece}))
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        if reply.cut_after is not None and reply.cut_after >= len(pieces):
            request.transport.close()  # type: ignore[union-attr]
            return response
        if slot is not None:
            from memory.tokens import load_encoding

            if interrupt.is_set():
                slot.interrupted = True
                await response.write_eof()
                return response
            slot.completed = True
            if self._slot_interrupt is interrupt:  # the slot's cache now holds the reply too
                self._slot_tokens = self._slot_tokens + load_encoding().encode_ordinary(reply.text)
        if reply.finish_reason is not None:
            await response.write(chunk({}, reply.finish_reason))
            stream_options = body.get("stream_options") or {}
            if stream_options.get("include_usage") and reply.usage:
                await response.write(frame({**payload({}, choices=False), "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


TRANSCRIPTION_FORMATS = {"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"}
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)


def count_prompt(body: dict[str, Any]) -> int:
    """What a provider would bill: o200k tokens of every message plus chat-format overhead."""
    from memory.tokens import count_tokens, MESSAGE_OVERHEAD, REQUEST_OVERHEAD

    total = REQUEST_OVERHEAD
    for message in body.get("messages", []):
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        total += count_tokens(content) + MESSAGE_OVERHEAD
    return total
