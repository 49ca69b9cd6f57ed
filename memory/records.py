"""The plain values the core storage hands out: who owns a conversation, users, groups,
conversations, messages, inbox items and journaled updates, and the timestamps' text form.

They live apart from the storage classes (memory/directory.py, memory/conversations.py,
memory/inbox.py, memory/usage_ledger.py) so that every layer can name them without
importing a storage, and so the Store, which builds those classes, imports no feature.
Timestamps are stored as ISO 8601 text in UTC with milliseconds (`to_text`), which sorts
as it reads and means the same on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def from_text(value: str) -> datetime:
    return datetime.fromisoformat(value)


VISIBLE_STATUSES = ("pending", "complete", "interrupted", "failed")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a conversation belongs to: one user, or one group chat / forum topic."""

    user_id: int | None = None
    group_key: str | None = None

    @classmethod
    def user(cls, user_id: int) -> "Owner":
        return cls(user_id=user_id)

    @classmethod
    def group(cls, group_key: str) -> "Owner":
        return cls(group_key=group_key)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    platform: str
    external_id: str
    display_name: str | None
    language: str | None
    timezone: str | None
    persona_id: str | None = None
    language_override: str | None = None
    me_name: str | None = None
    me_description: str | None = None
    status: str = "active"
    allowed: bool = False
    refused_at: str | None = None

    @property
    def name(self) -> str:
        """How the character calls the user: their /me name, else their display name."""
        return self.me_name or self.display_name or self.external_id

    @property
    def ui_language(self) -> str | None:
        return self.language_override or self.language


@dataclass(frozen=True, slots=True)
class Group:
    group_key: str
    title: str | None
    persona_id: str | None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    platform: str
    update_id: int
    chat_key: str | None
    payload: str


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    user_id: int | None
    group_key: str | None
    persona_id: str
    title: str | None
    created_at: str
    updated_at: str
    active: bool
    boundary_message_id: int

    @property
    def owner(self) -> Owner:
        return Owner(self.user_id, self.group_key)


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    tokens: int
    created_at: str
    status: str
    user_id: int | None = None
    speaker_name: str | None = None
    platform_message_id: str | None = None
    reply_to: int | None = None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """The part of a message that request assembly needs."""

    id: int
    role: str
    content: str
    tokens: int
    created_at: str
    status: str
    lead: int = 0  # characters a decoration (a time stamp) put in front of the stored text


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    conversation_id: int
    user_id: int | None
    speaker_name: str | None
    content: str
    platform_message_id: str | None
    created_at: str
