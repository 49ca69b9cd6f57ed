"""Conversations and their messages, with the messages' full-text index.

`Conversations` owns the `conversations`, `messages` and `messages_fts` tables (their
migrations are the core set's, memory/migrations.py). Every message is stored with the
exact text the model gets, its token count (computed here, once, at insert) and a UTC
timestamp; nothing is deleted except by the user's explicit forget. The index holds each
message's `index_form` (CJK bigrams, lowercased Latin words), so a two-character Chinese
name is found inside a longer one.

The index is the one part that differs between the backends (`MessageIndex`): an FTS5
table ranked by bm25 on SQLite, a `tsvector` table with a GIN index ranked by
`ts_rank` on PostgreSQL (memory/postgres.py); everything else is the same SQL.

Reads that run on every turn (`history_since`) touch only the messages after the
conversation's persisted boundary, through the (conversation_id, id) index, so their
cost follows the window, not the length of the history.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from memory.records import Conversation, HistoryRow, Message, Owner
from memory.sql_table import Connection, Table, dialect, owner_where
from memory.textsearch import index_form, match_expression, tsquery_expression, tsvector_text

_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, tokens, created_at, status, user_id, "
    "speaker_name, platform_message_id, reply_to"
)
_CONVERSATION_COLUMNS = (
    "id, user_id, group_key, persona_id, title, created_at, updated_at, active, boundary_message_id"
)


_MESSAGE_COLUMNS_OF_M = ", ".join("m." + c.strip() for c in _MESSAGE_COLUMNS.split(","))


class MessageIndex:
    """The messages' full-text index on SQLite: FTS5 over `index_form`, rowid = message id."""

    def __init__(self, table: Table):
        self.table = table

    def add(self, message_id: int, content: str) -> None:
        self.table.db.execute("INSERT INTO messages_fts (rowid, body) VALUES (?, ?)",
                              [message_id, index_form(content)])

    def remove(self, ids_sql: str, params: list) -> None:
        """Drop the index rows of the messages `ids_sql` selects (before they are deleted)."""
        self.table.db.execute(f"DELETE FROM messages_fts WHERE rowid IN ({ids_sql})", params)

    def search(self, query: str, conversations_sql: str, params: list, *, limit: int,
               require_all: bool) -> list[tuple]:
        expression = match_expression(query, require_all=require_all)
        if expression is None:
            return []
        return self.table._rows(
            f"SELECT {_MESSAGE_COLUMNS_OF_M} FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            f"WHERE messages_fts MATCH ? AND m.conversation_id IN ({conversations_sql}) "
            "AND m.status != 'hidden' ORDER BY bm25(messages_fts) LIMIT ?", [expression, *params, limit])

    def merge(self) -> None:
        self.table.db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")

    def clear(self) -> None:
        """Empty the index (before `add_many` rebuilds it)."""
        self.table.db.execute("DELETE FROM messages_fts")

    def add_many(self, rows: list[tuple[int, str]]) -> None:
        """Index rows for (message id, content) pairs, in one statement (a rebuild's batch)."""
        self.table.db.execute(
            "INSERT INTO messages_fts (rowid, body) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
            "FROM json_each(?)", [json.dumps([[message_id, index_form(content)] for message_id, content in rows],
                                             ensure_ascii=False)])


