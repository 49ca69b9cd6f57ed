"""Chat import: a SillyTavern chat (`.jsonl`) or this project's own `/export` JSON becomes
a user's active conversation with a persona, timestamps kept.

SillyTavern writes one JSON object per line: a header (`user_name`, `character_name`,
`create_date`, `chat_metadata`), then one message per line (`name`, `is_user`,
`is_system`, `send_date`, `mes`, and extras such as swipes, of which only the chosen text
`mes` is kept). Its `send_date` has had several shapes over the years, all read here:
epoch milliseconds (a number, or digits in a string), ISO 8601, its "humanized"
`2023-05-08 @13h 56m 12s 345ms`, the older `May 8, 2023 1:56pm`, and JavaScript's
`Mon May 08 2023 13:56:12 GMT+0800 (…)`. Times without a zone are read in the user's
zone. A date that cannot be read never fails the import: the message takes the time of
the one before it (or, for the first ones, the next readable time, the header's date, or
now), and the count is reported.

`is_system` messages (notes SillyTavern hides from the model) are kept, hidden: nothing is
lost, nothing is sent. Empty messages are skipped.

The whole file is read and checked before anything is written; the write is one
transaction, so a bad file changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as date_parser

from memory.records import Conversation, Owner, to_text, utc_now
from memory.store import Store
from memory.tokens import count_many

COMPANION_FORMAT = "companion-chat/1"
MAX_CHAT_FILE_BYTES = 64 * 1024 * 1024  # about 100,000 messages; parsing takes several times this

_HUMANIZED = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2}) ?@(\d{1,2})h ?(\d{1,2})m ?(\d{1,2})s(?: ?(\d{1,3})ms)?$")
_EPOCH = re.compile(r"^\d{9,14}(\.\d+)?$")
_JS_ZONE = re.compile(r"GMT([+-]\d{2}:?\d{2})")


class ChatImportError(ValueError):
    """The file cannot be imported; the message says what is wrong and where."""


@dataclass(frozen=True)
class ImportedMessage:
    role: str  # user | assistant
    content: str
    speaker_name: str | None
    created_at: datetime | None  # None: unreadable, filled in later
    hidden: bool = False


@dataclass(frozen=True)
class ParsedChat:
    source: str  # "SillyTavern" | "companion"
    messages: list[ImportedMessage]
    started_at: datetime | None = None

    @property
    def unreadable_dates(self) -> int:
        return sum(message.created_at is None for message in self.messages)


@dataclass(frozen=True)
class ImportResult:
    conversation: Conversation
    messages: int
    unreadable_dates: int
    source: str


def _epoch(value: float) -> datetime | None:
    seconds = value / 1000 if value > 1e11 else value
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if 1990 <= moment.year <= 2200 else None


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def parse_send_date(value: Any, zone: ZoneInfo) -> datetime | None:
    """A SillyTavern `send_date` (or an export's `created_at`) as an aware datetime, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _epoch(float(value))
    text = str(value).strip()
    if not text:
        return None
    if _EPOCH.match(text):
        return _epoch(float(text))
    if match := _HUMANIZED.match(text):
        year, month, day, hour, minute, second, millis = (int(g or 0) for g in match.groups())
        try:
            return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=zone)
        except ValueError:
            return None
    try:
        return _in_zone(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
    except ValueError:
        pass
    if not re.search(r"\d{4}", text):
        return None  # the parser would invent a year (and day) for "1:56pm"
    cleaned = _JS_ZONE.sub(r"\1", re.sub(r"\s*\(.*\)\s*$", "", text))  # "GMT+0800 (CST)" -> "+0800"
    try:
        return _in_zone(date_parser.parse(cleaned), zone)
    except (ValueError, OverflowError, TypeError):
        return None


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChatImportError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ChatImportError(f"{where} is JSON nested too deeply to be a chat") from None


def parse_sillytavern(text: str, zone: ZoneInfo) -> ParsedChat:
    messages: list[ImportedMessage] = []
    started_at = None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    for index, (number, line) in enumerate(lines):
        record = _load_json(line, f"line {number}")
        if not isinstance(record, dict):
            raise ChatImportError(f"line {number} is not a JSON object; a SillyTavern chat has one message per line")
        if "mes" not in record:
            if index == 0:  # the header
                started_at = parse_send_date(record.get("create_date"), zone)
                continue
            raise ChatImportError(f"line {number} has no 'mes' (message text); is this a SillyTavern chat?")
        content = record["mes"]
        if not isinstance(content, str):
            raise ChatImportError(f"line {number}: 'mes' must be text, not {type(content).__name__}")
        if content.strip():
            messages.append(_message("user" if record.get("is_user") else "assistant", content, record,
                                     record.get("send_date"), zone, hidden=bool(record.get("is_system"))))
    return ParsedChat("SillyTavern", messages, started_at)


def _message(role: str, content: str, record: dict, date: Any, zone: ZoneInfo,
             hidden: bool = False) -> ImportedMessage:
    name = record.get("name")
    return ImportedMessage(role, content, str(name) if name else None, parse_send_date(date, zone), hidden)


def parse_companion(data: dict, zone: ZoneInfo) -> ParsedChat:
    if data.get("format") != COMPANION_FORMAT:
        raise ChatImportError(f"unknown export format {data.get('format')!r}; expected {COMPANION_FORMAT!r}")
    records = data.get("messages")
    if not isinstance(records, list):
        raise ChatImportError("the export has no 'messages' list")
    messages: list[ImportedMessage] = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise ChatImportError(f"message {number} is not a JSON object")
        role, content = record.get("role"), record.get("content")
        if role not in ("user", "assistant"):
            raise ChatImportError(f"message {number}: role must be 'user' or 'assistant', not {role!r}")
        if not isinstance(content, str):
            raise ChatImportError(f"message {number}: 'content' must be text")
        if content.strip():
            messages.append(_message(role, content, record, record.get("created_at"), zone))
    return ParsedChat("companion", messages)


def parse_chat(text: str, zone: ZoneInfo) -> ParsedChat:
    """Either format, told apart by its shape."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ChatImportError("the file is empty")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    except RecursionError:
        raise ChatImportError("the file is JSON nested too deeply to be a chat") from None
    if isinstance(whole, dict) and "format" in whole:
        chat = parse_companion(whole, zone)
    elif isinstance(whole, list):
        raise ChatImportError("a JSON list is not a chat this command reads: use a SillyTavern .jsonl "
                              f"or a {COMPANION_FORMAT} export")
    else:
        chat = parse_sillytavern(text, zone)
    if not chat.messages:
        raise ChatImportError("the file holds no messages to import")
    return chat


def read_chat_file(path: Path, zone: ZoneInfo) -> ParsedChat:
    try:
        if path.stat().st_size > MAX_CHAT_FILE_BYTES:
            raise ChatImportError(f"{path.name}: the file is over {MAX_CHAT_FILE_BYTES // (1024 * 1024)} MB; "
                                  "split the chat and import the parts one after another")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ChatImportError(f"{path} is a folder; give the chat file") from None
    except UnicodeDecodeError:
        raise ChatImportError(f"{path} is not UTF-8 text; export the chat again as .jsonl or JSON") from None
    except OSError as exc:
        raise ChatImportError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_chat(text, zone)
    except ChatImportError as exc:
        raise ChatImportError(f"{path.name}: {exc}") from None


def _filled_times(chat: ParsedChat) -> list[datetime]:
    """Every message's time; an unreadable one takes its predecessor's (see the module doc)."""
    known = [m.created_at for m in chat.messages if m.created_at is not None]
    last = known[0] if known else (chat.started_at or utc_now())
    times = []
    for message in chat.messages:
        last = message.created_at or last
        times.append(last)
    return times


def import_chat(store: Store, owner: Owner, persona_id: str, chat: ParsedChat, *,
                title: str | None = None) -> ImportResult:
    """Write the chat as a new conversation, which becomes the owner's active one with the persona."""
    counts = count_many([m.content for m in chat.messages])
    with store.transaction():
        conversation = store.conversations.start_conversation(owner, persona_id, title=title)
        for message, at, tokens in zip(chat.messages, _filled_times(chat), counts):
            store.conversations.add_message(
                conversation.id, message.role, message.content, tokens=tokens, created_at=to_text(at),
                status="hidden" if message.hidden else "complete", speaker_name=message.speaker_name,
                user_id=owner.user_id if message.role == "user" else None)
    return ImportResult(store.conversations.conversation(conversation.id), len(chat.messages),
                        chat.unreadable_dates, chat.source)
