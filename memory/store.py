"""The one class that owns the database.

`Store` opens the SQLite file in WAL mode, applies the migration sets it is handed
(`memory.schema`), offers transactions (`transaction()`), and holds the core tables'
queries: users, groups, conversations, messages with their full-text index, the inbox,
the update journal, usage and calibration. Each feature's own tables have a storage class
of their own that holds their SQL on this connection (`FactStore`, `SummaryStore`,
`MemoryStateStore`, `EmbeddingIndex`, `RecallIndex`, `PersonaCatalog`, `UserChoices`,
`Checkins`, `ModerationEvents`, `DocumentStore`); nobody else writes SQL or touches
`db` (tests/test_project.py holds the list). A forget runs the cascade of the feature
storages' forget steps that the composition root hands in, then erases the core rows.

Every message is
stored with the exact text the model gets, its token count (computed here, once, at
insert) and a UTC timestamp. Nothing is deleted except by the user's explicit forget.

Reads that run on every turn (`history_since`) touch only the messages after the
conversation's persisted boundary, through the (conversation_id, id) index, so their
cost follows the window, not the length of the history.

Transactions (`transaction()`, and the storage classes' `db.atomic()`) begin IMMEDIATE:
other connections write to the same file (document ingestion in worker threads,
`companion ingest` or a second bot process starting), and a deferred transaction that
reads before it writes fails at once with "database is locked" when another connection
committed in between; the busy timeout cannot help it. Taking the write lock first makes
it wait its turn instead.
"""

from __future__ import annotations

import sqlite3
import contextlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Generator, Iterable, Iterator, Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.textsearch import index_form, match_expression
from memory.tokens import count_tokens

Clock = Callable[[], datetime]


class _Database(Database):
    """sqlite-utils' Database whose outermost `atomic()` takes the write lock at BEGIN."""

    @contextlib.contextmanager
    def atomic(self) -> Generator["Database", None, None]:
        if self.conn.in_transaction:  # nested: sqlite-utils' savepoint
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


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

    def where(self) -> tuple[str, list]:
        if self.user_id is not None:
            return "user_id = ?", [self.user_id]
        return "group_key = ?", [self.group_key]


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


_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, tokens, created_at, status, user_id, "
    "speaker_name, platform_message_id, reply_to"
)
def _user(row: tuple) -> User:
    return User(*row[:11], bool(row[11]), row[12])


_CONVERSATION_COLUMNS = (
    "id, user_id, group_key, persona_id, title, created_at, updated_at, active, boundary_message_id"
)
_USER_COLUMNS = ("id, platform, external_id, display_name, language, timezone, persona_id, "
                 "language_override, me_name, me_description, status, allowed, refused_at")
_USER_FIELDS = {"display_name", "language", "timezone", "persona_id", "language_override", "me_name",
                "me_description", "status", "allowed", "refused_at"}


