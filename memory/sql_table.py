"""What every core storage class holds: the connection, the clock and the token counter
of the Store that built it, and the two query shapes they all use.

The core storage classes (memory/directory.py, memory/conversations.py, memory/inbox.py,
memory/usage_ledger.py) are built by the Store over its connection, so they share its
transactions: a call made inside `store.transaction()` joins it, and each class's own
writes open one (nested: a savepoint).

The connection is either backend's (`Connection`): sqlite-utils' `Database` for SQLite,
`memory.postgres.PostgresDatabase` for PostgreSQL. The classes' SQL is the part both
engines agree on; where they differ, a class reads `dialect` (only the messages' index
does, memory/conversations.py).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Protocol

from memory.records import Owner


class Connection(Protocol):
    """What the storage classes use of a connection, on either backend."""

    def execute(self, sql: str, params: Iterable[Any] = ...) -> Any: ...

    def atomic(self) -> contextlib.AbstractContextManager: ...


def dialect(db: Connection) -> str:
    """'sqlite' or 'postgresql'."""
    return getattr(db, "dialect", "sqlite")


class Table:
    def __init__(self, db: Connection, now: Callable[[], str], count: Callable[[str], int]):
        self.db = db
        self.now = now
        self.count = count

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self.db.execute(sql, list(params)).fetchall()

    def _one(self, sql: str, params: Iterable = ()) -> tuple | None:
        return self.db.execute(sql, list(params)).fetchone()


def owner_where(owner: Owner) -> tuple[str, list]:
    """The WHERE clause (and its parameter) that picks one owner's rows."""
    if owner.user_id is not None:
        return "user_id = ?", [owner.user_id]
    return "group_key = ?", [owner.group_key]