class PostgresMessageIndex(MessageIndex):
    """The same index on PostgreSQL: `index_form` as a `simple` tsvector (`tsvector_text`),
    rows cascade with their message. Beside it, `messages_search_words` lists the words the
    index holds (FTS5's vocabulary on SQLite), which recall expands query words with. It
    holds no counts: a count row would be rewritten by every message that has the word, which
    makes "the" a lock every worker queues on and a long import quadratic; the GIN index
    counts a word's messages when recall asks (memory/recall_index.py)."""

    def add(self, message_id: int, content: str) -> None:
        # one row: VALUES, not `add_many`'s arrays (a quarter less time on every message)
        self.table.db.execute(
            "WITH added AS (INSERT INTO messages_search (message_id, body) VALUES (?, to_tsvector('simple', ?)) "
            "RETURNING body) "
            "INSERT INTO messages_search_words (word) SELECT unnest(tsvector_to_array(added.body)) FROM added "
            "ON CONFLICT DO NOTHING",
            [message_id, tsvector_text(index_form(content))])

    def remove(self, ids_sql: str, params: list) -> None:
        words = self.table.db.execute(
            f"WITH gone AS (DELETE FROM messages_search WHERE message_id IN ({ids_sql}) RETURNING body) "
            "SELECT DISTINCT unnest(tsvector_to_array(body)) FROM gone", params).fetchall()
        # a word no message holds any more leaves no trace (forget)
        for start in range(0, len(words), 500):
            self.table.db.execute(
                "DELETE FROM messages_search_words w WHERE w.word = ANY(?) AND NOT EXISTS "
                "(SELECT 1 FROM messages_search s WHERE s.body @@ to_tsquery('simple', quote_literal(w.word)))",
                [[word for (word,) in words[start:start + 500]]])

    def search(self, query: str, conversations_sql: str, params: list, *, limit: int,
               require_all: bool) -> list[tuple]:
        expression = tsquery_expression(query, require_all=require_all)
        if expression is None:
            return []
        return self.table._rows(
            f"SELECT {_MESSAGE_COLUMNS_OF_M} FROM messages_search s JOIN messages m ON m.id = s.message_id "
            f"WHERE s.body @@ to_tsquery('simple', ?) AND m.conversation_id IN ({conversations_sql}) "
            "AND m.status != 'hidden' ORDER BY ts_rank(s.body, to_tsquery('simple', ?)) DESC, m.id LIMIT ?",
            [expression, *params, expression, limit])

    def merge(self) -> None:
        """Nothing to merge: GIN's pending list is merged by (auto)vacuum."""

    def clear(self) -> None:
        self.table.db.execute("DELETE FROM messages_search")
        self.table.db.execute("DELETE FROM messages_search_words")

    def add_many(self, rows: list[tuple[int, str]]) -> None:
        self.table.db.execute(
            "WITH added AS (INSERT INTO messages_search (message_id, body) SELECT u.id, to_tsvector('simple', u.body) "
            "FROM unnest(?::bigint[], ?::text[]) AS u(id, body) RETURNING body) "
            "INSERT INTO messages_search_words (word) SELECT DISTINCT unnest(tsvector_to_array(body)) FROM added "
            "ON CONFLICT DO NOTHING",
            [[message_id for message_id, _ in rows], [tsvector_text(index_form(content)) for _, content in rows]])


