"""The companion-life tables: created on a blank database, erased with their user."""

import sqlite3
from datetime import timedelta

from memory import life_schema
from memory.checkins import Checkins
from memory.moderation import SafetyGate, WordList
from memory.schema import open_store
from memory.user_choices import UserChoices
from tests.conftest import make_engine

EXPECTED_COLUMNS = {
    "user_choices": ["user_id", "model", "voice_replies", "age_confirmed_at", "updated_at"],
    "checkin_plans": ["user_id", "enabled", "every_minutes", "quiet_start", "quiet_end", "enabled_at", "due_at",
                      "updated_at"],
    "checkins": ["id", "user_id", "due_at", "claimed_at", "status", "conversation_id", "message_id", "finished_at"],
    "moderation_events": ["id", "user_id", "conversation_id", "message_id", "direction", "action", "checker",
                          "categories", "excerpt", "created_at"],
}


def test_blank_database_gets_the_life_tables(db_path):
    open_store(db_path).close()
    db = sqlite3.connect(db_path)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [row[1] for row in db.execute(f"PRAGMA table_info({table})")] == columns, table
    applied = [row[0] for row in db.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'companion.life' ORDER BY id")]
    assert applied == [m.name for m in life_schema.migrations._migrations]


async def test_forgetting_a_user_erases_every_life_row(store, fake_openai):
    store.set_forget_cascade([life_schema.forget_step(store)])
    engine = make_engine(store, fake_openai)
    alice, bob = store.directory.ensure_user("tg", 1), store.directory.ensure_user("tg", 2)
    for user in (alice, bob):
        UserChoices(store).set_model(user.id, "m")
        Checkins(engine).switch_on(user, timedelta(hours=6))
        await SafetyGate(store, [WordList(["x"])]).screen_input("x", user_id=user.id, conversation_id=None)
    store.db.execute("INSERT INTO checkins (user_id, due_at, claimed_at, status) VALUES (?, 'a', 'b', 'sent')",
                     [alice.id])
    store.forget_user(alice.id)
    for table in life_schema.LIFE_TABLES:
        owners = {row[0] for row in store.db.execute(f"SELECT user_id FROM {table}")}
        assert alice.id not in owners, table
    assert {row[0] for row in store.db.execute("SELECT user_id FROM user_choices")} == {bob.id}
    await engine.close()
