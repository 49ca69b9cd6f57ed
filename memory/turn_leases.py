"""One turn per conversation at a time across processes: the turn lease.

The engine runs one turn of a conversation at a time within a process (an asyncio lock
per conversation, memory/engine.py). Several processes may share one database (two
`companion chat` in terminals, the bot beside a chat, workers on PostgreSQL), so a turn
also holds the conversation's lease, taken inside that lock and held until the turn's
outcome is stored. Whoever holds it is the only one answering the conversation: a user
message left `pending` while nobody holds the lease belongs to a turn whose process is
gone, and the next holder answers it (`Engine.submit`'s takeover).

`TurnLeases` owns how that is kept, on each backend:
- PostgreSQL: a session-level advisory lock, `pg_try_advisory_lock(key)` on the Store's
  connection, with `key` = the namespace in the high 32 bits and the conversation id in
  the low ones (the migrations' `hashtext` keys are 32-bit, so they never meet ours). It
  is polled (`asyncio.sleep` between tries): a blocking `pg_advisory_lock` would hold
  the shared connection, and the event loop with it. A killed process's locks go with
  its connection, at once.
- SQLite: a row in `turn_leases` (conversation_id, holder, expires_at) taken by one
  upsert that succeeds only where the row is missing, expired, or already ours; while
  the turn runs a heartbeat task renews it (every `lease_seconds / 3`); the turn's end
  deletes it. `holder` is the host name, the process id and a random part (one per
  Store); a lease whose holder was a process of this machine that no longer runs (or a
  Store of this process that was closed) is free at once, any other once it expires
  (`lease_seconds`, 15 s by default: a process in another container, where its id means
  nothing here). `expires_at` is wall-clock seconds (`time.time()`; a SQLite file is
  shared by the processes of one machine). The table's migration is the core set's
  (m004; p003 makes the same table on PostgreSQL, where it stays empty, so both
  backends hold the same tables; both add an index of the pending messages).
A process whose event loop stalls longer than the lease (SQLite only) loses it; the
heartbeat logs that, as it means another process may have taken the turn over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import AsyncIterator, Callable

from memory.sql_table import Connection, Table, dialect

log = logging.getLogger(__name__)

# "tl" (turn lease): the high half of the PostgreSQL advisory lock key
_NAMESPACE = 0x746C
# the holders this process made (a Store each): a holder with this process's id that is
# not one of them was a process before it (a container's pid 1, restarted)
_HOLDERS: set[str] = set()


class TurnLeases(Table):
    """The conversations' turn leases held by this Store's process; callers never write their SQL."""

    def __init__(self, db: Connection, now: Callable[[], str], count: Callable[[str], int], *,
                 lease_seconds: float = 15.0, poll_seconds: float = 0.05, wall: Callable[[], float] = time.time):
        super().__init__(db, now, count)
        self.host = socket.gethostname()
        self.holder = f"{self.host}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        _HOLDERS.add(self.holder)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.wall = wall
        self.postgres = dialect(db) == "postgresql"

    def close(self) -> None:
        """The Store closes: a lease it still holds is a gone process's from now on."""
        _HOLDERS.discard(self.holder)

    @staticmethod
    def _key(conversation_id: int) -> int:
        return (_NAMESPACE << 32) | (conversation_id & 0xFFFFFFFF)

    def try_take(self, conversation_id: int) -> bool:
        """Take the conversation's lease if nobody (else) holds it; True when this process holds it now."""
        if self.postgres:
            (taken,) = self._one("SELECT pg_try_advisory_lock(?)", [self._key(conversation_id)])
            return bool(taken)
        now = self.wall()
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO turn_leases (conversation_id, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (conversation_id) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE turn_leases.expires_at < ? OR turn_leases.holder = ?",
                [conversation_id, self.holder, now + self.lease_seconds, now, self.holder])
        if cursor.rowcount == 1:
            return True
        row = self._one("SELECT holder FROM turn_leases WHERE conversation_id = ?", [conversation_id])
        if row is None or not self._gone(row[0]):
            return False
        # its process died on this machine: free at once, not when the lease runs out
        with self.db.atomic():
            self.db.execute("DELETE FROM turn_leases WHERE conversation_id = ? AND holder = ?", [conversation_id, row[0]])
        return self.try_take(conversation_id)

    def _gone(self, holder: str) -> bool:
        """Whether the holder was a process of this machine that no longer runs."""
        host, _, rest = holder.rpartition("/")[0].rpartition("/")
        if host != self.host or not rest.isdigit():
            return False
        if int(rest) == os.getpid():  # ours, or an earlier process's with the same id (pid 1 in a container)
            return holder not in _HOLDERS
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            return True
        except OSError:  # it runs, as another user
            return False
        return False

    def renew(self, conversation_id: int) -> bool:
        """Extend the lease (SQLite); False when it is no longer ours (it expired and was taken)."""
        if self.postgres:
            return True
        with self.db.atomic():
            cursor = self.db.execute("UPDATE turn_leases SET expires_at = ? WHERE conversation_id = ? AND holder = ?",
                                     [self.wall() + self.lease_seconds, conversation_id, self.holder])
        return cursor.rowcount == 1

    def release(self, conversation_id: int) -> None:
        if self.postgres:
            self._one("SELECT pg_advisory_unlock(?)", [self._key(conversation_id)])
            return
        with self.db.atomic():
            self.db.execute("DELETE FROM turn_leases WHERE conversation_id = ? AND holder = ?",
                            [conversation_id, self.holder])

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[None]:
        """Wait for the conversation's lease (polling, never blocking the loop or the
        connection), hold it (renewed while held, on SQLite), release it at the end."""
        delay = self.poll_seconds
        while not self.try_take(conversation_id):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        heartbeat = None if self.postgres else asyncio.get_running_loop().create_task(self._heartbeat(conversation_id))
        try:
            yield
        finally:
            if heartbeat is not None:
                heartbeat.cancel()  # it is asleep: it renews nothing after this
            try:
                self.release(conversation_id)
            except Exception:  # noqa: BLE001 - a lost connection has released it (PostgreSQL) or it expires
                log.exception("could not release the turn lease of conversation %s", conversation_id)

    async def _heartbeat(self, conversation_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not self.renew(conversation_id):
                    log.error("the turn lease of conversation %s expired while its turn ran (the event loop "
                              "stalled?); another process may take the turn over", conversation_id)
                    return
            except Exception:  # noqa: BLE001 - try again at the next beat; the lease lasts three
                log.exception("could not renew the turn lease of conversation %s", conversation_id)
