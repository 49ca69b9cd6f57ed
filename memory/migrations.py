"""The database schema, as sequences of small named migrations.

Rules (see simonw/llm and sqlite-utils `Migrations`): a migration that has shipped is
never edited, renamed or reordered; changes come as new functions appended to their set.
Each runs in its own transaction together with the record that it ran, so a failed
migration leaves the database as it was.

The core set lives here. A feature area with tables of its own (documents, long-term
memory…) keeps its own set in its own module and is listed in
`memory.schema.migration_sets()`, which the composition root hands to the Store; the
core set always comes first.

Plain SQL is used where the schema needs what sqlite-utils' `create()` cannot say
(CHECK constraints, ON DELETE CASCADE, FTS5 options).
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.postgres import PostgresDatabase, PostgresMigrations, run_statements
from memory.textsearch import index_form, tsvector_text

migrations = Migrations("companion")


def run_sql(db: Database, script: str) -> None:
    """Run several statements inside the migration's transaction.

    (`executescript` would commit first, splitting the migration from its record.)
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not statement.strip():
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement.strip()[:80]}")


@migrations()
def m001_users_conversations_messages(db: Database) -> None:
    run_sql(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            external_id TEXT NOT NULL,
            display_name TEXT,
            language TEXT,
            timezone TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (platform, external_id)
        );

        -- A conversation belongs to one user (private chat, terminal) or to one group
        -- chat or forum topic (group_key), and to one persona.
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            group_key TEXT,
            persona_id TEXT NOT NULL,
            title TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            -- Messages with id >= boundary_message_id are sent verbatim; the boundary only
            -- moves forward, in large steps, so the prompt prefix stays cacheable.
            boundary_message_id INTEGER NOT NULL DEFAULT 0,
            CHECK ((user_id IS NULL) != (group_key IS NULL))
        );
        CREATE INDEX conversations_by_user ON conversations (user_id, persona_id, active);
        CREATE INDEX conversations_by_group ON conversations (group_key, persona_id, active);

        -- content is exactly what the model gets in the history; tokens is counted once,
        -- at insert. status: pending (user message awaiting its reply), complete,
        -- interrupted (partial reply), failed (user message whose reply failed), hidden
        -- (kept, but out of the context: undo, replaced alternatives).
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            speaker_name TEXT,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            platform_message_id TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'complete', 'interrupted', 'failed', 'hidden')),
            reply_to INTEGER REFERENCES messages(id) ON DELETE SET NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
        CREATE INDEX messages_by_user ON messages (user_id);

        -- Full-text index of messages.content in textsearch.index_form (CJK as bigrams);
        -- rowid = messages.id, written by the Store in the same transaction as the message.
        CREATE VIRTUAL TABLE messages_fts USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2');

        -- One row per model request.
        CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER REFERENCES conversations(id) ON DELETE CASCADE,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            estimated_prompt_tokens INTEGER NOT NULL DEFAULT 0,
            first_token_ms INTEGER,
            latency_ms INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX usage_by_user ON usage (user_id, created_at);

        -- Provider tokens per o200k token, learnt per model from reported usage.
        CREATE TABLE calibration (
            model TEXT PRIMARY KEY,
            ratio REAL NOT NULL,
            samples INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- Messages accepted from a transport but not yet taken into a turn (the
        -- conversation was busy). Kept durable so a crash cannot lose them.
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            speaker_name TEXT,
            content TEXT NOT NULL,
            platform_message_id TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX inbox_by_conversation ON inbox (conversation_id, id);
        """
    )


@migrations()
def m002_user_preferences_groups_and_update_journal(db: Database) -> None:
    run_sql(
        db,
        """
        -- What a user chose: their persona in private chats, a language override (/lang),
        -- who they are for the character (/me), whether they blocked the bot, and
        -- access granted or refused by the bot's operator.
        ALTER TABLE users ADD COLUMN persona_id TEXT;
        ALTER TABLE users ADD COLUMN language_override TEXT;
        ALTER TABLE users ADD COLUMN me_name TEXT;
        ALTER TABLE users ADD COLUMN me_description TEXT;
        ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
        ALTER TABLE users ADD COLUMN allowed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN refused_at TEXT;

        -- A group chat or forum topic, and the persona it talks to.
        CREATE TABLE groups (
            group_key TEXT PRIMARY KEY,
            title TEXT,
            persona_id TEXT,
            created_at TEXT NOT NULL
        );

        -- Every update received from a transport, kept until handled: an update delivered
        -- twice is processed once, and one a crash interrupted is handled after restart.
        -- Pruned by age, so the memory of seen ids stays bounded.
        CREATE TABLE updates (
            platform TEXT NOT NULL,
            update_id INTEGER NOT NULL,
            chat_key TEXT,
            user_external_id TEXT,
            payload TEXT NOT NULL,
            received_at TEXT NOT NULL,
            done_at TEXT,
            PRIMARY KEY (platform, update_id)
        );
        CREATE INDEX updates_unfinished ON updates (platform, done_at);
        """,
    )


@migrations()
def m003_usage_estimated(db: Database) -> None:
    run_sql(
        db,
        """
        -- 1: the server reported no usage (llama-cpp-python streams none); the row holds our
        -- own count of the request instead, and the calibration never learns from it.
        ALTER TABLE usage ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
        """,
    )


@migrations()
def m004_turn_leases_and_pending_messages(db: Database) -> None:
    run_sql(
        db,
        """
        -- Which process runs a turn of the conversation now (memory/turn_leases.py):
        -- `holder` names the process (host/pid/random), `expires_at` is wall-clock seconds; renewed
        -- while the turn runs, deleted when it ends. PostgreSQL uses advisory locks instead
        -- (its p003 makes the same table, which stays empty).
        CREATE TABLE turn_leases (
            conversation_id INTEGER PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        -- The messages a turn has not answered yet: each turn looks for those a stopped
        -- turn left (memory/engine.py), without reading the whole conversation.
        CREATE INDEX messages_pending ON messages (conversation_id, id) WHERE status = 'pending';
        """,
    )



# -- PostgreSQL ------------------------------------------------------------------------
# The same core tables on PostgreSQL (memory/postgres.py): identity ids (BY DEFAULT, so
# `migrate-db` can copy ids as they are), integers for flags and text timestamps as in
# SQLite, so every query of the core storage classes is the same on both; the messages'
# full-text index is a tsvector table with a GIN index instead of FTS5.
postgres_migrations = PostgresMigrations("companion")


@postgres_migrations()
def p001_core_tables(db: PostgresDatabase) -> None:
    run_statements(
        db,
        """
        CREATE TABLE users (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            platform TEXT NOT NULL,
            external_id TEXT NOT NULL,
            display_name TEXT,
            language TEXT,
            timezone TEXT,
            created_at TEXT NOT NULL,
            persona_id TEXT,
            language_override TEXT,
            me_name TEXT,
            me_description TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            allowed INTEGER NOT NULL DEFAULT 0,
            refused_at TEXT,
            UNIQUE (platform, external_id)
        );
        CREATE TABLE conversations (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            group_key TEXT,
            persona_id TEXT NOT NULL,
            title TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            boundary_message_id BIGINT NOT NULL DEFAULT 0,
            CHECK ((user_id IS NULL) != (group_key IS NULL))
        );
        CREATE INDEX conversations_by_user ON conversations (user_id, persona_id, active);
        CREATE INDEX conversations_by_group ON conversations (group_key, persona_id, active);
        CREATE TABLE messages (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            speaker_name TEXT,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            platform_message_id TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'complete', 'interrupted', 'failed', 'hidden')),
            reply_to BIGINT REFERENCES messages(id) ON DELETE SET NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
        CREATE INDEX messages_by_user ON messages (user_id);
        CREATE INDEX messages_by_reply ON messages (reply_to);
        CREATE TABLE messages_search (
            message_id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            body TSVECTOR NOT NULL
        );
        CREATE INDEX messages_search_body ON messages_search USING GIN (body);
        CREATE TABLE usage (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            conversation_id BIGINT REFERENCES conversations(id) ON DELETE CASCADE,
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            message_id BIGINT REFERENCES messages(id) ON DELETE SET NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            estimated_prompt_tokens INTEGER NOT NULL DEFAULT 0,
            first_token_ms INTEGER,
            latency_ms INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            created_at TEXT NOT NULL,
            usage_estimated INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX usage_by_user ON usage (user_id, created_at);
        CREATE TABLE calibration (
            model TEXT PRIMARY KEY,
            ratio DOUBLE PRECISION NOT NULL,
            samples INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE inbox (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            speaker_name TEXT,
            content TEXT NOT NULL,
            platform_message_id TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX inbox_by_conversation ON inbox (conversation_id, id);
        CREATE TABLE groups (
            group_key TEXT PRIMARY KEY,
            title TEXT,
            persona_id TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE updates (
            platform TEXT NOT NULL,
            update_id BIGINT NOT NULL,
            chat_key TEXT,
            user_external_id TEXT,
            payload TEXT NOT NULL,
            received_at TEXT NOT NULL,
            done_at TEXT,
            PRIMARY KEY (platform, update_id)
        );
        CREATE INDEX updates_unfinished ON updates (platform, done_at)
        """,
    )


@postgres_migrations()
def p002_message_words_as_fts5_splits_them(db: PostgresDatabase) -> None:
    """Messages indexed with their words split and folded as FTS5 does it (`tsvector_text`),
    and the list of the index's words (recall's `fts5vocab` on SQLite), byte-ordered so a
    range of words is the same range on both; `PostgresMessageIndex` keeps it up. A short
    pending list for the GIN index."""
    run_statements(db, 'CREATE TABLE messages_search_words (word TEXT COLLATE "C" PRIMARY KEY);'
                       # GIN keeps new entries in a pending list that every search reads through
                       # until (auto)vacuum merges it: 256 kB instead of 4 MB bounds that read
                       # to a few hundred messages, as FTS5's automerge bounds its segments.
                       "ALTER INDEX messages_search_body SET (gin_pending_list_limit = 256)")
    last = 0
    while rows := db.execute("SELECT id, content FROM messages WHERE id > ? ORDER BY id LIMIT 1000",
                             [last]).fetchall():
        db.executemany("UPDATE messages_search SET body = to_tsvector('simple', ?) WHERE message_id = ?",
                       [(tsvector_text(index_form(content)), message_id) for message_id, content in rows])
        last = rows[-1][0]
    db.execute("INSERT INTO messages_search_words (word) SELECT word FROM ts_stat('SELECT body FROM messages_search')")


@postgres_migrations()
def p003_turn_leases_and_pending_messages(db: PostgresDatabase) -> None:
    """The same table as SQLite's m004, so both backends hold the same tables (`migrate-db`
    compares them). PostgreSQL's turn leases are advisory locks (memory/turn_leases.py):
    it stays empty here. And the same index of the messages no turn has answered yet."""
    run_statements(db, "CREATE TABLE turn_leases (conversation_id BIGINT PRIMARY KEY, holder TEXT NOT NULL, "
                       "expires_at DOUBLE PRECISION NOT NULL);"
                       "CREATE INDEX messages_pending ON messages (conversation_id, id) WHERE status = 'pending'")
