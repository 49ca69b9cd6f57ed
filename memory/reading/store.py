"""Storage of documents: the only code that writes SQL for the documents tables.

`DocumentStore` sits next to the core `Store` (same database file, its own migration
set in `schema.py`) and registers a forget hook (a user's documents, passages, index
rows, caches) and a compact hook (merging the passage index).

Writing a document (`save`) runs in the ingestion's worker thread on a connection of
its own, in short transactions, so the event loop's connection never sees a half-written
document and is never blocked for long (see `schema.py` for the `ingesting` state). All
reads go through the core Store's connection.

The SQL is shared by SQLite and PostgreSQL (memory/postgres.py); only the full-text
parts differ, in a small class chosen by `dialect(db)` (as memory/conversations.py
does): `_SqlitePassages`, an FTS5 table fed with JSON batches on a `sqlite3` connection
of the writer's own; `_PostgresPassages`, a tsvector side table with a GIN index fed
with array batches (one statement per table per batch) on a psycopg connection of the
writer's own. Both index the words of `textsearch.index_form` (CJK bigrams), so the
same names and words are found on both. `end` is quoted: PostgreSQL reserves it.

Reads on a turn are small: the attachments of one conversation, token totals (cached
here per document and chapter limit), the passages that match the new message. The
whole text of a book is read only to render it once (the caller caches the result).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable, Iterator, Sequence

from memory.reading.progress import CancelToken
from memory.records import to_text
from memory.sql_table import dialect
from memory.store import Store
from memory.textsearch import fold_diacritics, index_form, tsquery_lexeme, tsvector_text

STALE_INGESTION = timedelta(hours=1)
_WORD = re.compile(r"\w+")
# Words that match nearly every passage of an English book and only slow the search.
_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out his has him how its may new now "
    "she who did get let say too use that with have this will your from they been were what when "
    "there their would about which them then than into some could other these also just more very".split()
    # …and the Chinese bigrams of question words and pronouns, in nearly every passage.
    + "什么 为什 怎么 怎样 哪里 哪个 如何 是谁 我们 你们 他们 她们 一个 这个 那个 没有 不是 知道 可以 时候 自己 的是 了什 "
      "是什 有什 给了 在哪 吗".split()
)
MAX_QUERY_TERMS = 48


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: int
    owner_user_id: int
    title: str
    author: str | None
    format: str
    encoding: str | None
    source: str | None
    sha256: str
    chars: int
    tokens: int
    chapter_count: int
    chapter_source: str
    created_at: str


@dataclass(frozen=True, slots=True)
class StoredChapter:
    index: int  # 0-based
    title: str
    number: int | None
    start: int
    end: int
    tokens: int


@dataclass(frozen=True, slots=True)
class StoredPassage:
    id: int
    document_id: int
    chapter_index: int | None
    start: int
    end: int
    tokens: int
    text: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document attached to a conversation, with its timeline and reading decision."""

    document: StoredDocument
    position: int
    upto_chapter: int | None  # chapters 1..N only; None: the whole document
    mode: str | None  # verbatim | summaries | None (not decided yet)

    @property
    def limit(self) -> int | None:
        """The chapter limit that applies, or None (whole document)."""
        if self.upto_chapter is None or self.upto_chapter >= self.document.chapter_count:
            return None
        return self.upto_chapter


@dataclass(frozen=True, slots=True)
class SummaryRow:
    first_passage_id: int
    last_passage_id: int
    chapter_index: int | None
    summary: str
    tokens: int


@dataclass(frozen=True, slots=True)
class NovelPersonaLink:
    persona_id: str
    document_id: int
    character_name: str
    upto_chapter: int | None


@dataclass(frozen=True, slots=True)
class PreparedPassage:
    chapter_index: int | None
    start: int
    end: int
    tokens: int
    text: str
    body: str | None = None  # its full-text index form, if made already (else index_form(text))


@dataclass(frozen=True, slots=True)
class PassageBatch:
    """Passages with the JSON that `save` hands to SQLite for them, made ahead (by the
    thread that prepares the batches, so the writer does not hold the GIL for it)."""

    passages: Sequence[PreparedPassage]
    rows: str  # [[chapter_index, start, end, tokens, text], …]
    bodies: str  # [index form, …]

    @classmethod
    def of(cls, passages: Sequence[PreparedPassage]) -> "PassageBatch":
        return cls(passages,
                   json.dumps([[p.chapter_index, p.start, p.end, p.tokens, p.text] for p in passages],
                              ensure_ascii=False),
                   json.dumps([index_form(p.text) if p.body is None else p.body for p in passages],
                              ensure_ascii=False))


