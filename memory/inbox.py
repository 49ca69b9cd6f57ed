"""What arrived and is not yet part of a conversation: the inbox and the update journal.

`Inbox` owns the `inbox` and `updates` tables (their migrations are the core set's,
memory/migrations.py).
- The inbox holds a user's messages that arrive while a reply to the same conversation
  is streaming; the next turn moves them into the history together, in arrival order
  (`accept_inputs`). They are stored, so a crash loses none (`mark_pending_failed`).
- The update journal records each platform update on receipt, before the platform is
  told it arrived, so updates a killed process received but never handled are replayed
  at start-up (`unfinished_updates`), and a redelivered one is recognised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memory.conversations import Conversations
from memory.records import InboxItem, JournalEntry, Message, User
from memory.sql_table import Table

if TYPE_CHECKING:
    from memory.turn_leases import TurnLeases

_INBOX_COLUMNS = "id, conversation_id, user_id, speaker_name, content, platform_message_id, created_at"


class Inbox(Table):
    """The inbox and updates tables; callers never write their SQL."""

    def __init__(self, conversations: Conversations, leases: "TurnLeases | None" = None):
        super().__init__(conversations.db, conversations.now, conversations.count)
        self.conversations = conversations
        self.leases = leases  # the Store's turn leases: a recovery skips the conversations others run

    def enqueue_input(self, conversation_id: int, content: str, *, user_id: int | None = None,
                      speaker_name: str | None = None,
                      platform_message_id: str | int | None = None) -> int:
        with self.db.atomic():
            (item_id,) = self.db.execute(
                "INSERT INTO inbox (conversation_id, user_id, speaker_name, content, platform_message_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [conversation_id, user_id, speaker_name, content,
                 None if platform_message_id is None else str(platform_message_id), self.now()],
            ).fetchone()
        return item_id

    def pending_inputs(self, conversation_id: int | None = None) -> list[InboxItem]:
        if conversation_id is None:
            rows = self._rows(f"SELECT {_INBOX_COLUMNS} FROM inbox ORDER BY id")
        else:
            rows = self._rows(f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE conversation_id = ? ORDER BY id", [conversation_id])
        return [InboxItem(*row) for row in rows]

    def accept_inputs(self, conversation_id: int) -> list[Message]:
        """Move every waiting input of the conversation into its history, in arrival order.

        Safe across processes: the inputs are claimed by one `DELETE … RETURNING` in the
        same transaction as their messages, so each is moved by exactly one caller. On
        PostgreSQL a second worker's DELETE waits on the first's row locks and, once that
        commits, finds the rows gone; on SQLite the transaction holds the write lock from
        BEGIN IMMEDIATE. (A SELECT then DELETE by id would let two PostgreSQL workers both
        read the rows and both add them to the history.) RETURNING gives no order on
        either engine, so arrival order is restored by id."""
        accepted = []
        with self.db.atomic():
            rows = self._rows(f"DELETE FROM inbox WHERE conversation_id = ? RETURNING {_INBOX_COLUMNS}",
                              [conversation_id])
            claimed = sorted((InboxItem(*row) for row in rows), key=lambda item: item.id)
            for item in claimed:
                accepted.append(self.conversations.add_message(
                    conversation_id, "user", item.content, status="pending", user_id=item.user_id,
                    speaker_name=item.speaker_name, platform_message_id=item.platform_message_id,
                    created_at=item.created_at,
                ))
        return accepted

    def journal_update(self, platform: str, update_id: int, payload: str, *, chat_key: str | None = None,
                       user_external_id: str | int | None = None) -> bool:
        """Record an incoming update; False when it was seen before (a redelivery)."""
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO updates (platform, update_id, chat_key, user_external_id, payload, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, update_id) DO NOTHING",
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

    def mark_pending_failed(self) -> int:
        """After a crash: inputs a crash left waiting in the inbox join their conversation's
        history, and every user message whose turn never finished is marked failed (it stays
        in the history and can be answered again). Returns how many were marked.

        A conversation whose turn lease another process holds now (memory/turn_leases.py)
        is left alone: that process is answering it, or will take the messages over."""
        waiting = {row[0] for row in self._rows("SELECT DISTINCT conversation_id FROM inbox")}
        marked = 0
        for conversation_id in sorted(waiting | set(self.conversations.pending_conversation_ids())):
            if self.leases is not None and not self.leases.try_take(conversation_id):
                continue
            try:
                with self.db.atomic():
                    self.accept_inputs(conversation_id)
                    marked += self.conversations.fail_pending(conversation_id)
            finally:
                if self.leases is not None:
                    self.leases.release(conversation_id)
        return marked

    def forget_user(self, user: User) -> None:
        """Erase the user's waiting inputs and journaled updates."""
        self.db.execute("DELETE FROM inbox WHERE user_id = ?", [user.id])
        self.db.execute("DELETE FROM updates WHERE platform = ? AND user_external_id = ?",
                        [user.platform, user.external_id])
