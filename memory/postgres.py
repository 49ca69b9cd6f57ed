"""PostgreSQL under the same storage classes: a connection that speaks like the SQLite one,
named migrations, and the Store built on them.

The storage classes (memory/directory.py, memory/conversations.py, …) are written once,
in the SQL both engines agree on: `?` parameters, `INSERT … RETURNING id`,
`ON CONFLICT … DO UPDATE/NOTHING`, text timestamps in UTC, integers for flags. What
differs is kept small and in one place:
- `PostgresDatabase` gives the classes what they use of sqlite-utils' `Database`:
  `execute(sql, params)` returning a cursor (`fetchone`, `fetchall`, `rowcount`) and
  `atomic()` (a transaction; nested: a savepoint). It rewrites `?` to psycopg's `%s`
  (and a literal `%` to `%%`) once per distinct statement, and says `dialect =
  "postgresql"`, which the few dialect-specific parts read (the full-text index).
- `PostgresMigrations` is sqlite-utils' `Migrations` for this connection: small named
  functions applied once, in order, each in its own transaction together with the
  record that it ran, under an advisory lock, so several workers starting at once apply
  a migration exactly once.
- The schema itself is each feature's PostgreSQL migration set (the core's is
  `memory.migrations.postgres_migrations`): the same tables and columns, with identity
  ids and a `tsvector` index where SQLite has FTS5.

Driver: psycopg 3. The storage classes are synchronous (the turn engine calls them
between awaits, and ingestion from threads), which psycopg serves directly, where
asyncpg is async only; psycopg has a pool and COPY (for `migrate-db`), and its binary
wheel needs no compiler or libpq on the machine.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import urlparse

from memory.records import Clock, to_text, utc_now
from memory.store import StoreBase
from memory.tokens import count_tokens


class PostgresUnavailable(RuntimeError):
    """PostgreSQL was asked for and cannot be used; the message says what to do."""


def redacted_url(url: str) -> str:
    """The URL with its password (and any query, which may hold one) left out, for messages."""
    parsed = urlparse(url)
    if parsed.password is None and not parsed.query:
        return url
    netloc = parsed.netloc.rpartition("@")[2]
    if parsed.username:
        netloc = f"{parsed.username}@{netloc}"
    return parsed._replace(netloc=netloc, query="").geturl()


def one_line(error: BaseException) -> str:
    """A driver's error as one line (libpq's span several: the failure, then a hint)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def _storable(params: Iterable[Any]) -> list[Any]:
    """The parameters with NUL in text replaced by U+FFFD: PostgreSQL's text cannot hold it
    (SQLite can), and a message that has one (a piped line, an imported chat) must still be
    stored rather than fail. The Telegram updates are cleaned the same way before either
    backend sees them (bot/telegram/middlewares.py)."""
    values = list(params)
    for index, value in enumerate(values):
        if isinstance(value, str):
            if "\x00" in value:
                values[index] = value.replace("\x00", "\ufffd")
        elif isinstance(value, list) and value and isinstance(value[0], str):
            if any("\x00" in item for item in value if isinstance(item, str)):
                values[index] = [item.replace("\x00", "\ufffd") if isinstance(item, str) else item
                                 for item in value]
    return values


