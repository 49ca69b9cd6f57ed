"""What the service layer hands back to a face: plain data, no transport.

Texts a person reads are `Notice`s: a key of the face's message catalogue
(bot/texts.py) and its values, where a value may itself be a Notice (rendered first,
in the same language). The service decides *what* to say; each face decides how it
looks (a Telegram message with buttons, a terminal line, a Mini App card).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from memory.engine import TurnResult
from memory.facts import Fact
from memory.persona_catalog import PersonaEntry
from memory.records import Conversation, Message, Owner, User
from personas import Persona


@dataclass(frozen=True)
class Notice:
    """A text to show: catalogue `key` with `values` (Notices among them render first).
    `then` is shown right after it, on the next line."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    then: "Notice | None" = None
    lang: str | None = None  # shown in this language, not the reader's (/lang's answer)

    def followed_by(self, other: "Notice | None") -> "Notice":
        if other is None:
            return self
        tail = self.then.followed_by(other) if self.then else other
        return Notice(self.key, self.values, tail, self.lang)


@dataclass(frozen=True)
class Place:
    """Who is talking, and where: the one input every service call takes.

    `owner` is the user (a private chat, the terminal) or a group/topic key; the
    service resolves the conversation from it once per call and passes that down.
    `external_id` is the user's id on their platform (a Telegram id), for the access
    list and admins; `private` is False in groups."""

    user: User
    owner: Owner
    private: bool = True
    lang: str = "en"

    @classmethod
    def direct(cls, user: User, lang: str | None = None) -> "Place":
        """The user's own conversation (a private chat, the terminal chat)."""
        return cls(user, Owner.user(user.id), True, lang or user.ui_language or "en")


class Access(str, Enum):
    ALLOWED = "allowed"
    REFUSED = "refused"  # not admitted: one polite refusal (first time only)
    REFUSED_QUIETLY = "refused_quietly"  # refused before: say nothing again


class TurnStatus(str, Enum):
    ANSWERED = "answered"  # a complete reply (or stopped by the user)
    PARTIAL = "partial"  # the reply broke off: what arrived is kept, offer a retry
    FAILED = "failed"  # no reply: the message is saved, offer a retry
    MERGED = "merged"  # answered together with an earlier message of the same turn
    INPUT_REFUSED = "input_refused"  # screening refused what the user wrote: not stored
    OVER_BUDGET = "over_budget"  # today's token budget is used up: no model call
    REPLY_REFUSED = "reply_refused"  # screening withheld the reply
    NOTHING_TO_RETRY = "nothing_to_retry"
    NOTHING_TO_CONTINUE = "nothing_to_continue"
    EDIT_TOO_OLD = "edit_too_old"  # an edit of a message before the last exchange


@dataclass(frozen=True)
class Alternatives:
    """The replies generated for one user message, around the one shown."""

    shown_id: int
    index: int  # 0-based position of the shown one
    ids: tuple[int, ...]
    in_use: bool  # the shown one is the reply the character remembers

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def previous_id(self) -> int:
        return self.ids[self.index - 1]

    @property
    def next_id(self) -> int:
        return self.ids[(self.index + 1) % len(self.ids)]


@dataclass
class TurnOutcome:
    """The outcome of a turn (a message, a retry, a continuation, an edit).

    `shown` is the text to show as the reply (for a continuation, the addition only);
    `notices` are lines to show after it, in order (a screening warning, what was cut
    from a long message, which fallback model answered, the error of a broken reply)."""

    status: TurnStatus
    conversation_id: int | None = None
    reply: Message | None = None
    shown: str | None = None
    notices: list[Notice] = field(default_factory=list)
    before: list[Notice] = field(default_factory=list)  # lines to show before the reply (input warned)
    error: Notice | None = None
    alternatives: Alternatives | None = None
    result: TurnResult | None = None  # the engine's own record, for logs

    @property
    def retry_offered(self) -> bool:
        return self.status in (TurnStatus.PARTIAL, TurnStatus.FAILED, TurnStatus.REPLY_REFUSED)


class ReplayKind(str, Enum):
    NEW = "new"  # never stored: handle it as new
    HANDLED = "handled"  # stored and answered: nothing to do
    ANSWER_AGAIN = "answer_again"  # stored, never answered: answer now (retry)
    RESEND = "resend"  # the reply was stored but never delivered: deliver `reply`


@dataclass(frozen=True)
class Replay:
    kind: ReplayKind
    reply: Message | None = None
    failed: bool = False  # the stored reply was cut short (offer Retry under it)
    alternatives: Alternatives | None = None


@dataclass(frozen=True)
class ConversationView:
    """The conversation a place talks in now, with its persona and opening message."""

    conversation: Conversation
    persona: Persona
    greeting: str | None  # the persona's greeting when it opens the conversation
    last: Message | None = None


@dataclass(frozen=True)
class ConversationItem:
    conversation: Conversation
    opening: str | None  # the first thing the user said
    messages: int


@dataclass(frozen=True)
class HistoryLine:
    when: str  # stored UTC timestamp
    who: str
    content: str
    role: str


@dataclass(frozen=True)
class FactsView:
    persona: Persona
    facts: list[Fact]


@dataclass(frozen=True)
class SearchHit:
    message: Message
    who: str  # the persona's name, the speaker's, or None for "you"


@dataclass(frozen=True)
class SearchResults:
    query: str
    hits: list[SearchHit]


@dataclass(frozen=True)
class ExportFile:
    name: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Export:
    conversation: Conversation
    messages: int
    files: list[ExportFile]


@dataclass(frozen=True)
class PersonaMenu:
    current: Persona
    entries: list[PersonaEntry]


class SwitchKind(str, Enum):
    SAME = "same"  # already talking to it
    RESUMED = "resumed"  # back to where its conversation stopped
    STARTED = "started"  # a new conversation, opened by its greeting
    UNAVAILABLE = "unavailable"  # no such persona for this user


@dataclass(frozen=True)
class PersonaSwitch:
    kind: SwitchKind
    persona: Persona | None = None
    conversation: Conversation | None = None
    last: Message | None = None  # where it stopped (resumed) or the greeting (started)
    notice: Notice | None = None


@dataclass(frozen=True)
class DocumentItem:
    document: Any  # memory.reading.StoredDocument
    attached: bool
    upto: int | None = None


@dataclass(frozen=True)
class DocumentsView:
    items: list[DocumentItem]


@dataclass(frozen=True)
class Usage:
    today_tokens: int
    today_requests: int
    today_cached: int
    all_tokens: int
    all_requests: int
    cached_share: float
    cost: float | None  # None: no prices set
    currency: str


__all__ = [
    "Notice",
    "Place",
    "Access",
    "TurnStatus",
    "Alternatives",
    "TurnOutcome",
    "ReplayKind",
    "Replay",
    "ConversationView",
    "ConversationItem",
    "HistoryLine",
    "FactsView",
    "SearchHit",
    "SearchResults",
    "ExportFile",
    "Export",
    "PersonaMenu",
    "SwitchKind",
    "PersonaSwitch",
    "DocumentItem",
    "DocumentsView",
    "Usage",
]