class Conversations(Table):
    """The conversations, messages and their index's tables; callers never write their SQL."""

    def __init__(self, db: Connection, now: Callable[[], str], count: Callable[[str], int]):
        super().__init__(db, now, count)
        self.index = PostgresMessageIndex(self) if dialect(db) == "postgresql" else MessageIndex(self)

    def conversation(self, conversation_id: int) -> Conversation:
        row = self._one(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                        [conversation_id])
        if row is None:
            raise KeyError(f"no conversation {conversation_id}")
        return Conversation(*row[:7], bool(row[7]), row[8])

    def active_conversation(self, owner: Owner, persona_id: str) -> Conversation | None:
        where, params = owner_where(owner)
        row = self._one(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE {where} AND persona_id = ? "
            "AND active = 1 ORDER BY id DESC LIMIT 1",
            [*params, persona_id],
        )
        return Conversation(*row[:7], bool(row[7]), row[8]) if row else None

    def start_conversation(self, owner: Owner, persona_id: str, title: str | None = None, *,
                           greeting: str | None = None, speaker_name: str | None = None) -> Conversation:
        """A new active conversation (with `greeting` as its first message, by `speaker_name`);
        the owner's earlier ones with this persona are kept, inactive."""
        where, params = owner_where(owner)
        now = self.now()
        with self.db.atomic():
            self.db.execute(
                f"UPDATE conversations SET active = 0 WHERE {where} AND persona_id = ?",
                [*params, persona_id],
            )
            (conversation_id,) = self.db.execute(
                "INSERT INTO conversations (user_id, group_key, persona_id, title, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [owner.user_id, owner.group_key, persona_id, title, now, now],
            ).fetchone()
            if greeting:
                self.add_message(conversation_id, "assistant", greeting, speaker_name=speaker_name)
        return self.conversation(conversation_id)

    def active_or_start(self, owner: Owner, persona_id: str, *, greeting: str | None = None,
                        speaker_name: str | None = None) -> Conversation:
        """The owner's active conversation with the persona, or a new one (with `greeting` as
        its first message): in one transaction that another process doing the same waits
        for (SQLite's write lock at BEGIN; a transaction lock per owner on PostgreSQL), so
        two processes meeting a new user at once start one conversation, not two."""
        with self.db.atomic():
            if dialect(self.db) == "postgresql":
                key = f"{owner.user_id}" if owner.user_id is not None else f"g:{owner.group_key}"
                self.db.execute("SELECT pg_advisory_xact_lock(hashtext('companion.conversation'), hashtext(?))",
                                [f"{key}:{persona_id}"])
            existing = self.active_conversation(owner, persona_id)
            return existing or self.start_conversation(owner, persona_id, greeting=greeting,
                                                       speaker_name=speaker_name)

    def resume_conversation(self, conversation_id: int) -> Conversation:
        """Make an older conversation the active one for its owner and persona."""
        conversation = self.conversation(conversation_id)
        where, params = owner_where(conversation.owner)
        with self.db.atomic():
            self.db.execute(f"UPDATE conversations SET active = 0 WHERE {where} AND persona_id = ?",
                            [*params, conversation.persona_id])
            self.db.execute("UPDATE conversations SET active = 1 WHERE id = ?", [conversation_id])
        return self.conversation(conversation_id)

    def conversations_of(self, owner: Owner, persona_id: str | None = None) -> list[Conversation]:
        where, params = owner_where(owner)
        if persona_id is not None:
            where, params = f"{where} AND persona_id = ?", [*params, persona_id]
        rows = self._rows(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE {where} ORDER BY id DESC", params
        )
        return [Conversation(*row[:7], bool(row[7]), row[8]) for row in rows]

    def conversation_ids_of(self, owner: Owner, persona_id: str) -> list[int]:
        """The ids of every conversation of this owner with this persona."""
        where, params = owner_where(owner)
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
            (message_id,) = self.db.execute(
                "INSERT INTO messages (conversation_id, role, user_id, speaker_name, content, tokens, "
                "created_at, platform_message_id, status, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                [conversation_id, role, user_id, speaker_name, content, tokens, created_at, pmid,
                 status, reply_to],
            ).fetchone()
            self.index.add(message_id, content)
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

    def set_statuses(self, message_ids: Iterable[int], status: str) -> None:
        with self.db.atomic():
            for message_id in message_ids:
                self.db.execute("UPDATE messages SET status = ? WHERE id = ?", [status, message_id])

    def replace_content(self, message_id: int, content: str) -> Message:
        """New text for one message (a continued reply): counted again, re-indexed."""
        with self.db.atomic():
            self.db.execute("UPDATE messages SET content = ?, tokens = ? WHERE id = ?",
                            [content, self.count(content), message_id])
            self.index.remove("?", [message_id])
            self.index.add(message_id, content)
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
        where, params = owner_where(owner)
        rows = self.index.search(query, f"SELECT id FROM conversations WHERE {where}", params,
                                 limit=limit, require_all=require_all)
        return [Message(*row) for row in rows]

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
        """Erase the user's conversations, their messages in groups and the character's
        replies to them (a reply often repeats what it answers), index rows included."""
        message_ids = f"{self.FORGOTTEN_MESSAGES} OR conversation_id IN " \
                      "(SELECT id FROM conversations WHERE user_id = ?)"
        params = [user_id, user_id, user_id]
        self.index.remove(message_ids, params)
        self.db.execute(f"DELETE FROM messages WHERE id IN ({message_ids})", params)
        self.db.execute("DELETE FROM conversations WHERE user_id = ?", [user_id])

    def fail_pending(self, conversation_id: int | None = None) -> int:
        """Mark every user message whose turn never finished as failed (of one conversation,
        or of all); returns how many."""
        if conversation_id is None:
            return self.db.execute("UPDATE messages SET status = 'failed' WHERE status = 'pending'").rowcount
        return self.db.execute("UPDATE messages SET status = 'failed' WHERE conversation_id = ? AND status = 'pending'",
                               [conversation_id]).rowcount

    def pending_user_messages(self, conversation_id: int) -> list[Message]:
        """The conversation's user messages whose turn has not finished, oldest first."""
        rows = self._rows(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND role = 'user' "
                          "AND status = 'pending' ORDER BY id", [conversation_id])
        return [Message(*row) for row in rows]

    def pending_conversation_ids(self) -> list[int]:
        """The conversations that hold a user message whose turn has not finished."""
        return [row[0] for row in self._rows(
            "SELECT DISTINCT conversation_id FROM messages WHERE status = 'pending' ORDER BY conversation_id")]

    def reindex(self, batch: int = 2000) -> int:
        """Rebuild the messages' full-text index from the messages themselves (after a
        bulk copy that wrote the rows without it: `companion migrate-db`), in one
        transaction (the caller's, when inside one); returns how many messages it indexed."""
        indexed = last_id = 0
        with self.db.atomic():
            self.index.clear()
            while True:
                rows = self._rows("SELECT id, content FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                                  [last_id, batch])
                if not rows:
                    return indexed
                self.index.add_many([(row[0], row[1]) for row in rows])
                indexed += len(rows)
                last_id = rows[-1][0]

    def merge_index(self) -> None:
        """Merge the full-text index's segments into one (after a forget, before VACUUM)."""
        self.index.merge()

    def counts(self) -> dict[str, int]:
        row = self._one("SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)")
        return {"conversations": row[0], "messages": row[1]}
