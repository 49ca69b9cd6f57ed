"""Recall's storage: the queries recall runs on the messages' full-text index.

`RecallProvider` (memory/recall.py) ranks; these classes only ask the database (recall is
on every turn's path, so each query stays one indexed statement). `recall_index(store)`
picks the one for the Store's backend:

* SQLite: the index `messages_fts` with its vocabulary `messages_fts_terms` (FTS5
  `fts5vocab`, document counts per term), written by `Conversations` with each message
  and created by the core and long-term memory migrations; matches ranked by bm25.
* PostgreSQL: the tsvector table `messages_search` with its GIN index, and the list of
  its words `messages_search_words` (byte-ordered, so a range of words is the same range
  as in FTS5's vocabulary) that `PostgresMessageIndex` keeps up. A word's message count is
  asked of the GIN index (recall caches counts, `TermStats`); matches ranked by `ts_rank`.

Both take the same words: index words (as `memory.textsearch` writes them), a word ending
in `*` standing for every word that starts with it (a lone Chinese character).
"""

from __future__ import annotations

from typing import Sequence

from memory.sql_table import dialect
from memory.store import Store
from memory.textsearch import tsquery_lexeme


def recall_index(store: Store) -> "RecallIndex":
    """The recall index of the Store's backend."""
    return PostgresRecallIndex(store) if dialect(store.db) == "postgresql" else RecallIndex(store)


class RecallIndex:
    TERMS = "messages_fts_terms"

    def __init__(self, store: Store):
        self.db = store.db

    def highest_message_id(self) -> int:
        """About how many messages are indexed (ids are dense enough for a threshold)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]

    def documents_with(self, term: str) -> int:
        """How many messages hold this index term."""
        row = self.db.execute(f"SELECT doc FROM {self.TERMS} WHERE term = ?", [term]).fetchone()
        return row[0] if row else 0

    def documents_with_prefix(self, prefix: str) -> int:
        """Document counts of every term starting with this one character, summed."""
        return self.db.execute(f"SELECT coalesce(sum(doc), 0) FROM {self.TERMS} "
                               "WHERE term >= ? AND term < ?", [prefix, chr(ord(prefix) + 1)]).fetchone()[0]

    def terms_between(self, low: str, high: str) -> list[tuple[str, int]]:
        """(term, document count) of the first 200 index terms with low <= term < high."""
        return self.db.execute(f"SELECT term, doc FROM {self.TERMS} WHERE term >= ? AND term < ? "
                               "ORDER BY term LIMIT 200", [low, high]).fetchall()

    def any_outside(self, scope: Sequence[int], window: tuple[int, int]) -> bool:
        """Whether any visible message of the scope's conversations is outside the window
        (conversation id, first message id the request holds)."""
        marks = ",".join("?" * len(scope))
        return bool(self.db.execute(
            f"SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id IN ({marks}) AND status != 'hidden' "
            "AND NOT (conversation_id = ? AND id >= ?))", [*scope, *window]).fetchone()[0])

    # The full-text part of `matching`: the tables, the match condition and the order
    # (each with the match expression as its one parameter, if any).
    SOURCE = "messages_fts JOIN messages m ON m.id = messages_fts.rowid"
    MATCH = "messages_fts MATCH ?"
    ORDER = "bm25(messages_fts)"

    def expression(self, words: Sequence[str]) -> str:
        """The words as an FTS5 query: any of them."""
        return " OR ".join(f'"{word[:-1]}"*' if word.endswith("*") else f'"{word}"'
                           for word in dict.fromkeys(words))  # index words hold no quotes

    def matching(self, words: Sequence[str], scope: Sequence[int], window: tuple[int, int], *,
                 span: tuple[str, str] | None = None, limit: int) -> list[tuple[int, str, int]]:
        """(id, content, tokens) of the scope's visible messages outside the window that
        hold any of the words, sent within `span` (UTC texts) when given, best first."""
        expression = self.expression(words)
        marks = ",".join("?" * len(scope))
        sql = (f"SELECT m.id, m.content, m.tokens FROM {self.SOURCE} WHERE {self.MATCH} "
               f"AND m.conversation_id IN ({marks}) AND m.status != 'hidden' AND NOT (m.conversation_id = ? AND m.id >= ?)")
        params: list = [expression, *scope, *window]
        if span is not None:
            sql += " AND m.created_at >= ? AND m.created_at < ?"
            params += list(span)
        order_params = [expression] * self.ORDER.count("?")
        return self.db.execute(f"{sql} ORDER BY {self.ORDER} LIMIT ?", [*params, *order_params, limit]).fetchall()


class PostgresRecallIndex(RecallIndex):
    SOURCE = "messages_search s JOIN messages m ON m.id = s.message_id"
    MATCH = "s.body @@ to_tsquery('simple', ?)"
    # recall searches only words in few messages, so ranking every match stays cheap
    ORDER = "ts_rank(s.body, to_tsquery('simple', ?)) DESC, m.id DESC"

    def _count(self, query: str) -> int:
        return self.db.execute("SELECT count(*) FROM messages_search WHERE body @@ to_tsquery('simple', ?)",
                               [query]).fetchone()[0]

    def documents_with(self, term: str) -> int:
        return self._count(tsquery_lexeme(term))

    def documents_with_prefix(self, prefix: str) -> int:
        """The messages holding a word that starts with this character (each counted once)."""
        return self._count(tsquery_lexeme(prefix) + ":*")

    def terms_between(self, low: str, high: str) -> list[tuple[str, int]]:
        words = [word for (word,) in self.db.execute(
            "SELECT word FROM messages_search_words WHERE word >= ? AND word < ? ORDER BY word LIMIT 200",
            [low, high]).fetchall()]
        return [(word, self.documents_with(word)) for word in words]

    def expression(self, words: Sequence[str]) -> str:
        return " | ".join(tsquery_lexeme(word[:-1]) + ":*" if word.endswith("*") else tsquery_lexeme(word)
                          for word in dict.fromkeys(words))
