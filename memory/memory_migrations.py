"""Schema of long-term memory: summary segments, pinned facts, the rendered memory
section, message embeddings, and a term-frequency view of the full-text index.

Everything here is derived from the messages (plus the user's own fact edits) and can
be rebuilt; the messages themselves stay in the core set. Rules as in
`memory.migrations`: a shipped migration is never edited, new ones are appended.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.postgres import PostgresDatabase, PostgresMigrations, run_statements

from memory.migrations import run_sql

migrations = Migrations("companion.memory")


@migrations()
def m001_summaries_facts_embeddings(db: Database) -> None:
    run_sql(
        db,
        """
        -- A summary written by the model of the visible messages first..last of one
        -- conversation. level 1 summarises messages; level n+1 folds level-n segments,
        -- which then point to it through folded_into. Active segments (folded_into IS
        -- NULL) cover disjoint ranges.
        CREATE TABLE summary_segments (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            level INTEGER NOT NULL,
            first_message_id INTEGER NOT NULL,
            last_message_id INTEGER NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            folded_into INTEGER REFERENCES summary_segments(id) ON DELETE SET NULL,
            CHECK (first_message_id <= last_message_id)
        );
        CREATE INDEX summary_segments_active ON summary_segments (conversation_id, folded_into, first_message_id);

        -- Durable facts about the user and the relationship, per owner and persona.
        -- status: active | replaced (by a newer fact, replaced_by) | deleted (by the
        -- user; kept so the model does not learn it again). origin: model | user.
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            group_key TEXT,
            persona_id TEXT NOT NULL,
            text TEXT NOT NULL,
            topic TEXT,
            source_ids TEXT NOT NULL DEFAULT '[]',
            said_at TEXT,
            origin TEXT NOT NULL CHECK (origin IN ('model', 'user')),
            status TEXT NOT NULL CHECK (status IN ('active', 'replaced', 'deleted')),
            replaces INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            replaced_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            CHECK ((user_id IS NULL) != (group_key IS NULL))
        );
        CREATE INDEX facts_by_user ON facts (user_id, persona_id, status);
        CREATE INDEX facts_by_group ON facts (group_key, persona_id, status);

        -- The conversation's `memory` section exactly as sent (so it is byte-identical
        -- between compactions), the facts it holds, whether a user's edit made it
        -- stale, and how far fact extraction has read.
        CREATE TABLE memory_state (
            conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
            block TEXT NOT NULL DEFAULT '',
            block_tokens INTEGER NOT NULL DEFAULT 0,
            source_ids TEXT NOT NULL DEFAULT '[]',
            fact_ids TEXT NOT NULL DEFAULT '[]',
            stale INTEGER NOT NULL DEFAULT 1,
            facts_cursor INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );

        -- One embedding per message and embedding model (float32, unit length), for
        -- hybrid recall. id grows with each insert, so a search index held in memory
        -- loads only the rows added since it last looked.
        CREATE TABLE message_embeddings (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            UNIQUE (message_id, model)
        );

        -- Document frequency of every term of the full-text index: recall leaves out
        -- terms too common to tell messages apart before it ranks.
        CREATE VIRTUAL TABLE messages_fts_terms USING fts5vocab(messages_fts, 'row');
        """
    )


# -- PostgreSQL ------------------------------------------------------------------------
# The same tables on PostgreSQL (memory/postgres.py). Recall's term counts (SQLite's
# fts5vocab table) have no PostgreSQL form yet: recall does not run on PostgreSQL.
postgres_migrations = PostgresMigrations("companion.memory")


@postgres_migrations()
def p001_summaries_facts_embeddings(db: PostgresDatabase) -> None:
    run_statements(
        db,
        """
        CREATE TABLE summary_segments (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            level INTEGER NOT NULL,
            first_message_id BIGINT NOT NULL,
            last_message_id BIGINT NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            folded_into BIGINT REFERENCES summary_segments(id) ON DELETE SET NULL,
            CHECK (first_message_id <= last_message_id)
        );
        CREATE INDEX summary_segments_active ON summary_segments (conversation_id, folded_into, first_message_id);
        CREATE TABLE facts (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            group_key TEXT,
            persona_id TEXT NOT NULL,
            text TEXT NOT NULL,
            topic TEXT,
            source_ids TEXT NOT NULL DEFAULT '[]',
            said_at TEXT,
            origin TEXT NOT NULL CHECK (origin IN ('model', 'user')),
            status TEXT NOT NULL CHECK (status IN ('active', 'replaced', 'deleted')),
            replaces BIGINT REFERENCES facts(id) ON DELETE SET NULL,
            replaced_by BIGINT REFERENCES facts(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            CHECK ((user_id IS NULL) != (group_key IS NULL))
        );
        CREATE INDEX facts_by_user ON facts (user_id, persona_id, status);
        CREATE INDEX facts_by_group ON facts (group_key, persona_id, status);
        CREATE TABLE memory_state (
            conversation_id BIGINT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
            block TEXT NOT NULL DEFAULT '',
            block_tokens INTEGER NOT NULL DEFAULT 0,
            source_ids TEXT NOT NULL DEFAULT '[]',
            fact_ids TEXT NOT NULL DEFAULT '[]',
            stale INTEGER NOT NULL DEFAULT 1,
            facts_cursor BIGINT NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE message_embeddings (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BYTEA NOT NULL,
            UNIQUE (message_id, model)
        )
        """,
    )
