"""The long-term memory tables on a blank database, applied after the core set."""

import sqlite3

from memory import memory_migrations
from memory.schema import migration_sets, open_store

EXPECTED_COLUMNS = {
    "summary_segments": ["id", "conversation_id", "level", "first_message_id", "last_message_id", "first_at",
                         "last_at", "content", "tokens", "created_at", "folded_into"],
    "facts": ["id", "user_id", "group_key", "persona_id", "text", "topic", "source_ids", "said_at", "origin",
              "status", "replaces", "replaced_by", "created_at", "updated_at"],
    "memory_state": ["conversation_id", "block", "block_tokens", "source_ids", "fact_ids", "stale", "facts_cursor",
                     "updated_at"],
    "message_embeddings": ["id", "message_id", "model", "vector"],
}


def test_blank_database_gets_the_memory_schema(db_path):
    open_store(db_path).close()
    db = sqlite3.connect(db_path)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [row[1] for row in db.execute(f"PRAGMA table_info({table})")] == columns, table
    assert db.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts_terms'").fetchone()[0].startswith(
        "CREATE VIRTUAL TABLE messages_fts_terms USING fts5vocab")
    applied = [row[0] for row in db.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'companion.memory' ORDER BY id")]
    assert applied == [m.name for m in memory_migrations.migrations._migrations]
    assert memory_migrations.migrations in migration_sets()


def test_deleting_a_conversation_deletes_what_was_derived_from_it(store):
    from memory.schema import open_store
    from memory.records import Owner

    user = store.directory.ensure_user("local", "a")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    message = store.conversations.add_message(conversation.id, "user", "hi")
    store.db.execute("INSERT INTO summary_segments (conversation_id, level, first_message_id, last_message_id, "
                     "first_at, last_at, content, tokens, created_at) VALUES (?, 1, ?, ?, '', '', 's', 1, '')",
                     [conversation.id, message.id, message.id])
    store.db.execute("INSERT INTO message_embeddings (message_id, model, vector) VALUES (?, 'm', ?)", [message.id, b"\x00"])
    store.db.execute("DELETE FROM conversations WHERE id = ?", [conversation.id])
    assert store.db.execute("SELECT count(*) FROM summary_segments").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM message_embeddings").fetchone()[0] == 0
