"""Recall's storage: the queries recall runs on the messages' full-text index.

`RecallProvider` (memory/recall.py) ranks; this class only asks the database, with the
same SQL recall always ran (it is on every turn's path, so each query stays one indexed
statement). The index itself, `messages_fts` with its vocabulary `messages_fts_terms`
(FTS5 `fts5vocab`, document counts per term), is written by the Store with each message
(memory/store.py) and created by the core and long-term memory migrations.
"""

from __future__ import annotations

from typing import Sequence

from memory.store import Store


class RecallIndex:
    def __init__(self, store: Store):
        self.db = store.db

    def highest_message_id(self) -> int:
        """About how many messages are indexed (ids are dense enough for a threshold)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]

    def documents_with(self, term: str) -> int:
        """How many messages hold this index term."""
        row = self.db.execute("SELECT doc FROM messages_fts_terms WHERE term = ?", [term]).fetchone()
        return row[0] if row else 0

    def documents_with_prefix(self, prefix: str) -> int:
        """Document counts of every term starting with this one character, summed."""
        return self.db.execute("SELECT coalesce(sum(doc), 0) FROM messages_fts_terms "
                               "WHERE term >= ? AND term < ?", [prefix, chr(ord(prefix) + 1)]).fetchone()[0]

    def terms_between(self, low: str, high: str) -> list[tuple[str, int]]:
        """(term, document count) of the first 200 index terms with low <= term < high."""
        return self.db.execute("SELECT term, doc FROM messages_fts_terms WHERE term >= ? AND term < ? LIMIT 200",
                               [low, high]).fetchall()

    def any_outside(self, scope: Sequence[int], window: tuple[int, int]) -> bool:
        """Whether any visible message of the scope's conversations is outside the window
        (conversation id, first message id the request holds)."""
        marks = ",".join("?" * len(scope))
        return self.db.execute(
            f"SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id IN ({marks}) AND status != 'hidden' "
            "AND NOT (conversation_id = ? AND id >= ?))", [*scope, *window]).fetchone()[0] == 1

    def matching(self, expression: str, scope: Sequence[int], window: tuple[int, int], *,
                 span: tuple[str, str] | None = None, limit: int) -> list[tuple[int, str, int]]:
        """(id, content, tokens) of the scope's visible messages outside the window that
        match the FTS5 `expression`, sent within `span` (UTC texts) when given, best by
        FTS5's BM25."""
        marks = ",".join("?" * len(scope))
        sql = ("SELECT m.id, m.content, m.tokens FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
               f"WHERE messages_fts MATCH ? AND m.conversation_id IN ({marks}) AND m.status != 'hidden' "
               "AND NOT (m.conversation_id = ? AND m.id >= ?)")
        params: list = [expression, *scope, *window]
        if span is not None:
            sql += " AND m.created_at >= ? AND m.created_at < ?"
            params += list(span)
        return self.db.execute(sql + " ORDER BY bm25(messages_fts) LIMIT ?", [*params, limit]).fetchall()