def _placeholders(sql: str) -> str:
    """`?` parameters as psycopg's `%s`, outside quoted literals; a literal `%` doubled."""
    out, quote = [], None
    for char in sql:
        if quote:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class PostgresDatabase:
    """One psycopg connection, used the way the storage classes use sqlite-utils'."""

    dialect = "postgresql"

    def __init__(self, url: str):
        try:  # imported here: it costs a third of a second, and SQLite installations never need it
            import psycopg
        except ImportError:
            raise PostgresUnavailable(
                "COMPANION_DATABASE_URL names PostgreSQL, but psycopg is not installed: "
                "install the postgres extra (.venv/bin/pip install '.[postgres]' in the checkout, "
                "or pip install 'companion-bot[postgres]')") from None
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as error:
            raise PostgresUnavailable(f"cannot connect to PostgreSQL: {one_line(error)}") from None
        # psycopg prepares a statement on the server once it has run it a few times, so the
        # per-turn queries are planned once per connection.
        self._statements: dict[str, str] = {}
        # The connection is shared by the event loop and worker threads, as SQLite's is: a
        # transaction belongs to the thread that opened it, others wait for it to end.
        self._lock = threading.RLock()
        self._depth = 0

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        statement = self._statements.get(sql)
        if statement is None:
            statement = self._statements.setdefault(sql, _placeholders(sql))
        with self._lock:
            return self.conn.execute(statement, _storable(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement run for each row (psycopg pipelines them: one round trip per batch)."""
        with self._lock, self.conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), [_storable(row) for row in rows])

    @contextlib.contextmanager
    def atomic(self) -> Iterator["PostgresDatabase"]:
        with self._lock, self.conn.transaction():
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def close(self) -> None:
        self.conn.close()


@dataclass
class _Migration:
    name: str
    fn: Callable[[PostgresDatabase], None]


class PostgresMigrations:
    """Named migrations for PostgreSQL, applied once each and in order (sqlite-utils'
    `Migrations`, for this connection). Never edit or reorder one that has shipped."""

    TABLE = "_companion_migrations"

    def __init__(self, name: str):
        self.name = name
        self._migrations: list[_Migration] = []

    def __call__(self) -> Callable:
        def register(fn: Callable[[PostgresDatabase], None]) -> Callable:
            self._migrations.append(_Migration(fn.__name__, fn))
            return fn
        return register

    def applied(self, db: PostgresDatabase) -> set[str]:
        return {row[0] for row in db.execute(f"SELECT name FROM {self.TABLE} WHERE migration_set = ?",
                                             [self.name]).fetchall()}

    def apply(self, db: PostgresDatabase) -> None:
        # One worker applies, the others wait on the lock and then find it applied.
        with db.atomic():
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [self.TABLE])
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
                       "applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))")
        for migration in self._migrations:
            with db.atomic():
                db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [self.TABLE])
                if migration.name in self.applied(db):
                    continue
                migration.fn(db)
                db.execute(f"INSERT INTO {self.TABLE} (migration_set, name, applied_at) VALUES (?, ?, ?)",
                           [self.name, migration.name, to_text(utc_now())])


def run_statements(db: PostgresDatabase, script: str) -> None:
    """Several DDL statements separated by `;` (no `;` inside them), in the caller's transaction."""
    for statement in script.split(";"):
        lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
        if "".join(lines).strip():
            db.execute("\n".join(lines))


class PostgresStore(StoreBase):
    """The PostgreSQL backend: the same core storage classes over one `PostgresDatabase`.

    Several processes may open it at once (workers, `companion chat` beside the bot):
    migrations take an advisory lock, inserts that may race (a user seen by two workers)
    say what happens on conflict, and ids come from identity columns."""

    def __init__(self, url: str, *, migration_sets: Sequence[PostgresMigrations], clock: Clock = utc_now,
                 counter: Callable[[str], int] = count_tokens):
        self.url = url
        self.clock = clock
        self.count = counter
        self.db = PostgresDatabase(url)
        for migration_set in migration_sets:
            migration_set.apply(self.db)
        self._build()

    def integrity(self) -> str:
        """'ok' when the server answers (PostgreSQL checks its own pages as it reads them)."""
        return "ok" if self.db.execute("SELECT 1").fetchone()[0] == 1 else "no answer"

    def compact(self) -> None:
        """The feature storages' merges, then VACUUM of the core tables: the forgotten rows'
        space is marked free for reuse (their bytes stay in the table files until reused;
        `VACUUM FULL`, run by the operator, rewrites them)."""
        with self.db.atomic():
            self.conversations.merge_index()
            for step in self.compact_steps:
                step()
        for table in ("messages", "messages_search", "conversations", "inbox", "updates", "usage", "users"):
            self.db.execute(f"VACUUM {table}")
