"""The one class that owns the database connection.

`Store` opens the SQLite file in WAL mode, applies the migration sets it is handed
(`memory.schema`), offers transactions (`transaction()`), and builds the core storage
classes over its connection:
- `store.directory` (memory/directory.py): users and groups;
- `store.conversations` (memory/conversations.py): conversations, messages and their
  full-text index;
- `store.inbox` (memory/inbox.py): inputs waiting for a turn, and the update journal;
- `store.turns` (memory/turn_leases.py): which process runs a conversation's turn now;
- `store.usage` (memory/usage_ledger.py): usage rows and token calibration.
Each feature's own tables have a storage class of their own that holds their SQL on this
connection (`FactStore`, `SummaryStore`, `MemoryStateStore`, `EmbeddingIndex`,
`RecallIndex`, `PersonaCatalog`, `UserChoices`, `Checkins`, `ModerationEvents`,
`DocumentStore`). Nobody else writes SQL or touches `db` (tests/test_project.py holds the
list). A forget runs the cascade of the feature storages' forget steps that the
composition root hands in, then the core classes' own, in one transaction.

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
from pathlib import Path
from typing import Callable, Generator, Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.conversations import Conversations
from memory.directory import Directory
from memory.inbox import Inbox
from memory.records import Clock, to_text, utc_now
from memory.tokens import count_tokens
from memory.turn_leases import TurnLeases
from memory.usage_ledger import UsageLedger


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


class StoreBase:
    """What every backend's Store does the same: build the core storage classes over its
    connection, hold the forget cascade and the compaction steps, run a forget. A backend
    gives `db` (with `execute` and `atomic`), `clock`, `count`, `compact` and `integrity`."""

    db: Database
    clock: Clock
    count: Callable[[str], int]

    def _build(self) -> None:
        # What a forget erases besides the core tables, and what a compaction merges besides
        # the messages' index: the composition root hands in the feature storages' steps,
        # in order (`set_forget_cascade`, `set_compact_steps`).
        self.forget_cascade: list[Callable[[int], None]] = []
        self.compact_steps: list[Callable[[], None]] = []
        self.directory = Directory(self.db, self.now, self.count)
        self.conversations = Conversations(self.db, self.now, self.count)
        self.turns = TurnLeases(self.db, self.now, self.count)
        self.inbox = Inbox(self.conversations, self.turns)
        self.usage = UsageLedger(self.db, self.now, self.count)

    def close(self) -> None:
        self.turns.close()
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

    def now(self) -> str:
        return to_text(self.clock())

    def forget_user(self, user_id: int) -> None:
        """Erase everything of one user: the feature storages' rows (the forget cascade),
        then usage, waiting inputs, journaled updates, conversations and messages (theirs,
        and theirs in groups with the character's replies to them), and the user row; then
        compact the indexes and the file so the text is gone from disk too."""
        user = self.directory.user(user_id)
        with self.db.atomic():
            for step in self.forget_cascade:
                step(user_id)
            self.usage.forget_user(user_id)
            self.inbox.forget_user(user)
            self.conversations.forget_user(user_id)
            self.directory.forget_user(user_id)
        self.compact()

    def compact(self) -> None:
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        return {"users": self.directory.count_users(), **self.conversations.counts()}


class Store(StoreBase):
    """The SQLite backend: one file, WAL, sqlite-utils' migrations."""

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
        # Autocommit, as on PostgreSQL: a write outside `transaction()` commits at once,
        # instead of opening an implicit transaction that holds the write lock until some
        # later commit (and keeps the reading store's connection waiting on it).
        connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self.db = _Database(connection, execute_plugins=False)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 30000")
        # Deleted content is overwritten on disk, so a forgotten user's text does not linger.
        self.db.execute("PRAGMA secure_delete = ON")
        if str(path) != ":memory:":
            self.db.enable_wal()
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        for migration_set in migration_sets:
            migration_set.apply(self.db)
        self._build()

    def integrity(self) -> str:
        """SQLite's own check of the file: 'ok', or what is damaged."""
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def compact(self) -> None:
        """Merge full-text index segments, checkpoint the WAL and VACUUM: deleted text leaves the file."""
        with self.db.atomic():
            self.conversations.merge_index()
            for step in self.compact_steps:
                step()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
