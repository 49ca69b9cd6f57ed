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
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from aiohttp import web

from tests.fakes.server import ThreadedServer
from tests.fakes.telegram_limits import FloodControl, FloodLimits
from tests.fakes.telegram_text import (
    CAPTION_LIMIT,
    BadRequest,
    read_text,
    utf16_len,
)

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_0123456789abcdef"
DEFAULT_USER_ID = 1001
DEFAULT_GROUP_ID = -1001234567890
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files for bots
UPLOAD_LIMIT = 50 * 1024 * 1024

# Parameters whose value is a string even when it looks like JSON ("123", "true").
_STRING_PARAMS = {
    "text", "caption", "parse_mode", "callback_query_id", "url", "query", "file_id", "action",
    "emoji", "title", "description", "short_description", "name", "secret_token", "language_code",
    "business_connection_id", "inline_message_id", "question", "explanation", "address",
}
_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
# What getUpdates delivers when allowed_updates was never given (or given as []).
_DEFAULT_EXCLUDED_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_CONTENT_KINDS = ("text", "document", "photo", "voice", "audio", "video", "sticker", "poll",
                  "animation", "video_note", "contact", "location")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request as the server received it."""

    method: str  # canonical spelling, e.g. "sendMessage"
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int = 200
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str


@dataclass
class ChatMessage:
    """A message in a chat as a user sees it now (edits applied)."""

    chat_id: int
    message_id: int
    from_bot: bool
    payload: dict[str, Any]  # the Message object, as the Bot API returns it
    edits: int = 0

    @property
    def text(self) -> str | None:
        return self.payload.get("text")

    @property
    def entities(self) -> list[dict[str, Any]]:
        return self.payload.get("entities") or self.payload.get("caption_entities") or []

    @property
    def caption(self) -> str | None:
        return self.payload.get("caption")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.payload.get("reply_markup")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    @property
    def thread_id(self) -> int | None:
        return self.payload.get("message_thread_id")

    @property
    def kind(self) -> str:
        return next((k for k in _CONTENT_KINDS if k in self.payload), "other")


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    times: int


class FakeTelegram(ThreadedServer):
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

    # == scripting: identities, chats, files ==============================================
    def user(self, user_id: int = DEFAULT_USER_ID, *, first_name: str = "Alice",
             username: str | None = "alice", language_code: str | None = "en",
             last_name: str | None = None, is_premium: bool | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username),
                           ("language_code", language_code), ("is_premium", is_premium)):
            if value is not None:
                user[key] = value
        return user

    def open_private_chat(self, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        user = self._as_user(user)
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return self._register_chat(chat)

    def open_group(self, chat_id: int = DEFAULT_GROUP_ID, *, title: str = "Test group",
                   chat_type: str = "supergroup", is_forum: bool = False) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type, "title": title}
        if is_forum:
            chat["is_forum"] = True
        return self._register_chat(chat)

    def add_file(self, data: bytes, file_name: str | None = None,
                 mime_type: str | None = None, folder: str = "documents") -> str:
        """Register a file as if some user had uploaded it; returns its file_id."""
        with self.lock:
            number = next(self._file_counter)
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1]
            elif mime_type:
                suffix = mimetypes.guess_extension(mime_type) or ""
            stored = StoredFile(
                file_id=f"BQACAgIAAxkBAAI{number:06d}fake", file_unique_id=f"AgAD{number:06d}",
                data=data, file_name=file_name, mime_type=mime_type,
                file_path=f"{folder}/file_{number}{suffix}",
            )
            self._files[stored.file_id] = stored
            return stored.file_id

    def file_bytes(self, file_id: str) -> bytes:
        with self.lock:
            return self._files[file_id].data

    # == scripting: updates from users ====================================================
    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update {"update_id": n, kind: payload} for getUpdates."""
        with self.lock:
            update = {"update_id": self._next_update_id, kind: payload}
            self._next_update_id += 1
            self._updates.append(update)
        if self.loop is not None and self._update_arrived is not None:
            self.loop.call_soon_threadsafe(self._update_arrived.set)
        return update

    def private_message(self, text: str, *, user: dict[str, Any] | int | None = None,
                        language_code: str | None = "en", **extra: Any) -> dict[str, Any]:
        """A text message from a user in their private chat with the bot; returns the Message."""
        if user is None or isinstance(user, int):
            user = self.user(user or DEFAULT_USER_ID, language_code=language_code)
        chat = self.open_private_chat(user)
        return self._user_message(chat, user, {"text": text}, **extra)

    def group_message(self, text: str, *, chat_id: int = DEFAULT_GROUP_ID,
                      user: dict[str, Any] | int | None = None, chat_type: str = "supergroup",
                      mention: str | None = None, **extra: Any) -> dict[str, Any]:
        """A message in a group. mention="username" prefixes "@botname " (a mention entity),
        mention="text_mention" prefixes the bot's first name as a text_mention entity."""
        chat = self._known_chat(chat_id) or self.open_group(chat_id, chat_type=chat_type)
        user = self._as_user(user)
        extra_entities: list[dict[str, Any]] = []
        if mention == "username":
            text = f"@{self.bot_user['username']} {text}"
        elif mention == "text_mention":
            name = self.bot_user["first_name"]
            text = f"{name} {text}"
            extra_entities.append({"type": "text_mention", "offset": 0, "length": utf16_len(name),
                                   "user": dict(self.bot_user)})
        elif mention is not None:
            raise ValueError("mention must be 'username', 'text_mention' or None")
        return self._user_message(chat, user, {"text": text}, extra_entities=extra_entities, **extra)

    def topic_message(self, text: str, *, thread_id: int, chat_id: int = DEFAULT_GROUP_ID,
                      user: dict[str, Any] | int | None = None, **extra: Any) -> dict[str, Any]:
        """A message in a forum topic of a supergroup."""
        chat = self._known_chat(chat_id) or self.open_group(chat_id, is_forum=True)
        return self._user_message(chat, self._as_user(user), {"text": text},
                                  thread_id=thread_id, **extra)

    def reply_to(self, message_id: int, text: str, *, chat_id: int = DEFAULT_USER_ID,
                 user: dict[str, Any] | int | None = None, **extra: Any) -> dict[str, Any]:
        """A user's reply to an earlier message (typically one of the bot's) in `chat_id`."""
        chat = self._chat_or_error(chat_id)
        return self._user_message(chat, self._as_user(user), {"text": text},
                                  reply_to=message_id, **extra)

    def edit_user_message(self, message: dict[str, Any], new_text: str) -> dict[str, Any]:
        """The user edits one of their text messages: an `edited_message` update."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        with self.lock:
            stored = self._messages[chat_id][message_id]
            payload = dict(stored.payload, text=new_text, edit_date=int(time.time()))
            entities = _detect_entities(new_text)
            payload.pop("entities", None)
            if entities:
                payload["entities"] = entities
            stored.payload = payload
            stored.edits += 1
        self.push_update("edited_message", payload)
        return payload

    def callback_query(self, message_id: int, data: str, *, chat_id: int = DEFAULT_USER_ID,
                       user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """The user presses an inline button with callback `data` under `message_id`."""
        with self.lock:
            message = self._messages[chat_id][message_id].payload
            query_id = f"{next(self._callback_counter)}{abs(chat_id) % 10**6:06d}"
            self._open_callback_queries.add(query_id)
        query = {"id": query_id, "from": self._as_user(user), "message": dict(message),
                 "chat_instance": f"-{abs(chat_id)}77", "data": data}
        self.push_update("callback_query", query)
        return query

    def sticker(self, *, chat_id: int | None = None, user: dict[str, Any] | int | None = None,
                emoji: str = "😀") -> dict[str, Any]:
        file_id = self.add_file(b"RIFF....WEBP", None, "image/webp", folder="stickers")
        content = {"sticker": {**self._file_fields(file_id), "type": "regular", "width": 512,
                               "height": 512, "is_animated": False, "is_video": False,
                               "emoji": emoji}}
        return self._message_in(chat_id, user, content)

    def photo(self, data: bytes = b"\xff\xd8\xff fake jpeg", *, caption: str | None = None,
              chat_id: int | None = None, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        file_id = self.add_file(data, None, "image/jpeg", folder="photos")
        content: dict[str, Any] = {"photo": [{**self._file_fields(file_id), "width": 800,
                                              "height": 600}]}
        content["photo"][0].pop("mime_type", None)
        content["photo"][0].pop("file_name", None)
        return self._message_in(chat_id, user, content, caption=caption)

    def voice(self, data: bytes = b"OggS fake opus", *, duration: int = 3,
              chat_id: int | None = None, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        file_id = self.add_file(data, None, "audio/ogg", folder="voice")
        content = {"voice": {**self._file_fields(file_id), "duration": duration}}
        content["voice"].pop("file_name", None)
        return self._message_in(chat_id, user, content)

    def audio(self, data: bytes, *, file_name: str = "song.mp3", mime_type: str = "audio/mpeg",
              duration: int = 3, chat_id: int | None = None,
              user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """An audio file (music player style), as sent from the attachment menu."""
        file_id = self.add_file(data, file_name, mime_type, folder="music")
        return self._message_in(chat_id, user, {"audio": {**self._file_fields(file_id), "duration": duration}})

    def video_note(self, data: bytes, *, duration: int = 3, chat_id: int | None = None,
                   user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """A round video message (MP4)."""
        file_id = self.add_file(data, None, "video/mp4", folder="video_notes")
        content = {"video_note": {**self._file_fields(file_id), "length": 240, "duration": duration}}
        content["video_note"].pop("mime_type", None)
        return self._message_in(chat_id, user, content)

    def document(self, file_id: str, *, caption: str | None = None, chat_id: int | None = None,
                 user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """A document message for a file registered with `add_file`."""
        return self._message_in(chat_id, user, {"document": self._file_fields(file_id)},
                                caption=caption)

    def forwarded_message(self, text: str, *, origin_user: dict[str, Any] | None = None,
                          chat_id: int | None = None, user: dict[str, Any] | int | None = None
                          ) -> dict[str, Any]:
        origin = origin_user or self.user(2002, first_name="Bob", username="bob")
        forward = {"forward_origin": {"type": "user", "sender_user": origin,
                                      "date": int(time.time()) - 3600}}
        return self._message_in(chat_id, user, {"text": text, **forward})

    def poll(self, question: str, options: Iterable[str], *, chat_id: int | None = None,
             user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        poll = {"id": f"5{next(self._file_counter):09d}", "question": question,
                "options": [{"persistent_id": str(i), "text": o, "voter_count": 0}
                            for i, o in enumerate(options)],
                "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
                "type": "regular", "allows_multiple_answers": False, "allows_revoting": False,
                "members_only": False}
        return self._message_in(chat_id, user, {"poll": poll})

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """The user deletes a message (bots get no update for that; it is just gone)."""
        with self.lock:
            self._messages[chat_id].pop(message_id, None)

    def stopped_generation(self, chat_id: int, draft_id: int,
                           thread_id: int | None = None) -> dict[str, Any]:
        """The user pressed the stop button of a draft sent with can_stop."""
        payload: dict[str, Any] = {"chat": self._chat_or_error(chat_id), "draft_id": draft_id}
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
        return self.push_update("stopped_message_generation", payload)

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

    # == API methods =======================================================================
    def _api_getMe(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    def _api_getChat(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False}}

    async def _api_getUpdates(self, params: dict[str, Any],
                              files: dict[str, UploadedFile]) -> list[dict[str, Any]]:
        with self.lock:
            if self.webhook["url"]:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                    "active; use deleteWebhook to delete the webhook first")
            if "allowed_updates" in params:
                self._allowed_updates = list(params["allowed_updates"] or [])
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        deadline = time.monotonic() + max(0, int(params.get("timeout") or 0))
        assert self._update_arrived is not None
        while True:
            self._update_arrived.clear()
            with self.lock:
                ready = self._confirm_and_select(offset, limit)
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                with self.lock:
                    for update in ready:
                        self.deliveries[update["update_id"]] = self.deliveries.get(update["update_id"], 0) + 1
                return ready
            try:
                await asyncio.wait_for(self._update_arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _confirm_and_select(self, offset: int, limit: int) -> list[dict[str, Any]]:
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = set(self._allowed_updates)
        selected = []
        for update in self._updates:
            kind = next(k for k in update if k != "update_id")
            if (kind in allowed) if allowed else (kind not in _DEFAULT_EXCLUDED_UPDATES):
                selected.append(update)
        return selected[:limit]

    def _api_sendMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        text, entities = read_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._bot_message(chat, content, params).payload

    def _api_sendMessageDraft(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        chat = self._chat_or_error(params.get("chat_id"))
        if chat["type"] != "private":
            raise BadRequest("TEXTDRAFT_PEER_INVALID")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise BadRequest("draft_id must be non-zero")
        text, entities = read_text(params.get("text"), params.get("parse_mode"),
                                   params.get("entities"), allow_empty=True)
        self.drafts[(chat["id"], params.get("message_thread_id"))] = {
            "draft_id": draft_id, "text": text, "entities": entities,
            "can_stop": bool(params.get("can_stop")), "at": time.monotonic(),
        }
        return True

    def _api_editMessageText(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        stored = self._editable(params)
        text, entities = read_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        if "text" not in stored.payload:
            raise BadRequest("there is no text in the message to edit")
        markup = _inline_markup(params.get("reply_markup"))
        return self._apply_edit(stored, {"text": text, "entities": entities}, markup)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        stored = self._editable(params)
        return self._apply_edit(stored, {}, _inline_markup(params.get("reply_markup")))

    def _api_deleteMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        chat = self._chat_or_error(params.get("chat_id"))
        messages = self._messages.get(chat["id"], {})
        if params.get("message_id") not in messages:
            raise BadRequest("message to delete not found")
        del messages[params["message_id"]]
        return True

    def _api_sendChatAction(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self._chat_or_error(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise BadRequest("wrong parameter action in request")
        return True

    def _api_sendDocument(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("document", params, files)

    def _api_sendVoice(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("voice", params, files)

    def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("photo", params, files)

    def _api_getFile(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise BadRequest("invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise BadRequest("file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("commands must be a list of at most 100 BotCommand")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise BadRequest("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _api_deleteMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _api_getMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> list[Any]:
        return self.commands.get(self._commands_key(params), [])

    def _api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_callback_queries:
            raise BadRequest("query is too old and response timeout expired or query ID is invalid")
        self._open_callback_queries.discard(query_id)
        if len(str(params.get("text") or "")) > 200:
            raise BadRequest("MESSAGE_TOO_LONG")
        return True

    def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self.webhook["url"] = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_setWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook["url"] = url
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {**self.webhook, "pending_update_count": len(self._updates)}

    def _api_close(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        return True

    # == internals =========================================================================
    def _as_user(self, user: dict[str, Any] | int | None) -> dict[str, Any]:
        if isinstance(user, dict):
            return user
        return self.user(user if user is not None else DEFAULT_USER_ID)

    def _register_chat(self, chat: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            known = self._chats.setdefault(chat["id"], chat)
            self._messages.setdefault(chat["id"], {})
            self._next_message_id.setdefault(chat["id"], 1)
            return dict(known)

    def _known_chat(self, chat_id: int) -> dict[str, Any] | None:
        with self.lock:
            chat = self._chats.get(chat_id)
            return dict(chat) if chat else None

    def _chat_or_error(self, chat_id: Any) -> dict[str, Any]:
        with self.lock:
            if isinstance(chat_id, str) and chat_id.startswith("@"):
                chat = next((c for c in self._chats.values()
                             if c.get("username") == chat_id[1:]), None)
            else:
                chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None:
                raise BadRequest("chat not found")
            return dict(chat)

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _file_fields(self, file_id: str) -> dict[str, Any]:
        stored = self._files[file_id]
        fields: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                                  "file_size": len(stored.data)}
        if stored.file_name:
            fields["file_name"] = stored.file_name
        if stored.mime_type:
            fields["mime_type"] = stored.mime_type
        return fields

    def _message_in(self, chat_id: int | None, user: dict[str, Any] | int | None,
                    content: dict[str, Any], caption: str | None = None) -> dict[str, Any]:
        user = self._as_user(user)
        chat = self._chat_or_error(chat_id) if chat_id is not None else self.open_private_chat(user)
        if caption is not None:
            content = {**content, "caption": caption}
        return self._user_message(chat, user, content)

    def _user_message(self, chat: dict[str, Any], user: dict[str, Any], content: dict[str, Any],
                      *, reply_to: int | None = None, thread_id: int | None = None,
                      extra_entities: list[dict[str, Any]] | None = None,
                      entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        with self.lock:
            message_id = self._new_message_id(chat["id"])
            payload: dict[str, Any] = {"message_id": message_id, "from": user,
                                       "chat": dict(chat), "date": int(time.time())}
            if thread_id is not None:
                payload["message_thread_id"] = thread_id
                payload["is_topic_message"] = True
            if reply_to is not None:
                payload["reply_to_message"] = dict(self._messages[chat["id"]][reply_to].payload)
            payload.update(content)
            for key, source in (("entities", "text"), ("caption_entities", "caption")):
                if source in content:
                    found = (entities if entities is not None and key == "entities"
                             else _detect_entities(content[source]))
                    found = sorted((extra_entities or []) + found,
                                   key=lambda e: (e["offset"], -e["length"]))
                    if found:
                        payload[key] = found
            self._messages[chat["id"]][message_id] = ChatMessage(chat["id"], message_id, False, payload)
        self.push_update("message", payload)
        return payload

    def _bot_message(self, chat: dict[str, Any], content: dict[str, Any],
                     params: dict[str, Any]) -> ChatMessage:
        chat_id = chat["id"]
        payload: dict[str, Any] = {"message_id": 0, "from": dict(self.bot_user), "chat": chat,
                                   "date": int(time.time())}
        thread_id = params.get("message_thread_id")
        if thread_id is not None and chat.get("is_forum"):
            payload["message_thread_id"] = thread_id
            payload["is_topic_message"] = True
        reply = params.get("reply_parameters") or (
            {"message_id": params["reply_to_message_id"]} if params.get("reply_to_message_id") else None)
        if reply:
            target = self._messages[chat_id].get(reply.get("message_id"))
            if target is not None:
                payload["reply_to_message"] = dict(target.payload)
            elif not reply.get("allow_sending_without_reply"):
                raise BadRequest("message to be replied not found")
        payload.update(content)
        markup = _inline_markup(params.get("reply_markup"))
        if markup:
            payload["reply_markup"] = markup
        payload["message_id"] = self._new_message_id(chat_id)
        stored = ChatMessage(chat_id, payload["message_id"], True, payload)
        self._messages[chat_id][stored.message_id] = stored
        self.drafts.pop((chat_id, thread_id), None)  # sending a message ends the draft
        return stored

    def _editable(self, params: dict[str, Any]) -> ChatMessage:
        chat = self._chat_or_error(params.get("chat_id"))
        stored = self._messages.get(chat["id"], {}).get(params.get("message_id"))
        if stored is None:
            raise BadRequest("message to edit not found")
        if not stored.from_bot:
            raise BadRequest("message can't be edited")
        return stored

    def _apply_edit(self, stored: ChatMessage, content: dict[str, Any],
                    markup: dict[str, Any] | None) -> dict[str, Any]:
        current = stored.payload
        changed = (markup or None) != (current.get("reply_markup") or None)
        for key, value in content.items():
            changed = changed or (value or None) != (current.get(key) or None)
        if not changed:
            raise BadRequest("message is not modified: specified new message content and reply "
                             "markup are exactly the same as a current content and reply markup "
                             "of the message")
        payload = dict(current, edit_date=int(time.time()))
        for key, value in content.items():
            payload.pop(key, None)
            if value:
                payload[key] = value
        payload.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
        if markup:
            payload["reply_markup"] = markup
        stored.payload = payload
        stored.edits += 1
        return payload

    def _send_media(self, kind: str, params: dict[str, Any],
                    files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        value = params.get(kind)
        upload = files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://"):])
        if upload is not None:
            if len(upload.data) > UPLOAD_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            folder = {"document": "documents", "voice": "voice", "photo": "photos"}[kind]
            mime_type = upload.content_type
            if mime_type in ("", "application/octet-stream") and upload.filename:
                mime_type = mimetypes.guess_type(upload.filename)[0] or mime_type
            file_id = self.add_file(upload.data, upload.filename if kind == "document" else None,
                                    mime_type or None, folder=folder)
        elif isinstance(value, str) and value in self._files:
            file_id = value
        else:
            raise BadRequest("wrong file identifier/HTTP URL specified")
        fields = self._file_fields(file_id)
        if kind == "photo":
            fields.pop("file_name", None)
            fields.pop("mime_type", None)
            media: Any = [{**fields, "width": 800, "height": 600}]
        elif kind == "voice":
            fields.pop("file_name", None)
            media = {**fields, "duration": int(params.get("duration") or 1)}
        else:
            media = fields
        content: dict[str, Any] = {kind: media}
        if params.get("caption") is not None:
            caption, entities = read_text(params["caption"], params.get("parse_mode"),
                                          params.get("caption_entities"), limit=CAPTION_LIMIT,
                                          what="message caption", allow_empty=True)
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._bot_message(chat, content, params).payload

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")


# == module helpers ========================================================================

def _error_response(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters the way the Bot API accepts them: query string, urlencoded, multipart, JSON."""
    files: dict[str, UploadedFile] = {}
    raw: dict[str, Any] = {}
    if request.method == "GET":
        raw.update(request.query)
    elif request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request parameters")
        return (body if isinstance(body, dict) else {}), files
    else:
        raw.update(request.query)
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
            else:
                raw[key] = value
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _STRING_PARAMS or not isinstance(value, str):
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params, files


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    """The inline keyboard a message will carry; other keyboards do not show on the message."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    for row in rows:
        for button in row:
            if not button.get("text"):
                raise BadRequest("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise BadRequest("BUTTON_DATA_INVALID")
    return {"inline_keyboard": rows} if rows else None


_AUTO_ENTITIES = [
    ("bot_command", re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}")),
    ("url", re.compile(r"https?://[^\s]+")),
]


def _detect_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram clients attach to typed text: /commands, @mentions, URLs."""
    found = []
    for kind, pattern in _AUTO_ENTITIES:
        for match in pattern.finditer(text):
            found.append({"type": kind, "offset": utf16_len(text[:match.start()]),
                          "length": utf16_len(match.group(0))})
    return sorted(found, key=lambda e: e["offset"])
