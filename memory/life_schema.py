"""The tables of companion life: what each user chose (model, voice replies, age
confirmation), check-in plans and the ledger of check-ins, and moderation events.

Its own migration set (`companion.life`), applied after the core set. Every table is
keyed by the user and erased with them: `ON DELETE CASCADE` where SQLite enforces it,
and `forget_user` (a step of the forget cascade that the composition root hands the
Store), so that nothing depends on the order in which rows go.
"""

from __future__ import annotations

from typing import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.migrations import run_sql
from memory.postgres import PostgresDatabase, PostgresMigrations, run_statements
from memory.store import Store

migrations = Migrations("companion.life")

LIFE_TABLES = ("user_choices", "checkin_plans", "checkins", "moderation_events")


@migrations()
def m001_choices_checkins_moderation(db: Database) -> None:
    run_sql(
        db,
        """
        -- What a user chose: a model from the operator's list (/model; NULL: the default),
        -- voice replies (/voice), and when they confirmed their age (open bots).
        CREATE TABLE user_choices (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            model TEXT,
            voice_replies INTEGER NOT NULL DEFAULT 0,
            age_confirmed_at TEXT,
            updated_at TEXT NOT NULL
        );

        -- A user's consent to be written to first (/checkin). `due_at` is the earliest
        -- moment (UTC) the next check-in may go out; claiming a check-in moves it on in
        -- the same statement that checks it, so one due time gives at most one check-in.
        -- Quiet hours are minutes after local midnight, in the user's time zone.
        CREATE TABLE checkin_plans (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            enabled INTEGER NOT NULL,
            every_minutes INTEGER NOT NULL,
            quiet_start INTEGER NOT NULL,
            quiet_end INTEGER NOT NULL,
            enabled_at TEXT,
            due_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX checkin_plans_due ON checkin_plans (enabled, due_at);

        -- Every check-in claimed, and what became of it: claimed (being written and sent),
        -- sent, failed (the model or Telegram failed), abandoned (a restart found it
        -- unfinished: it is never sent late, nor twice).
        CREATE TABLE checkins (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            due_at TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            status TEXT NOT NULL,
            conversation_id INTEGER,
            message_id INTEGER,
            finished_at TEXT,
            UNIQUE (user_id, due_at)
        );
        CREATE INDEX checkins_by_user ON checkins (user_id, status, claimed_at);

        -- Messages the safety hook flagged, and what the operator's policy did about them.
        CREATE TABLE moderation_events (
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            conversation_id INTEGER,
            message_id INTEGER,
            direction TEXT NOT NULL,
            action TEXT NOT NULL,
            checker TEXT NOT NULL,
            categories TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX moderation_events_by_user ON moderation_events (user_id, id);
        """,
    )


def forget_step(store: Store) -> Callable[[int], None]:
    """The forget cascade's step for these tables, on this store's connection."""
    return lambda user_id: forget_user(store.db, user_id)


def forget_user(db: Database, user_id: int) -> None:
    for table in LIFE_TABLES:
        db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])


# -- PostgreSQL ------------------------------------------------------------------------
# The same tables on PostgreSQL (memory/postgres.py).
postgres_migrations = PostgresMigrations("companion.life")


@postgres_migrations()
def p001_choices_checkins_moderation(db: PostgresDatabase) -> None:
    run_statements(
        db,
        """
        CREATE TABLE user_choices (
            user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            model TEXT,
            voice_replies INTEGER NOT NULL DEFAULT 0,
            age_confirmed_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE checkin_plans (
            user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            enabled INTEGER NOT NULL,
            every_minutes INTEGER NOT NULL,
            quiet_start INTEGER NOT NULL,
            quiet_end INTEGER NOT NULL,
            enabled_at TEXT,
            due_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX checkin_plans_due ON checkin_plans (enabled, due_at);
        CREATE TABLE checkins (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            due_at TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            status TEXT NOT NULL,
            conversation_id BIGINT,
            message_id BIGINT,
            finished_at TEXT,
            UNIQUE (user_id, due_at)
        );
        CREATE INDEX checkins_by_user ON checkins (user_id, status, claimed_at);
        CREATE TABLE moderation_events (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            conversation_id BIGINT,
            message_id BIGINT,
            direction TEXT NOT NULL,
            action TEXT NOT NULL,
            checker TEXT NOT NULL,
            categories TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX moderation_events_by_user ON moderation_events (user_id, id)
        """,
    )