@dataclass(frozen=True, slots=True)
class DocumentHeader:
    """What is known of a document before its passages are counted and indexed."""

    owner_user_id: int
    title: str
    author: str | None
    format: str
    encoding: str | None
    source: str | None
    sha256: str
    chars: int
    chapter_source: str
    chapters: list[StoredChapter]  # their tokens are summed from the passages while saving


_DOCUMENT_COLUMNS = ("id, owner_user_id, title, author, format, encoding, source, sha256, chars, tokens, "
                     "chapter_count, chapter_source, created_at")
_PASSAGE_COLUMNS = 'id, document_id, chapter_index, start, "end", tokens, text'
# A batch of passages (ids first_id, first_id + 1, …) goes in with one statement per
# table, its rows handed over as one JSON array: SQLite then indexes the whole batch in
# one call that does not hold the GIL, where executemany would take the GIL back after
# every row (and wait for it while other threads hold it: the writes would crawl while
# the tokenizer loads beside them).
_INSERT_PASSAGES = (
    'INSERT INTO document_passages (id, document_id, chapter_index, start, "end", tokens, text) '
    "SELECT ?1 + key, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
    "json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?3)")
_INSERT_INDEX_ROWS = ("INSERT INTO document_passages_fts (rowid, document, body) "
                      "SELECT ?1 + key, ?2, value FROM json_each(?3)")


def _chapter_filter(limit: int | None, alias: str = "") -> tuple[str, list]:
    """SQL keeping the front matter and chapters 1..limit (all when limit is None)."""
    if limit is None:
        return "", []
    column = f"{alias}chapter_index"
    return f" AND ({column} IS NULL OR {column} < ?)", [limit]


def search_terms(query: str) -> list[str]:
    """Distinct index terms of a message for ranking passages (any term may match):
    CJK bigrams and words of other scripts, minus very common English words."""
    terms: list[str] = []
    seen: set[str] = set()
    for word in _WORD.findall(index_form(query).lower()):
        if word in seen or word in _STOPWORDS or (word.isascii() and len(word) < 3):
            continue
        seen.add(word)
        terms.append(word)
        if len(terms) >= MAX_QUERY_TERMS:
            break
    return terms


