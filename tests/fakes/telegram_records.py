"""The fake Bot API's records and wire format: the constants tests use (the default user,
group and token, Telegram's file limits), what the fake stores (calls, files, chat
messages) and how requests and answers are encoded (parameters in every form the Bot
API accepts, error bodies, inline keyboards, the entities clients attach to typed text).
Part of tests/fakes/telegram_server.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.telegram_text import BadRequest, utf16_len

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
