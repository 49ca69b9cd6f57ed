"""The documents feature's own migration set (`companion.documents`).

Applied after the core and persona sets (see `memory.schema.migration_sets`). The
normalized text of a document is stored once, cut into passages: passage *i* holds the
text from its own start up to the start of passage *i + 1* (the blank lines between
them included), so the passages of a document, joined in id order, give back its
text exactly. Each passage has its o200k token count (counted once, at ingestion) and
a row in the full-text index in `textsearch.index_form` (CJK as bigrams), with a
`document` column ("d<id>") so a search can be limited to the documents attached to
a conversation without scanning everyone else's.

A document is written in several short transactions (so that a big book does not hold
the write lock for a second while the bot answers others); it stays `ingesting`, and
invisible, until the last one marks it `ready`. A failed or cancelled ingestion deletes
what it wrote; one a crash interrupted is deleted at the next start.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.migrations import run_sql
from memory.postgres import PostgresDatabase, PostgresMigrations, run_statements

migrations = Migrations("companion.documents")


@migrations()
def m001_documents_chapters_passages(db: Database) -> None:
    run_sql(
        db,
        """
        -- One uploaded or fetched document of one user. sha256 is of the normalized
        -- text, so uploading the same book again finds the stored one.
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            owner_user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            author TEXT,
            format TEXT NOT NULL,
            encoding TEXT,
            source TEXT,
            sha256 TEXT NOT NULL,
            chars INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            chapter_count INTEGER NOT NULL,
            chapter_source TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'ingesting' CHECK (status IN ('ingesting', 'ready')),
            created_at TEXT NOT NULL
        );
        -- Not unique: two uploads of one text racing each other may both be kept.
        CREATE INDEX documents_by_owner ON documents (owner_user_id, sha256);

        -- Chapters as detected by the extractor; offsets into the normalized text.
        -- tokens: the chapter's passages, i.e. up to the next chapter's heading.
        CREATE TABLE document_chapters (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            chapter_index INTEGER NOT NULL,
            title TEXT NOT NULL,
            number INTEGER,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            PRIMARY KEY (document_id, chapter_index)
        );

        -- chapter_index NULL: text before the first chapter (title page, preface).
        CREATE TABLE document_passages (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            chapter_index INTEGER,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX document_passages_by_document ON document_passages (document_id, chapter_index, id);

        -- rowid = document_passages.id; document = 'd' || document_id.
        CREATE VIRTUAL TABLE document_passages_fts USING fts5 (
            document, body, tokenize = 'unicode61 remove_diacritics 2'
        );

        -- Documents attached to a conversation. mode is the persisted reading decision
        -- (verbatim | summaries; NULL: decide at the next request) so that the static
        -- part of the prompt stays the same turn after turn. upto_chapter: the
        -- timeline ("as of chapter N"), NULL for the whole document.
        CREATE TABLE conversation_documents (
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            attached INTEGER NOT NULL DEFAULT 1,
            position INTEGER NOT NULL,
            upto_chapter INTEGER,
            mode TEXT CHECK (mode IN ('verbatim', 'summaries')),
            attached_at TEXT NOT NULL,
            PRIMARY KEY (conversation_id, document_id)
        );
        CREATE INDEX conversation_documents_by_document ON conversation_documents (document_id);

        -- Model-made summaries of summary units (a chapter, or a part of a long one),
        -- made once in the background; a unit is the passages first..last.
        CREATE TABLE document_summaries (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            first_passage_id INTEGER NOT NULL,
            last_passage_id INTEGER NOT NULL,
            chapter_index INTEGER,
            summary TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (document_id, first_passage_id, last_passage_id)
        );

        -- Cached model results about a novel: the main characters up to a chapter
        -- (kind 'characters', name ''), and one character's profile (kind 'profile').
        -- upto_chapter 0 means the whole book.
        CREATE TABLE document_character_cache (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('characters', 'profile')),
            name TEXT NOT NULL,
            upto_chapter INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (document_id, kind, name, upto_chapter)
        );

        -- Personas made from a novel's character, and where they came from.
        CREATE TABLE novel_personas (
            persona_id TEXT PRIMARY KEY REFERENCES stored_personas(id) ON DELETE CASCADE,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            character_name TEXT NOT NULL,
            upto_chapter INTEGER,
            created_at TEXT NOT NULL
        );
        """,
    )


# -- PostgreSQL ------------------------------------------------------------------------
# The same tables on PostgreSQL (memory/postgres.py): identity ids (BY DEFAULT, so
# `migrate-db` can copy ids as they are), integers and text timestamps as in SQLite.
# `end` is a reserved word in PostgreSQL, so the column is quoted here; queries must
# write it "end" (SQLite accepts the quoted name too). The passages' full-text index is
# a side table of tsvectors built from `textsearch.index_form` with a GIN index,
# instead of FTS5; `document_id` in it limits a search to attached documents.
postgres_migrations = PostgresMigrations("companion.documents")


@postgres_migrations()
def p001_documents_chapters_passages(db: PostgresDatabase) -> None:
    run_statements(
        db,
        """
        CREATE TABLE documents (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            owner_user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            author TEXT,
            format TEXT NOT NULL,
            encoding TEXT,
            source TEXT,
            sha256 TEXT NOT NULL,
            chars INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            chapter_count INTEGER NOT NULL,
            chapter_source TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'ingesting' CHECK (status IN ('ingesting', 'ready')),
            created_at TEXT NOT NULL
        );
        CREATE INDEX documents_by_owner ON documents (owner_user_id, sha256);
        CREATE TABLE document_chapters (
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            chapter_index INTEGER NOT NULL,
            title TEXT NOT NULL,
            number INTEGER,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            PRIMARY KEY (document_id, chapter_index)
        );
        CREATE TABLE document_passages (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            chapter_index INTEGER,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX document_passages_by_document ON document_passages (document_id, chapter_index, id);
        CREATE TABLE document_passages_search (
            passage_id BIGINT PRIMARY KEY REFERENCES document_passages(id) ON DELETE CASCADE,
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            body TSVECTOR NOT NULL
        );
        CREATE INDEX document_passages_search_body ON document_passages_search USING GIN (body);
        CREATE INDEX document_passages_search_by_document ON document_passages_search (document_id);
        CREATE TABLE conversation_documents (
            conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            attached INTEGER NOT NULL DEFAULT 1,
            position INTEGER NOT NULL,
            upto_chapter INTEGER,
            mode TEXT CHECK (mode IN ('verbatim', 'summaries')),
            attached_at TEXT NOT NULL,
            PRIMARY KEY (conversation_id, document_id)
        );
        CREATE INDEX conversation_documents_by_document ON conversation_documents (document_id);
        CREATE TABLE document_summaries (
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            first_passage_id BIGINT NOT NULL,
            last_passage_id BIGINT NOT NULL,
            chapter_index INTEGER,
            summary TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (document_id, first_passage_id, last_passage_id)
        );
        CREATE TABLE document_character_cache (
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('characters', 'profile')),
            name TEXT NOT NULL,
            upto_chapter INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (document_id, kind, name, upto_chapter)
        );
        CREATE TABLE novel_personas (
            persona_id TEXT PRIMARY KEY REFERENCES stored_personas(id) ON DELETE CASCADE,
            document_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            character_name TEXT NOT NULL,
            upto_chapter INTEGER,
            created_at TEXT NOT NULL
        )
        """,
    )


@postgres_migrations()
def p002_short_gin_pending_list(db: PostgresDatabase) -> None:
    """GIN keeps new entries in a pending list that every search reads through until
    (auto)vacuum merges it: 256 kB instead of 4 MB bounds that read (a book's passages
    arrive thousands at a time), as FTS5's automerge bounds its segments."""
    run_statements(db, "ALTER INDEX document_passages_search_body SET (gin_pending_list_limit = 256)")