class DocumentStore:
    def __init__(self, store: Store):
        self.store = store
        self.db = store.db
        self._totals: dict[tuple[int, int | None], int] = {}
        self._lock = threading.Lock()
        self._passages: _SqlitePassages = (_PostgresPassages(store) if dialect(self.db) == "postgresql"
                                           else _SqlitePassages(store))
        self._delete_stale()

    # -- writing ----------------------------------------------------------------------
    def _writer(self) -> "_Writer":
        """A connection of its own for a worker thread (autocommit; we BEGIN ourselves)."""
        return self._passages.writer()

    def save(self, header: DocumentHeader,
             batches: Callable[[], Iterator[Sequence[PreparedPassage] | PassageBatch]], *,
             cancel: CancelToken | None = None, on_batch: Callable[[int], None] | None = None,
             timings: dict[str, float] | None = None,
             counts: Callable[[], Sequence[int]] | None = None) -> tuple[StoredDocument, bool]:
        """Write a document from batches of passages (in reading order); returns it, and
        whether the owner already had this text (then nothing is written and `batches`
        is never called). A failure or a cancellation leaves nothing behind.
        `on_batch(passages written)` is called after each batch; `timings`, when
        given, gets the seconds spent writing the passages' rows ("rows"), their index
        rows ("index"), and committing ("commit", with the last transaction's work).
        `counts`, when given, returns the token counts of all the passages, in order,
        once they are written (they are counted meanwhile, elsewhere): the passages'
        own `tokens` are then ignored, and the counts go in with the last transaction,
        the one that makes the document ready.

        Runs entirely on a connection of its own, so it may run in a worker thread; the
        batches may be produced concurrently (see `ingest.prefetched`): SQLite works
        without holding the GIL, so counting and indexing overlap with writing."""
        connection = self._writer()
        document_id: int | None = None
        produced = None
        try:
            with _transaction(connection):
                existing = connection.execute(
                    f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE owner_user_id = ? AND sha256 = ? "
                    "AND status = 'ready' ORDER BY id LIMIT 1", [header.owner_user_id, header.sha256]).fetchone()
                if existing is not None:
                    return StoredDocument(*existing), True
                (document_id,) = connection.execute(
                    "INSERT INTO documents (owner_user_id, title, author, format, encoding, source, sha256, chars, "
                    "tokens, chapter_count, chapter_source, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 'ingesting', ?) RETURNING id",
                    [header.owner_user_id, header.title, header.author, header.format, header.encoding,
                     header.source, header.sha256, header.chars, len(header.chapters), header.chapter_source,
                     self.store.now()]).fetchone()
            produced = batches()
            written = total = 0
            chapter_tokens: dict[int, int] = {}
            placed: list[tuple[int, int | None, int]] = []  # (id, chapter_index, tokens) of each passage
            timings = timings if timings is not None else {}
            for stage in ("rows", "index", "commit"):
                timings.setdefault(stage, 0.0)
            for item in produced:
                if cancel is not None:
                    cancel.check()
                prepared = item if isinstance(item, PassageBatch) else PassageBatch.of(item)
                batch = prepared.passages
                writing = time.perf_counter()
                connection.begin()
                try:
                    ids, indexing = self._passages.insert(connection, document_id, prepared)
                except BaseException:
                    connection.rollback()
                    raise
                committing = time.perf_counter()
                connection.commit()
                timings["rows"] += indexing - writing
                timings["index"] += committing - indexing
                timings["commit"] += time.perf_counter() - committing
                placed.extend((passage_id, p.chapter_index, p.tokens) for passage_id, p in zip(ids, batch))
                written += len(batch)
                if on_batch is not None:
                    on_batch(written)
            if cancel is not None:
                cancel.check()
            # The index pages go into the database file now, while the tokens may
            # still be being counted (the checkpoint is mostly I/O, without the GIL);
            # the last transaction's pages follow after it.
            connection.checkpoint(timings)
            waiting = time.perf_counter()
            tokens = list(counts()) if counts is not None else [count for _, _, count in placed]
            timings["tokens wait"] = time.perf_counter() - waiting
            if len(tokens) != len(placed):
                raise RuntimeError(f"{len(tokens)} token counts for {len(placed)} passages")
            for (_, chapter, _), count in zip(placed, tokens):
                total += count
                if chapter is not None:
                    chapter_tokens[chapter] = chapter_tokens.get(chapter, 0) + count
            finishing = time.perf_counter()
            with _transaction(connection):
                if counts is not None:
                    self._passages.set_tokens(connection, [passage_id for passage_id, _, _ in placed], tokens)
                connection.executemany(
                    'INSERT INTO document_chapters (document_id, chapter_index, title, number, start, "end", tokens) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(document_id, c.index, c.title, c.number, c.start, c.end, chapter_tokens.get(c.index, 0))
                     for c in header.chapters])
                connection.execute("UPDATE documents SET status = 'ready', tokens = ? WHERE id = ?",
                                   [total, document_id])
            row = connection.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?",
                                     [document_id]).fetchone()
            timings["commit"] += time.perf_counter() - finishing
            connection.checkpoint(timings)
            return StoredDocument(*row), False
        except BaseException:
            if produced is not None and hasattr(produced, "close"):
                produced.close()  # stops a producer thread before the cleanup
            if document_id is not None:
                with _transaction(connection):
                    self._passages.delete_documents(connection, "id = ?", [document_id])
            raise
        finally:
            if produced is not None and hasattr(produced, "close"):
                produced.close()
            connection.close()

    def delete_document(self, document_id: int) -> None:
        with self.db.atomic():
            self._passages.delete_documents(self._passages.store_connection(), "id = ?", [document_id])
        self._forget_totals(document_id)

    def _delete_stale(self) -> None:
        """Documents whose ingestion a crash interrupted (older than an hour, so that an
        ingestion running right now in another process is left alone)."""
        cutoff = to_text(self.store.clock() - STALE_INGESTION)
        with self.db.atomic():
            self._passages.delete_documents(self._passages.store_connection(), "status = 'ingesting' AND created_at < ?",
                                            [cutoff])

    def forget_user(self, user_id: int) -> None:
        """A step of the forget cascade: the user's documents, passages and index rows."""
        self._passages.delete_documents(self._passages.store_connection(), "owner_user_id = ?", [user_id])
        with self._lock:
            self._totals.clear()

    def optimize_index(self) -> None:
        """A step of `Store.compact`: the passage index merged, so deleted text leaves the file."""
        self._passages.optimize()

    def reindex(self, batch: int = 2000) -> int:
        """Rebuild the passages' full-text index from the passages themselves (after a
        bulk copy that wrote the rows without it: `companion migrate-db`), on the Store's
        connection, in one transaction (the caller's, when inside one); returns how many
        passages it indexed."""
        indexed = last_id = 0
        with self.db.atomic():
            self._passages.clear_index(self.db)
            while True:
                rows = self.db.execute("SELECT id, document_id, text FROM document_passages WHERE id > ? "
                                       "ORDER BY id LIMIT ?", [last_id, batch]).fetchall()
                if not rows:
                    return indexed
                self._passages.index_rows(self.db, [(row[0], row[1], row[2]) for row in rows])
                indexed += len(rows)
                last_id = rows[-1][0]

    # -- documents ----------------------------------------------------------------------
    def document(self, document_id: int) -> StoredDocument:
        row = self.db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ? AND status = 'ready'",
                              [document_id]).fetchone()
        if row is None:
            raise KeyError(f"no document {document_id}")
        return StoredDocument(*row)

    def owned_document(self, user_id: int, document_id: int) -> StoredDocument:
        """The user's document; KeyError (with a message for people) if it is not theirs."""
        try:
            document = self.document(document_id)
        except KeyError:
            document = None
        if document is None or document.owner_user_id != user_id:
            raise KeyError(f"no document {document_id} of this user (see /docs)")
        return document

    def documents_of(self, user_id: int) -> list[StoredDocument]:
        rows = self.db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE owner_user_id = ? "
                               "AND status = 'ready' ORDER BY id DESC", [user_id]).fetchall()
        return [StoredDocument(*row) for row in rows]

    def chapters(self, document_id: int) -> list[StoredChapter]:
        rows = self.db.execute('SELECT chapter_index, title, number, start, "end", tokens FROM document_chapters '
                               "WHERE document_id = ? ORDER BY chapter_index", [document_id]).fetchall()
        return [StoredChapter(*row) for row in rows]

    def passages(self, document_id: int, limit: int | None = None) -> list[StoredPassage]:
        """Every passage (front matter and chapters 1..limit), in reading order."""
        where, params = _chapter_filter(limit)
        rows = self.db.execute(f"SELECT {_PASSAGE_COLUMNS} FROM document_passages WHERE document_id = ?{where} "
                               "ORDER BY id", [document_id, *params]).fetchall()
        return [StoredPassage(*row) for row in rows]

    def passage_sizes(self, document_id: int, limit: int | None = None) -> list[tuple[int, int | None, int]]:
        """(id, chapter_index, tokens) of every passage in reading order, without text."""
        where, params = _chapter_filter(limit)
        return [tuple(row) for row in self.db.execute(
            f"SELECT id, chapter_index, tokens FROM document_passages WHERE document_id = ?{where} ORDER BY id",
            [document_id, *params]).fetchall()]

    def passage_range(self, document_id: int, first_id: int, last_id: int) -> list[StoredPassage]:
        rows = self.db.execute(f"SELECT {_PASSAGE_COLUMNS} FROM document_passages WHERE document_id = ? "
                               "AND id BETWEEN ? AND ? ORDER BY id", [document_id, first_id, last_id]).fetchall()
        return [StoredPassage(*row) for row in rows]

    def opening(self, document_id: int, chars: int = 5000) -> str:
        """The first characters of the text (for guessing its language)."""
        rows = self.db.execute("SELECT text FROM document_passages WHERE document_id = ? ORDER BY id LIMIT ?",
                               [document_id, max(1, chars // 500)]).fetchall()
        return "".join(row[0] for row in rows)[:chars]

    def text(self, document_id: int, limit: int | None = None) -> str:
        """The normalized text exactly as extracted (up to the end of chapter `limit`)."""
        where, params = _chapter_filter(limit)
        rows = self.db.execute(f"SELECT text FROM document_passages WHERE document_id = ?{where} ORDER BY id",
                               [document_id, *params]).fetchall()
        text = "".join(row[0] for row in rows)
        return text if limit is None else text.rstrip()

    def tokens_upto(self, document_id: int, limit: int | None = None) -> int:
        """Tokens of the text `text(document_id, limit)` returns (cached; documents never change)."""
        key = (document_id, limit)
        with self._lock:
            cached = self._totals.get(key)
        if cached is not None:
            return cached
        where, params = _chapter_filter(limit)
        total = self.db.execute(f"SELECT coalesce(sum(tokens), 0) FROM document_passages WHERE document_id = ?"
                                f"{where}", [document_id, *params]).fetchone()[0]
        with self._lock:
            if len(self._totals) > 4096:
                self._totals.clear()
            self._totals[key] = total
        return total

    def _forget_totals(self, document_id: int) -> None:
        with self._lock:
            for key in [k for k in self._totals if k[0] == document_id]:
                del self._totals[key]

    def search_passages(self, scopes: Sequence[tuple[int, int | None]], query: str, *,
                        limit: int = 6) -> list[StoredPassage]:
        """The passages best matching any word of `query`, in the given documents, each
        limited to its chapters 1..N (`scopes`: (document_id, limit or None))."""
        terms = search_terms(query)
        if not scopes or not terms:
            return []
        clauses, params = [], []
        for document_id, chapter_limit in scopes:
            if chapter_limit is None:
                clauses.append("p.document_id = ?")
                params.append(document_id)
            else:
                clauses.append("(p.document_id = ? AND (p.chapter_index IS NULL OR p.chapter_index < ?))")
                params += [document_id, chapter_limit]
        # Rank ids first, then read the few texts: sorting whole passages costs more than ranking.
        ranked = self._passages.rank(self.db, [document_id for document_id, _ in scopes], terms,
                                     " OR ".join(clauses), params, limit)
        if not ranked:
            return []
        rows = self.db.execute(f"SELECT {_PASSAGE_COLUMNS} FROM document_passages WHERE id IN "
                               f"({', '.join('?' * len(ranked))})", ranked).fetchall()
        by_id = {row[0]: StoredPassage(*row) for row in rows}
        return [by_id[passage_id] for passage_id in ranked]

    def passages_mentioning(self, document_id: int, names: Iterable[str], limit: int | None) -> list[int]:
        """Ids of passages (chapters 1..limit) containing any of the names, in reading order."""
        phrases = []
        for name in names:
            words = _WORD.findall(index_form(name).lower())
            if words:
                phrases.append(words)
        if not phrases:
            return []
        where, params = _chapter_filter(limit, "p.")
        return self._passages.mentioning(self.db, document_id, phrases, where, params)

    # -- attachments ----------------------------------------------------------------------
    def attachments(self, conversation_id: int) -> list[Attachment]:
        """Documents attached to the conversation now, in the order they were attached."""
        rows = self.db.execute(
            f"SELECT {', '.join('d.' + c.strip() for c in _DOCUMENT_COLUMNS.split(','))}, "
            "a.position, a.upto_chapter, a.mode FROM conversation_documents a JOIN documents d ON d.id = a.document_id "
            "WHERE a.conversation_id = ? AND a.attached = 1 AND d.status = 'ready' ORDER BY a.position",
            [conversation_id]).fetchall()
        return [Attachment(StoredDocument(*row[:13]), row[13], row[14], row[15]) for row in rows]

    def attached_ids(self, conversation_id: int) -> set[int]:
        return {a.document.id for a in self.attachments(conversation_id)}

    def attach(self, conversation_id: int, document_id: int, *, upto_chapter: int | None = None) -> None:
        """Attach (or re-attach) a document; it goes after the ones attached before it.
        Every reading decision of the conversation is taken again at the next request."""
        with self.db.atomic():
            position = self.db.execute("SELECT coalesce(max(position), 0) + 1 FROM conversation_documents "
                                       "WHERE conversation_id = ?", [conversation_id]).fetchone()[0]
            self.db.execute(
                "INSERT INTO conversation_documents (conversation_id, document_id, attached, position, upto_chapter, "
                "attached_at) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (conversation_id, document_id) DO UPDATE SET "
                "attached = 1, position = CASE WHEN conversation_documents.attached = 1 "
                "THEN conversation_documents.position ELSE excluded.position END, "
                "upto_chapter = coalesce(excluded.upto_chapter, conversation_documents.upto_chapter)",
                [conversation_id, document_id, position, upto_chapter, self.store.now()])
            self._clear_modes(conversation_id)

    def detach(self, conversation_id: int, document_id: int) -> bool:
        with self.db.atomic():
            changed = self.db.execute("UPDATE conversation_documents SET attached = 0, mode = NULL "
                                      "WHERE conversation_id = ? AND document_id = ? AND attached = 1",
                                      [conversation_id, document_id]).rowcount
            if changed:
                self._clear_modes(conversation_id)
        return bool(changed)

    def set_upto(self, conversation_id: int, document_id: int, upto_chapter: int | None) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE conversation_documents SET upto_chapter = ? WHERE conversation_id = ? "
                            "AND document_id = ?", [upto_chapter, conversation_id, document_id])
            self._clear_modes(conversation_id)

    def set_modes(self, conversation_id: int, modes: dict[int, str]) -> None:
        with self.db.atomic():
            for document_id, mode in modes.items():
                self.db.execute("UPDATE conversation_documents SET mode = ? WHERE conversation_id = ? "
                                "AND document_id = ?", [mode, conversation_id, document_id])

    def _clear_modes(self, conversation_id: int) -> None:
        self.db.execute("UPDATE conversation_documents SET mode = NULL WHERE conversation_id = ?", [conversation_id])

    # -- summaries ------------------------------------------------------------------------
    def summaries(self, document_id: int) -> dict[tuple[int, int], SummaryRow]:
        rows = self.db.execute("SELECT first_passage_id, last_passage_id, chapter_index, summary, tokens "
                               "FROM document_summaries WHERE document_id = ?", [document_id]).fetchall()
        return {(row[0], row[1]): SummaryRow(*row) for row in rows}

    def save_summary(self, document_id: int, row: SummaryRow, model: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO document_summaries (document_id, first_passage_id, last_passage_id, "
                "chapter_index, summary, tokens, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (document_id, first_passage_id, last_passage_id) DO UPDATE SET "
                "chapter_index = excluded.chapter_index, summary = excluded.summary, tokens = excluded.tokens, "
                "model = excluded.model, created_at = excluded.created_at",
                [document_id, row.first_passage_id, row.last_passage_id, row.chapter_index, row.summary,
                 row.tokens, model, self.store.now()])

    # -- character caches and novel personas -------------------------------------------------
    def cached(self, document_id: int, kind: str, name: str, upto_chapter: int | None) -> str | None:
        row = self.db.execute("SELECT data FROM document_character_cache WHERE document_id = ? AND kind = ? "
                              "AND name = ? AND upto_chapter = ?",
                              [document_id, kind, name, upto_chapter or 0]).fetchone()
        return row[0] if row else None

    def cache(self, document_id: int, kind: str, name: str, upto_chapter: int | None, data: str) -> None:
        with self.db.atomic():
            self.db.execute("INSERT INTO document_character_cache (document_id, kind, name, upto_chapter, "
                            "data, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (document_id, kind, name, upto_chapter) DO UPDATE SET "
                            "data = excluded.data, created_at = excluded.created_at",
                            [document_id, kind, name, upto_chapter or 0, data, self.store.now()])

    def link_persona(self, persona_id: str, document_id: int, character_name: str,
                     upto_chapter: int | None) -> None:
        with self.db.atomic():
            self.db.execute("INSERT INTO novel_personas (persona_id, document_id, character_name, "
                            "upto_chapter, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (persona_id) DO UPDATE SET "
                            "document_id = excluded.document_id, character_name = excluded.character_name, "
                            "upto_chapter = excluded.upto_chapter, created_at = excluded.created_at",
                            [persona_id, document_id, character_name, upto_chapter, self.store.now()])

    def persona_link(self, persona_id: str) -> NovelPersonaLink | None:
        row = self.db.execute("SELECT persona_id, document_id, character_name, upto_chapter FROM novel_personas "
                              "WHERE persona_id = ?", [persona_id]).fetchone()
        return NovelPersonaLink(*row) if row else None

    def counts(self) -> dict[str, int]:
        row = self.db.execute(
            f"SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM document_chapters), "
            f"(SELECT count(*) FROM document_passages), (SELECT count(*) FROM {self._passages.index_table}), "
            "(SELECT count(*) FROM conversation_documents), (SELECT count(*) FROM document_summaries)").fetchone()
        return dict(zip(("documents", "chapters", "passages", "index", "attachments", "summaries"), row))


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class _Writer:
    """The writer's own SQLite connection (autocommit; BEGIN IMMEDIATE … COMMIT by hand)."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def execute(self, sql: str, params: Sequence = ()):
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self.connection.executemany(sql, rows)

    def begin(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def checkpoint(self, timings: dict[str, float]) -> None:
        """Copy what the WAL holds into the database file, without waiting for readers."""
        started = time.perf_counter()
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        timings["checkpoint"] = timings.get("checkpoint", 0.0) + time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


class _PostgresWriter(_Writer):
    """The writer's own psycopg connection (memory/postgres.py's `PostgresDatabase`, so
    `?` parameters work): the Store's connection is shared under a lock, and a book's
    batches would hold it against the event loop."""

    def __init__(self, url: str):
        from memory.postgres import PostgresDatabase

        self.db = PostgresDatabase(url)

    def execute(self, sql: str, params: Sequence = ()):
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self.db.executemany(sql, rows)

    def begin(self) -> None:
        self.db.conn.execute("BEGIN")

    def commit(self) -> None:
        self.db.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.db.conn.execute("ROLLBACK")

    def checkpoint(self, timings: dict[str, float]) -> None:
        """Nothing to copy: PostgreSQL checkpoints on its own."""

    def close(self) -> None:
        self.db.close()


class _SqlitePassages:
    """The passages' full-text parts on SQLite: an FTS5 table (rowid = passage id,
    `document` = "d<id>"), batches handed over as JSON, ids given inside the write lock."""

    index_table = "document_passages_fts"

    def __init__(self, store: Store):
        self.store = store

    def store_connection(self):
        """The Store's connection as deletes use it (the raw sqlite3 one, inside its transaction)."""
        return self.store.db.conn

    def writer(self) -> _Writer:
        if str(self.store.path) == ":memory:":
            raise RuntimeError("documents need a database file, not :memory:")
        connection = sqlite3.connect(str(self.store.path), timeout=30, isolation_level=None,
                                     check_same_thread=False)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA secure_delete = ON")
        # WAL + NORMAL: a commit cannot corrupt the file; a power cut may lose the last
        # ones, and a document not marked ready is deleted at the next start anyway.
        connection.execute("PRAGMA synchronous = NORMAL")
        # No checkpoint after every thousand pages of a big book: `save` checkpoints
        # once its batches are written and once more after the last transaction, so
        # the pages its index rewrites are copied into the database file (and synced)
        # once, not again and again.
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        return _Writer(connection)

    def insert(self, writer: _Writer, document_id: int, batch: PassageBatch) -> tuple[list[int], float]:
        """Write a batch's passages and index rows (in the writer's transaction); returns
        their ids and when the index rows were started (for the timings)."""
        # Ids are given here, inside the write lock.
        first_id = writer.execute("SELECT coalesce(max(id), 0) + 1 FROM document_passages").fetchone()[0]
        writer.execute(_INSERT_PASSAGES, [first_id, document_id, batch.rows])
        indexing = time.perf_counter()
        writer.execute(_INSERT_INDEX_ROWS, [first_id, f"d{document_id}", batch.bodies])
        return [first_id + n for n in range(len(batch.passages))], indexing

    def set_tokens(self, writer: _Writer, ids: Sequence[int], tokens: Sequence[int]) -> None:
        writer.executemany("UPDATE document_passages SET tokens = ? WHERE id = ?", list(zip(tokens, ids)))

    def delete_documents(self, connection, where: str, params: list) -> None:
        """Delete documents and everything hanging off them (the index rows explicitly:
        FTS tables know nothing of foreign keys)."""
        selected = f"SELECT id FROM documents WHERE {where}"
        connection.execute("DELETE FROM document_passages_fts WHERE rowid IN (SELECT id FROM document_passages "
                           f"WHERE document_id IN ({selected}))", params)
        connection.execute(f"DELETE FROM documents WHERE id IN ({selected})", params)

    def rank(self, db, document_ids: Sequence[int], terms: Sequence[str], scope_sql: str, params: list,
             limit: int) -> list[int]:
        """Ids of the passages best matching any of `terms` (bm25), within `scope_sql`."""
        documents = " OR ".join(f'"d{document_id}"' for document_id in document_ids)
        expression = f"document : ({documents}) AND body : ({' OR '.join(_quote(t) for t in terms)})"
        return [row[0] for row in db.execute(
            "SELECT p.id FROM document_passages_fts f JOIN document_passages p ON p.id = f.rowid "
            f"WHERE document_passages_fts MATCH ? AND ({scope_sql}) "
            "ORDER BY bm25(document_passages_fts, 0.0, 1.0), p.id LIMIT ?",
            [expression, *params, limit]).fetchall()]

    def mentioning(self, db, document_id: int, phrases: Sequence[Sequence[str]], where: str,
                   params: list) -> list[int]:
        """Ids of the document's passages containing any phrase (its words in a row), in order."""
        body = " OR ".join(_quote(" ".join(words)) for words in phrases)
        rows = db.execute(
            "SELECT p.id FROM document_passages_fts f JOIN document_passages p ON p.id = f.rowid "
            f"WHERE document_passages_fts MATCH ? AND p.document_id = ?{where} ORDER BY p.id",
            [f'document : "d{document_id}" AND body : ({body})', document_id, *params]).fetchall()
        return [row[0] for row in rows]

    def optimize(self) -> None:
        self.store.db.execute("INSERT INTO document_passages_fts (document_passages_fts) VALUES ('optimize')")

    def clear_index(self, db) -> None:
        db.execute("DELETE FROM document_passages_fts")

    def index_rows(self, db, rows: Sequence[tuple[int, int, str]]) -> None:
        """Index rows for (passage id, document id, text) triples, in one statement (a rebuild's batch)."""
        db.execute("INSERT INTO document_passages_fts (rowid, document, body) SELECT json_extract(value, '$[0]'), "
                   "json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)",
                   [json.dumps([[passage_id, f"d{document_id}", index_form(text)] for passage_id, document_id, text
                                in rows], ensure_ascii=False)])


class _PostgresPassages(_SqlitePassages):
    """The same on PostgreSQL: `document_passages_search` (a `simple` tsvector of the
    passage's index words, with its document_id; its rows cascade with the passage),
    ranked by `ts_rank`. A batch is three statements: its ids taken from the identity's
    sequence, then the passages and their index rows each inserted from arrays."""

    index_table = "document_passages_search"

    def store_connection(self):
        return self.store.db

    def writer(self) -> _Writer:
        return _PostgresWriter(self.store.url)

    def insert(self, writer: _Writer, document_id: int, batch: PassageBatch) -> tuple[list[int], float]:
        passages = batch.passages
        ids = [row[0] for row in writer.execute(
            "SELECT nextval(pg_get_serial_sequence('document_passages', 'id')) FROM generate_series(1, ?)",
            [len(passages)]).fetchall()]
        writer.execute(
            'INSERT INTO document_passages (id, document_id, chapter_index, start, "end", tokens, text) '
            "SELECT u.id, ?, u.chapter_index, u.start, u.stop, u.tokens, u.text FROM "
            "unnest(?::bigint[], ?::integer[], ?::integer[], ?::integer[], ?::integer[], ?::text[]) "
            "AS u(id, chapter_index, start, stop, tokens, text)",
            [document_id, ids, [p.chapter_index for p in passages], [p.start for p in passages],
             [p.end for p in passages], [p.tokens for p in passages], [p.text for p in passages]])
        indexing = time.perf_counter()
        # split and folded as FTS5 does it, so both backends find the same passages
        bodies = [tsvector_text(body) for body in json.loads(batch.bodies)]
        writer.execute(
            "INSERT INTO document_passages_search (passage_id, document_id, body) "
            "SELECT u.id, ?, to_tsvector('simple', u.body) FROM unnest(?::bigint[], ?::text[]) AS u(id, body)",
            [document_id, ids, bodies])
        return ids, indexing

    def set_tokens(self, writer: _Writer, ids: Sequence[int], tokens: Sequence[int]) -> None:
        writer.execute("UPDATE document_passages p SET tokens = u.tokens "
                       "FROM unnest(?::bigint[], ?::integer[]) AS u(id, tokens) WHERE p.id = u.id",
                       [list(ids), list(tokens)])

    def delete_documents(self, connection, where: str, params: list) -> None:
        """Delete documents; passages, index rows, chapters, attachments, summaries,
        caches and novel personas' links cascade (foreign keys)."""
        connection.execute(f"DELETE FROM documents WHERE {where}", params)

    def rank(self, db, document_ids: Sequence[int], terms: Sequence[str], scope_sql: str, params: list,
             limit: int) -> list[int]:
        expression = " | ".join(tsquery_lexeme(fold_diacritics(term)) for term in terms)
        return [row[0] for row in db.execute(
            "SELECT p.id FROM document_passages_search s JOIN document_passages p ON p.id = s.passage_id "
            f"WHERE s.body @@ to_tsquery('simple', ?) AND s.document_id IN ({', '.join('?' * len(document_ids))}) "
            f"AND ({scope_sql}) ORDER BY ts_rank(s.body, to_tsquery('simple', ?)) DESC, p.id LIMIT ?",
            [expression, *document_ids, *params, expression, limit]).fetchall()]

    def mentioning(self, db, document_id: int, phrases: Sequence[Sequence[str]], where: str,
                   params: list) -> list[int]:
        expression = " | ".join("(" + " <-> ".join(tsquery_lexeme(fold_diacritics(word)) for word in words) + ")" for words in phrases)
        rows = db.execute(
            "SELECT p.id FROM document_passages_search s JOIN document_passages p ON p.id = s.passage_id "
            f"WHERE s.body @@ to_tsquery('simple', ?) AND s.document_id = ? AND p.document_id = ?{where} "
            "ORDER BY p.id", [expression, document_id, document_id, *params]).fetchall()
        return [row[0] for row in rows]

    def optimize(self) -> None:
        """Nothing to merge: GIN's pending list is merged by (auto)vacuum."""

    def clear_index(self, db) -> None:
        db.execute("DELETE FROM document_passages_search")

    def index_rows(self, db, rows: Sequence[tuple[int, int, str]]) -> None:
        db.execute("INSERT INTO document_passages_search (passage_id, document_id, body) "
                   "SELECT u.id, u.document_id, to_tsvector('simple', u.body) "
                   "FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS u(id, document_id, body)",
                   [[row[0] for row in rows], [row[1] for row in rows],
                    [tsvector_text(index_form(row[2])) for row in rows]])


class _transaction:
    """BEGIN … COMMIT on a writer; ROLLBACK on any error."""

    def __init__(self, connection: _Writer):
        self.connection = connection

    def __enter__(self) -> _Writer:
        self.connection.begin()
        return self.connection

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.connection.commit()
        else:
            self.connection.rollback()