def backup_database(source: Path, target: Path) -> int:
    """Copy the database with SQLite's online backup API: consistent even while the bot
    writes to it. Refuses to overwrite. Returns the size of the copy in bytes."""
    if not source.exists():
        raise FileNotFoundError(f"no database at {source} (COMPANION_DB)")
    if target.exists():
        raise FileExistsError(f"{target} exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reader, sqlite3.connect(partial) as writer:
        reader.backup(writer)
        writer.execute("PRAGMA journal_mode = DELETE")
        result = writer.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the copy failed its integrity check: {result}")
    partial.rename(target)
    return target.stat().st_size


class Store:
    def __init__(self, path: str | Path, *, migration_sets: Sequence[Migrations], clock: Clock = utc_now,
                 counter: Callable[[str], int] = count_tokens, synchronous: str = "NORMAL"):
        """`migration_sets`: the schema, applied in order (the composition root hands in
        `memory.schema.migration_sets()`). `synchronous`: NORMAL (default) makes a commit
        durable against a crash of the process, and costs no fsync per commit in WAL mode;
        FULL also survives a power loss or OS crash, at an fsync (milliseconds on many
        disks) per commit."""
        self.path = Path(path)
        self.clock = clock
        self.count = counter
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.db = _Database(connection, execute_plugins=False)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 30000")
        # Deleted content is overwritten on disk, so a forgotten user's text does not linger.
        self.db.execute("PRAGMA secure_delete = ON")
        # What a forget erases besides the core tables, and what a compaction merges besides
        # the messages' index: the composition root hands in the feature storages' steps,
        # in order (`set_forget_cascade`, `set_compact_steps`).
        self.forget_cascade: list[Callable[[int], None]] = []
        self.compact_steps: list[Callable[[], None]] = []
        if str(path) != ":memory:":
            self.db.enable_wal()
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        for migration_set in migration_sets:
            migration_set.apply(self.db)

    def close(self) -> None:
        self.db.close()

    def set_forget_cascade(self, steps: Sequence[Callable[[int], None]]) -> None:
        """The feature storages' forget steps, run in this order inside the forget's
        transaction, before the core rows go (a step may read what it derives from)."""
        self.forget_cascade = list(steps)

    def set_compact_steps(self, steps: Sequence[Callable[[], None]]) -> None:
        """The feature storages' index merges, run inside `compact`'s transaction."""
        self.compact_steps = list(steps)

    def transaction(self) -> contextlib.AbstractContextManager:
        """One transaction around several storage calls (nested: a savepoint). Callers
        outside the storage classes use this, never the connection."""
        return self.db.atomic()

    def integrity(self) -> str:
        """SQLite's own check of the file: 'ok', or what is damaged."""
        return self._one("PRAGMA integrity_check")[0]

    def now(self) -> str:
        return to_text(self.clock())

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self.db.execute(sql, list(params)).fetchall()

    def _one(self, sql: str, params: Iterable = ()) -> tuple | None:
        return self.db.execute(sql, list(params)).fetchone()

    # -- users ------------------------------------------------------------------------
    def ensure_user(self, platform: str, external_id: str | int, *, display_name: str | None = None,
                    language: str | None = None) -> User:
        """The user with this platform id, created on first sight; name and language refreshed."""
        external_id = str(external_id)
        with self.db.atomic():
            existing = self.find_user(platform, external_id)
            if existing is None:
                cursor = self.db.execute(
                    "INSERT INTO users (platform, external_id, display_name, language, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [platform, external_id, display_name, language, self.now()],
                )
                return self.user(cursor.lastrowid)
            changes = {}
            if display_name and display_name != existing.display_name:
                changes["display_name"] = display_name
            if language and existing.language is None:
                changes["language"] = language
            if changes:
                self.update_user(existing.id, **changes)
                return self.user(existing.id)
            return existing

    def find_user(self, platform: str, external_id: str | int) -> User | None:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE platform = ? AND external_id = ?",
                        [platform, str(external_id)])
        return _user(row) if row else None

    def user(self, user_id: int) -> User:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", [user_id])
        if row is None:
            raise KeyError(f"no user {user_id}")
        return _user(row)

    def users(self, platform: str | None = None) -> list[User]:
        where, params = ("WHERE platform = ?", [platform]) if platform else ("", [])
        return [_user(row) for row in self._rows(f"SELECT {_USER_COLUMNS} FROM users {where} ORDER BY id", params)]

    # -- groups and the persona each owner talks to ---------------------------------------
    def ensure_group(self, group_key: str, title: str | None = None) -> Group:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO groups (group_key, title, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (group_key) DO UPDATE SET title = coalesce(excluded.title, title)",
                [group_key, title, self.now()])
        return Group(*self._one("SELECT group_key, title, persona_id FROM groups WHERE group_key = ?", [group_key]))

    def persona_of(self, owner: Owner) -> str | None:
        """The persona this user or group talks to now (None: the default)."""
        if owner.user_id is not None:
            row = self._one("SELECT persona_id FROM users WHERE id = ?", [owner.user_id])
        else:
            row = self._one("SELECT persona_id FROM groups WHERE group_key = ?", [owner.group_key])
        return row[0] if row else None

    def set_persona_of(self, owner: Owner, persona_id: str) -> None:
        with self.db.atomic():
            if owner.user_id is not None:
                self.db.execute("UPDATE users SET persona_id = ? WHERE id = ?", [persona_id, owner.user_id])
            else:
                self.ensure_group(owner.group_key)
                self.db.execute("UPDATE groups SET persona_id = ? WHERE group_key = ?",
                                [persona_id, owner.group_key])

    def update_user(self, user_id: int, **fields: str | int | None) -> None:
        unknown = set(fields) - _USER_FIELDS
        if unknown:
            raise ValueError(f"cannot update user fields {sorted(unknown)}")
        with self.db.atomic():
            self.db["users"].update(user_id, fields)

    # -- conversations ----------------------------------------------------------------
    def conversation(self, conversation_id: int) -> Conversation:
        row = self._one(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                        [conversation_id])
        if row is None:
            raise KeyError(f"no conversation {conversation_id}")
        return Conversation(*row[:7], bool(row[7]), row[8])

    def active_conversation(self, owner: Owner, persona_id: str) -> Conversation | None:
        where, params = owner.where()
        row = self._one(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE {where} AND persona_id = ? "
            "AND active = 1 ORDER BY id DESC LIMIT 1",
            [*params, persona_id],
        )
        return Conversation(*row[:7], bool(row[7]), row[8]) if row else None

    def start_conversation(self, owner: Owner, persona_id: str, title: str | None = None) -> Conversation:
        """A new active conversation; the owner's earlier ones with this persona are kept, inactive."""
        where, params = owner.where()
        now = self.now()
        with self.db.atomic():
            self.db.execute(
                f"UPDATE conversations SET active = 0 WHERE {where} AND persona_id = ?",
                [*params, persona_id],
            )
            cursor = self.db.execute(
                "INSERT INTO conversations (user_id, group_key, persona_id, title, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [owner.user_id, owner.group_key, persona_id, title, now, now],
            )
        return self.conversation(cursor.lastrowid)

    def resume_conversation(self, conversation_id: int) -> Conversation:
        """Make an older conversation the active one for its owner and persona."""
        conversation = self.conversation(conversation_id)
        where, params = conversation.owner.where()
        with self.db.atomic():
            self.db.execute(f"UPDATE conversations SET active = 0 WHERE {where} AND persona_id = ?",
                            [*params, conversation.persona_id])
            self.db.execute("UPDATE conversations SET active = 1 WHERE id = ?", [conversation_id])
        return self.conversation(conversation_id)

    def conversations_of(self, owner: Owner, persona_id: str | None = None) -> list[Conversation]:
        where, params = owner.where()
        if persona_id is not None:
            where, params = f"{where} AND persona_id = ?", [*params, persona_id]
        rows = self._rows(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE {where} ORDER BY id DESC", params
        )
        return [Conversation(*row[:7], bool(row[7]), row[8]) for row in rows]

    def conversation_ids_of(self, owner: Owner, persona_id: str) -> list[int]:
        """The ids of every conversation of this owner with this persona."""
        where, params = owner.where()
        return [row[0] for row in self._rows(f"SELECT id FROM conversations WHERE {where} AND persona_id = ?",
                                             [*params, persona_id])]

    def set_boundary(self, conversation_id: int, message_id: int) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversations SET boundary_message_id = ? WHERE id = ? AND boundary_message_id < ?",
                [message_id, conversation_id, message_id],
            )

    def set_title(self, conversation_id: int, title: str) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE conversations SET title = ? WHERE id = ?", [title, conversation_id])

    # -- messages ---------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, *, status: str = "complete",
                    user_id: int | None = None, speaker_name: str | None = None,
                    platform_message_id: str | int | None = None, reply_to: int | None = None,
                    created_at: str | None = None, tokens: int | None = None) -> Message:
        """Store one message with its token count; the full-text index is updated with it."""
        if tokens is None:
            tokens = self.count(content)
        created_at = created_at or self.now()
        pmid = None if platform_message_id is None else str(platform_message_id)
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO messages (conversation_id, role, user_id, speaker_name, content, tokens, "
                "created_at, platform_message_id, status, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [conversation_id, role, user_id, speaker_name, content, tokens, created_at, pmid,
                 status, reply_to],
            )
            message_id = cursor.lastrowid
            self.db.execute("INSERT INTO messages_fts (rowid, body) VALUES (?, ?)",
                            [message_id, index_form(content)])
            self.db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                            [created_at, conversation_id])
        return Message(message_id, conversation_id, role, content, tokens, created_at, status,
                       user_id, speaker_name, pmid, reply_to)

    def message(self, message_id: int) -> Message:
        row = self._one(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", [message_id])
        if row is None:
            raise KeyError(f"no message {message_id}")
        return Message(*row)

    def set_status(self, message_id: int, status: str) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE messages SET status = ? WHERE id = ?", [status, message_id])

    def mark_pending_failed(self) -> int:
        """After a crash: inputs a crash left waiting in the inbox join their conversation's
        history, and every user message whose turn never finished is marked failed (it stays
        in the history and can be answered again). Returns how many were marked."""
        with self.db.atomic():
            for (conversation_id,) in self._rows("SELECT DISTINCT conversation_id FROM inbox"):
                self.accept_inputs(conversation_id)
            return self.db.execute("UPDATE messages SET status = 'failed' WHERE status = 'pending'").rowcount

    def set_statuses(self, message_ids: Iterable[int], status: str) -> None:
        with self.db.atomic():
            for message_id in message_ids:
                self.db.execute("UPDATE messages SET status = ? WHERE id = ?", [status, message_id])

    def replace_content(self, message_id: int, content: str) -> Message:
        """New text for one message (a continued reply): counted again, re-indexed."""
        with self.db.atomic():
            self.db.execute("UPDATE messages SET content = ?, tokens = ? WHERE id = ?",
                            [content, self.count(content), message_id])
            self.db.execute("DELETE FROM messages_fts WHERE rowid = ?", [message_id])
            self.db.execute("INSERT INTO messages_fts (rowid, body) VALUES (?, ?)",
                            [message_id, index_form(content)])
        return self.message(message_id)

    def last_exchange(self, conversation_id: int) -> tuple[list[Message], Message | None]:
        """The newest visible exchange: the user messages of the last turn and its reply (if any)."""
        rows = self._rows(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND status != 'hidden' "
            "ORDER BY id DESC LIMIT 200", [conversation_id])
        messages = [Message(*row) for row in rows]
        reply = messages[0] if messages and messages[0].role == "assistant" else None
        users: list[Message] = []
        for message in messages[1:] if reply else messages:
            if message.role != "user":
                break
            users.append(message)
        return users[::-1], reply

    def alternatives(self, user_message_id: int) -> list[Message]:
        """Every reply ever generated for one user message (hidden ones too), oldest first."""
        rows = self._rows(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE reply_to = ? AND role = 'assistant' ORDER BY id",
            [user_message_id])
        return [Message(*row) for row in rows]

    def find_by_platform_id(self, conversation_id: int, platform_message_id: str | int,
                            role: str | None = None) -> Message | None:
        sql = (f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND platform_message_id = ?")
        params: list = [conversation_id, str(platform_message_id)]
        if role:
            sql += " AND role = ?"
            params.append(role)
        row = self._one(sql + " ORDER BY id DESC LIMIT 1", params)
        return Message(*row) if row else None

    def set_platform_message_id(self, message_id: int, platform_message_id: str | int) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE messages SET platform_message_id = ? WHERE id = ?",
                            [str(platform_message_id), message_id])

    def visible_messages(self, conversation_id: int, *, after_id: int = 0, before_id: int | None = None,
                         limit: int | None = None) -> list[Message]:
        """The conversation's visible messages with after_id < id < before_id, oldest first."""
        sql = (f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? AND id < ? "
               "AND status != 'hidden' ORDER BY id")
        params = [conversation_id, after_id, before_id if before_id is not None else 2 ** 62]
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        return [Message(*row) for row in self._rows(sql, params)]

    def visible_before(self, conversation_id: int, before_id: int, *, role: str | None = None) -> str | None:
        """When the newest visible message before `before_id` (of this role) was sent."""
        row = self._one(
            "SELECT created_at FROM messages WHERE conversation_id = ? AND id < ? AND status != 'hidden' "
            + ("AND role = ? " if role else "") + "ORDER BY id DESC LIMIT 1",
            [conversation_id, before_id, *([role] if role else [])])
        return row[0] if row else None

    def visible_id_before(self, conversation_id: int, before_id: int) -> int | None:
        """The id of the newest visible message before `before_id`."""
        row = self._one("SELECT id FROM messages WHERE conversation_id = ? AND id < ? AND status != 'hidden' "
                        "ORDER BY id DESC LIMIT 1", [conversation_id, before_id])
        return row[0] if row else None

    def first_visible_at(self, conversation_id: int) -> str | None:
        """When the conversation's first visible message was sent."""
        row = self._one("SELECT created_at FROM messages WHERE conversation_id = ? AND status != 'hidden' "
                        "ORDER BY id LIMIT 1", [conversation_id])
        return row[0] if row else None

    def last_settled_at(self, conversation_id: int) -> str | None:
        """When the newest message that is neither hidden nor pending (not part of the turn
        being answered) was sent."""
        row = self._one("SELECT created_at FROM messages WHERE conversation_id = ? "
                        "AND status NOT IN ('hidden', 'pending') ORDER BY id DESC LIMIT 1", [conversation_id])
        return row[0] if row else None

    def last_settled_contents(self, conversation_id: int, limit: int) -> list[str]:
        """The texts of the newest `limit` settled messages, newest first."""
        return [row[0] for row in self._rows(
            "SELECT content FROM messages WHERE conversation_id = ? AND status NOT IN ('hidden', 'pending') "
            "ORDER BY id DESC LIMIT ?", [conversation_id, limit])]

    def history_since(self, conversation_id: int, first_id: int) -> list[HistoryRow]:
        """Visible messages from `first_id` on, oldest first: what the window may hold."""
        rows = self._rows(
            "SELECT id, role, content, tokens, created_at, status FROM messages "
            "WHERE conversation_id = ? AND id >= ? AND status != 'hidden' ORDER BY id",
            [conversation_id, first_id],
        )
        return [HistoryRow(*row) for row in rows]

    def messages(self, conversation_id: int, *, include_hidden: bool = False,
                 limit: int | None = None) -> list[Message]:
        """Messages of a conversation, oldest first (the newest `limit` when given)."""
        status_filter = "" if include_hidden else "AND status != 'hidden'"
        if limit is None:
            rows = self._rows(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? {status_filter} "
                "ORDER BY id", [conversation_id])
        else:
            rows = self._rows(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? {status_filter} "
                "ORDER BY id DESC LIMIT ?", [conversation_id, limit])[::-1]
        return [Message(*row) for row in rows]

    def iter_messages(self, conversation_id: int, batch: int = 1000) -> Iterator[Message]:
        """Every message of a conversation, oldest first, read in batches (for export)."""
        last_id = 0
        while True:
            rows = self._rows(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? "
                "ORDER BY id LIMIT ?", [conversation_id, last_id, batch])
            if not rows:
                return
            for row in rows:
                yield Message(*row)
            last_id = rows[-1][0]

    def count_messages(self, conversation_id: int) -> int:
        return self._one("SELECT count(*) FROM messages WHERE conversation_id = ?", [conversation_id])[0]

    def search_messages(self, owner: Owner, query: str, *, limit: int = 10,
                        require_all: bool = True) -> list[Message]:
        """Best-ranked messages of this owner's conversations matching `query` (CJK and Latin)."""
        expression = match_expression(query, require_all=require_all)
        if expression is None:
            return []
        where, params = owner.where()
        rows = self._rows(
            f"SELECT {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))} "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            f"WHERE messages_fts MATCH ? AND m.conversation_id IN "
            f"(SELECT id FROM conversations WHERE {where}) AND m.status != 'hidden' "
            "ORDER BY bm25(messages_fts) LIMIT ?",
            [expression, *params, limit],
        )
        return [Message(*row) for row in rows]

    # -- inbox --------------------------------------------------------------------------
    def enqueue_input(self, conversation_id: int, content: str, *, user_id: int | None = None,
                      speaker_name: str | None = None,
                      platform_message_id: str | int | None = None) -> int:
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO inbox (conversation_id, user_id, speaker_name, content, platform_message_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [conversation_id, user_id, speaker_name, content,
                 None if platform_message_id is None else str(platform_message_id), self.now()],
            )
        return cursor.lastrowid

    def pending_inputs(self, conversation_id: int | None = None) -> list[InboxItem]:
        if conversation_id is None:
            rows = self._rows("SELECT * FROM inbox ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM inbox WHERE conversation_id = ? ORDER BY id", [conversation_id])
        return [InboxItem(*row) for row in rows]

    def accept_inputs(self, conversation_id: int) -> list[Message]:
        """Move every waiting input of the conversation into its history, in arrival order."""
        accepted = []
        with self.db.atomic():
            for item in self.pending_inputs(conversation_id):
                accepted.append(self.add_message(
                    conversation_id, "user", item.content, status="pending", user_id=item.user_id,
                    speaker_name=item.speaker_name, platform_message_id=item.platform_message_id,
                    created_at=item.created_at,
                ))
                self.db.execute("DELETE FROM inbox WHERE id = ?", [item.id])
        return accepted

    # -- the update journal -----------------------------------------------------------
    def journal_update(self, platform: str, update_id: int, payload: str, *, chat_key: str | None = None,
                       user_external_id: str | int | None = None) -> bool:
        """Record an incoming update; False when it was seen before (a redelivery)."""
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO updates (platform, update_id, chat_key, user_external_id, payload, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?)",
                [platform, update_id, chat_key, None if user_external_id is None else str(user_external_id),
                 payload, self.now()])
        return cursor.rowcount == 1

    def finish_update(self, platform: str, update_id: int) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE updates SET done_at = ?, payload = '' WHERE platform = ? AND update_id = ?",
                            [self.now(), platform, update_id])

    def unfinished_updates(self, platform: str) -> list[JournalEntry]:
        rows = self._rows("SELECT platform, update_id, chat_key, payload FROM updates "
                          "WHERE platform = ? AND done_at IS NULL ORDER BY received_at, update_id", [platform])
        return [JournalEntry(*row) for row in rows]

    def prune_updates(self, received_before: str) -> int:
        """Forget handled updates older than a moment (Telegram may reuse ids after a long idle)."""
        with self.db.atomic():
            cursor = self.db.execute("DELETE FROM updates WHERE done_at IS NOT NULL AND received_at < ?",
                                     [received_before])
        return cursor.rowcount

    # -- forget ---------------------------------------------------------------------------
    # The messages a forgotten user leaves in conversations that are not theirs (groups):
    # what they said, and the character's replies to their turns (parameters: user id twice).
    FORGOTTEN_MESSAGES = ("SELECT id FROM messages WHERE user_id = ? OR (role = 'assistant' AND reply_to IN "
                          "(SELECT id FROM messages WHERE user_id = ?))")

    def forgotten_group_messages(self, user_id: int) -> list[tuple[int, int]]:
        """(conversation id, message id) of what a forget of this user erases in group
        conversations: their messages and the character's replies to them."""
        return self._rows(
            f"SELECT conversation_id, id FROM messages WHERE id IN ({self.FORGOTTEN_MESSAGES}) "
            "AND conversation_id IN (SELECT id FROM conversations WHERE group_key IS NOT NULL)", [user_id, user_id])

    def forget_user(self, user_id: int) -> None:
        """Erase everything of one user: their conversations, their messages in groups and the
        character's replies to them (a reply often repeats what it answers), usage, pending
        inputs, journaled updates and the user row, then compact the indexes and the file so
        the text is gone from disk too. Feature storages erase their own rows first, through
        the forget cascade."""
        user = self.user(user_id)
        with self.db.atomic():
            for step in self.forget_cascade:
                step(user_id)
            message_ids = f"{self.FORGOTTEN_MESSAGES} OR conversation_id IN " \
                          "(SELECT id FROM conversations WHERE user_id = ?)"
            params = [user_id, user_id, user_id]
            self.db.execute(f"DELETE FROM messages_fts WHERE rowid IN ({message_ids})", params)
            self.db.execute(f"DELETE FROM messages WHERE id IN ({message_ids})", params)
            self.db.execute("DELETE FROM usage WHERE user_id = ? OR conversation_id IN "
                            "(SELECT id FROM conversations WHERE user_id = ?)", [user_id, user_id])
            self.db.execute("DELETE FROM inbox WHERE user_id = ?", [user_id])
            self.db.execute("DELETE FROM conversations WHERE user_id = ?", [user_id])
            self.db.execute("DELETE FROM updates WHERE platform = ? AND user_external_id = ?",
                            [user.platform, user.external_id])
            self.db.execute("DELETE FROM users WHERE id = ?", [user_id])
        self.compact()

    def compact(self) -> None:
        """Merge full-text index segments, checkpoint the WAL and VACUUM: deleted text leaves the file."""
        with self.db.atomic():
            self.db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
            for step in self.compact_steps:
                step()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def counts(self) -> dict[str, int]:
        row = self._one("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations), "
                        "(SELECT count(*) FROM messages)")
        return {"users": row[0], "conversations": row[1], "messages": row[2]}

    # -- usage and calibration --------------------------------------------------------
    def record_usage(self, *, conversation_id: int | None, user_id: int | None, model: str,
                     outcome: str, prompt_tokens: int = 0, cached_tokens: int = 0,
                     completion_tokens: int = 0, estimated_prompt_tokens: int = 0,
                     first_token_ms: int | None = None, latency_ms: int = 0,
                     message_id: int | None = None, usage_estimated: bool = False) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO usage (conversation_id, user_id, message_id, model, prompt_tokens, cached_tokens, "
                "completion_tokens, estimated_prompt_tokens, first_token_ms, latency_ms, outcome, created_at, "
                "usage_estimated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [conversation_id, user_id, message_id, model, prompt_tokens, cached_tokens,
                 completion_tokens, estimated_prompt_tokens, first_token_ms, latency_ms, outcome, self.now(),
                 int(usage_estimated)],
            )

    def usage_totals(self, *, user_id: int | None = None, since: str | None = None) -> dict[str, int]:
        clauses, params = [], []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        row = self._one(
            "SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(cached_tokens), 0), "
            f"coalesce(sum(completion_tokens), 0) FROM usage {where}", params)
        return {"requests": row[0], "prompt_tokens": row[1], "cached_tokens": row[2],
                "completion_tokens": row[3]}

    def calibration_ratios(self) -> dict[str, float]:
        return {model: ratio for model, ratio in self._rows("SELECT model, ratio FROM calibration")}

    def save_calibration(self, model: str, ratio: float) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO calibration (model, ratio, samples, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (model) DO UPDATE SET ratio = excluded.ratio, samples = samples + 1, "
                "updated_at = excluded.updated_at",
                [model, ratio, self.now()],
            )
