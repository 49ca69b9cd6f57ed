"""A blank database gets exactly the expected schema; migrations run once."""

import sqlite3

from memory.migrations import migrations
from memory.schema import migration_sets, open_store

EXPECTED_COLUMNS = {
    "users": ["id", "platform", "external_id", "display_name", "language", "timezone", "created_at",
              "persona_id", "language_override", "me_name", "me_description", "status", "allowed",
              "refused_at"],
    "groups": ["group_key", "title", "persona_id", "created_at"],
    "updates": ["platform", "update_id", "chat_key", "user_external_id", "payload", "received_at", "done_at"],
    "conversations": ["id", "user_id", "group_key", "persona_id", "title", "created_at", "updated_at",
                      "active", "boundary_message_id"],
    "messages": ["id", "conversation_id", "role", "user_id", "speaker_name", "content", "tokens",
                 "created_at", "platform_message_id", "status", "reply_to"],
    "usage": ["id", "conversation_id", "user_id", "message_id", "model", "prompt_tokens", "cached_tokens",
              "completion_tokens", "estimated_prompt_tokens", "first_token_ms", "latency_ms", "outcome",
              "created_at", "usage_estimated"],
    "calibration": ["model", "ratio", "samples", "updated_at"],
    "inbox": ["id", "conversation_id", "user_id", "speaker_name", "content", "platform_message_id",
              "created_at"],
}


def test_blank_database_gets_expected_schema(db_path):
    open_store(db_path).close()
    db = sqlite3.connect(db_path)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [row[1] for row in db.execute(f"PRAGMA table_info({table})")] == columns, table
    assert db.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()[0].startswith(
        "CREATE VIRTUAL TABLE messages_fts USING fts5")
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_by_conversation", "conversations_by_user", "inbox_by_conversation"} <= indexes
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [row[0] for row in db.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'companion' ORDER BY id")]
    assert applied == [m.name for m in migrations._migrations]


def test_reopening_applies_nothing_twice(db_path):
    open_store(db_path).close()
    open_store(db_path).close()
    db = sqlite3.connect(db_path)
    expected = sum(len(s._migrations) for s in migration_sets())
    assert db.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == expected


def test_migration_names_are_unique_and_ordered():
    assert migration_sets()[0] is migrations
    assert len({s.name for s in migration_sets()}) == len(migration_sets())
    for migration_set in migration_sets():
        names = [m.name for m in migration_set._migrations]
        assert len(names) == len(set(names))
        assert names == sorted(names), "migrations are named mNNN_… and appended in order"
