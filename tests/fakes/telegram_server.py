"""A fake Telegram Bot API server that aiogram's real HTTP session talks to.

    fake = FakeTelegram().start()
    bot = fake.make_bot()   # Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))

Routes are the real ones: `/bot{token}/{method}` (POST as urlencoded form, multipart or
JSON, and GET with a query string; method names are case-insensitive) and
`/file/bot{token}/{file_path}` for downloads. Answers are shaped like real Bot API objects
so aiogram parses them into its types, and errors carry the real status codes and
descriptions ("Bad Request: message is not modified: ...", "Bad Request: message is too
long", "Bad Request: can't parse entities: ...", 429 with `parameters.retry_after`, 404
"Not Found" for a method the server does not know), because the product's fallbacks are
written against those.

The fake keeps each chat as a user would see it: messages of both sides with ids that
increase per chat, edits applied in place, deletions removed, the current draft per chat.
Tests script the user side with builders that push updates (`private_message`,
`group_message`, `callback_query`, `document`, ...) and read back `calls`,
`chat_messages(chat_id)` and friends. State lives in plain attributes guarded by
`self.lock` because the server runs on its own thread while tests read from theirs.

Flood limits: `FakeTelegram(flood_limits=FloodLimits())` enforces Telegram's, answering
429 with `retry_after` past them; `flood.flood_chat(...)`/`flood.flood_all(...)` inject
floods (tests/fakes/telegram_limits.py).

Faults: `fail(method, status, ...)` answers the next calls of a method with an error
(`fail("download", ...)`: the next file downloads from `/file/bot{token}/...`);
`hold(method)` parks its calls until `release(method)` (a bot process pre-started by a
crash test waits at getMe). `deliveries` counts how often getUpdates handed out each
update: after a crash, Telegram delivers again what the bot had not confirmed.

Split by concern: this module is the server (routing, faults, what tests read back);
the user side is tests/fakes/telegram_users.py, the Bot API methods
tests/fakes/telegram_methods.py, the records and the wire format
tests/fakes/telegram_records.py, text limits and entities tests/fakes/telegram_text.py.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from typing import Any, Callable

from aiohttp import web

from tests.fakes.server import ThreadedServer
from tests.fakes.telegram_limits import FloodControl, FloodLimits
from tests.fakes.telegram_text import (
    BadRequest,
)
from tests.fakes.telegram_methods import BotApiMethods
from tests.fakes.telegram_records import (  # noqa: F401 - some re-exported: tests import them from here
    DEFAULT_GROUP_ID,
    DEFAULT_TOKEN,
    DEFAULT_USER_ID,
    DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
    Call,
    ChatMessage,
    StoredFile,
    UploadedFile,
    _error_response,
    _Failure,
    _read_params,
)
from tests.fakes.telegram_users import UserSide


class FakeTelegram(UserSide, BotApiMethods, ThreadedServer):
    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "companion_test_bot",
                 bot_first_name: str = "Companion", flood_limits: FloodLimits | None = None) -> None:
        super().__init__()
        self.token = token
        self.flood = FloodControl(flood_limits)  # Telegram's flood limits (telegram_limits.py)
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]), "is_bot": True,
            "first_name": bot_first_name, "username": bot_username,
        }
        self._calls: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._drafts_refusal: tuple[int, str] | None = None
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, ChatMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: list[str] = []
        self._open_callback_queries: set[str] = set()
        self._callback_counter = itertools.count(1)
        self.drafts: dict[tuple[int, int | None], dict[str, Any]] = {}  # (chat, thread) -> draft
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (scope, lang) -> commands
        self.webhook: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                        "pending_update_count": 0}
        self._update_arrived: asyncio.Event | None = None
        # When set, file downloads wait until this event is set (tests of cancelling a
        # job that is still downloading).
        self.download_gate: threading.Event | None = None
        self._holds: dict[str, threading.Event] = {}  # method -> calls wait until it is set
        self.deliveries: dict[int, int] = {}  # update_id -> how many getUpdates answers carried it
        self._handlers: dict[str, tuple[str, Callable[..., Any]]] = {}
        for name in ("getMe", "getUpdates", "sendMessage", "sendMessageDraft", "editMessageText",
                     "editMessageReplyMarkup", "sendChatAction", "sendDocument", "sendVoice",
                     "sendPhoto", "getFile", "setMyCommands", "deleteMyCommands", "getMyCommands",
                     "answerCallbackQuery", "deleteMessage", "deleteWebhook", "setWebhook",
                     "getWebhookInfo", "getChat", "close", "logOut"):
            self._handlers[name.lower()] = (name, getattr(self, "_api_" + name))

    # == client side ======================================================================
    def make_bot(self, **bot_kwargs: Any):
        """An aiogram Bot whose real AiohttpSession talks to this server. Close its session."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(self.token, session=session, **bot_kwargs)

    # == scripting: faults ================================================================
    def fail(self, method: str, status: int, description: str | None = None,
             retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with this error instead of handling them."""
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after or 1}",
                400: "Bad Request: something is wrong",
                403: "Forbidden: bot was blocked by the user",
                502: "Bad Gateway",
            }.get(status, "Internal Server Error")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self.lock:
            self._failures.setdefault(method.lower(), []).append(
                _Failure(status, description, retry_after, times))

    def refuse_drafts(self, how: str = "unknown_method") -> None:
        """Make sendMessageDraft fail like a server without it ("unknown_method": 404 Not Found,
        what the Bot API says for any method it does not have) or like one that refuses the
        peer ("peer_invalid": 400 TEXTDRAFT_PEER_INVALID, seen when drafts are unavailable)."""
        refusals = {"unknown_method": (404, "Not Found"),
                    "peer_invalid": (400, "Bad Request: TEXTDRAFT_PEER_INVALID")}
        with self.lock:
            self._drafts_refusal = refusals[how]

    def hold(self, method: str) -> threading.Event:
        """Calls of `method` are recorded, then wait (at most 120 s) until `release(method)`:
        a bot process started meanwhile stops at that call (crash tests pre-start the next
        process at getMe while the current one still runs)."""
        with self.lock:
            return self._holds.setdefault(method.lower(), threading.Event())

    def release(self, method: str) -> None:
        with self.lock:
            gate = self._holds.pop(method.lower(), None)
        if gate is not None:
            gate.set()

    def accept_drafts(self) -> None:
        with self.lock:
            self._drafts_refusal = None

    # == queries for tests =================================================================
    @property
    def calls(self) -> list[Call]:
        with self.lock:
            return list(self._calls)

    def calls_of(self, method: str, *, ok: bool | None = None) -> list[Call]:
        method = method.lower()
        with self.lock:
            return [c for c in self._calls if c.method.lower() == method
                    and (ok is None or c.ok == ok)]

    def chat_messages(self, chat_id: int) -> list[ChatMessage]:
        """Every message still in the chat, both sides, oldest first."""
        with self.lock:
            return sorted(self._messages.get(chat_id, {}).values(), key=lambda m: m.message_id)

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.chat_messages(chat_id) if m.from_bot]

    def bot_texts(self, chat_id: int) -> list[str]:
        return [m.text if m.text is not None else (m.caption or "") for m in self.bot_messages(chat_id)]

    def message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        with self.lock:
            return self._messages.get(chat_id, {}).get(message_id)

    def pending_updates(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._updates)

    def reset_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0,
                   interval: float = 0.01, message: str | None = None) -> Any:
        """Poll `predicate` until it is truthy and return its value; AssertionError on timeout.

        Blocking when called outside an event loop; inside one (an async test) it returns a
        coroutine, so write `await fake.wait_until(...)` there.
        """
        description = message or getattr(predicate, "__name__", "condition")
        deadline = time.monotonic() + timeout

        def check() -> Any:
            value = predicate()
            if not value and time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {description}")
            return value

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            while not (value := check()):
                time.sleep(interval)
            return value

        async def poll() -> Any:
            while not (value := check()):
                await asyncio.sleep(interval)
            return value

        return poll()

    # == HTTP ==============================================================================
    def build_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)

    async def _handle_method(self, request: web.Request) -> web.Response:
        if self._update_arrived is None:
            self._update_arrived = asyncio.Event()
        if request.match_info["token"] != self.token:
            return _error_response(401, "Unauthorized")
        requested = request.match_info["method"]
        name, handler = self._handlers.get(requested.lower(), (requested, None))
        try:
            params, files = await _read_params(request)
        except ApiError as exc:
            return _error_response(exc.status, exc.description)
        call = Call(name, params, time.monotonic(), files)
        with self.lock:
            self._calls.append(call)
            gate = self._holds.get(name.lower())
        if gate is not None:
            await asyncio.to_thread(gate.wait, 120)
        with self.lock:
            failure = self._take_failure(name)
            refusal = self._drafts_refusal if name == "sendMessageDraft" else None
            retry_after = self.flood.admit(name, params) if failure is None else None
        try:
            if failure is not None:
                raise ApiError(failure.status, failure.description, failure.retry_after)
            if retry_after is not None:
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
            if refusal is not None:
                raise ApiError(*refusal)
            if handler is None:
                result: Any = True  # unknown methods: recorded, answered ok
            elif inspect.iscoroutinefunction(handler):
                result = await handler(params, files)
            else:
                with self.lock:
                    result = handler(params, files)
        except BadRequest as exc:
            return self._refuse(call, 400, f"Bad Request: {exc.description}")
        except ApiError as exc:
            return self._refuse(call, exc.status, exc.description, exc.retry_after)
        return web.json_response({"ok": True, "result": result})

    def _refuse(self, call: Call, status: int, description: str,
                retry_after: int | None = None) -> web.Response:
        with self.lock:
            call.status, call.description = status, description
        return _error_response(status, description, retry_after)

    def _take_failure(self, name: str) -> _Failure | None:
        queue = self._failures.get(name.lower())
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    async def _handle_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(401, "Unauthorized")
        path = request.match_info["path"]
        with self.lock:
            failure = self._take_failure("download")
        if failure is not None:
            return _error_response(failure.status, failure.description, failure.retry_after)
        with self.lock:
            stored = next((f for f in self._files.values() if f.file_path == path), None)
        if stored is None:
            return _error_response(404, "Not Found")
        if self.download_gate is not None:
            await asyncio.to_thread(self.download_gate.wait, 30)
        return web.Response(body=stored.data,
                            content_type=stored.mime_type or "application/octet-stream")
