"""memory/postgres.py against a real PostgreSQL server: the connection that speaks like
SQLite's, migrations applied once however many processes open the database at once, the
whole forget, several writers on one conversation, and clear errors."""

import threading

import pytest

from memory.postgres import PostgresDatabase, PostgresUnavailable, _placeholders
from memory.records import Owner
from memory.schema import open_postgres_store


def test_placeholders_become_psycopgs_outside_literals():
    assert _placeholders("SELECT a FROM t WHERE b = ? AND c LIKE 'x%?' AND d = ?") == \
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%?' AND d = %s"
    assert _placeholders("SELECT 5 % 2") == "SELECT 5 %% 2"


def test_a_nested_transaction_is_a_savepoint(postgres_url):
    store = open_postgres_store(postgres_url)
    user = store.directory.ensure_user("tg", 1)
    with store.transaction():
        store.directory.update_user(user.id, me_name="kept")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.directory.update_user(user.id, me_name="rolled back")
                raise RuntimeError("inner")
    assert store.directory.user(user.id).me_name == "kept"
    store.close()


def test_migrations_apply_once_when_several_workers_open_the_database_at_once(postgres_url):
    stores, errors = [], []

    def open_one():
        try:
            stores.append(open_postgres_store(postgres_url))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(stores) == 4
    rows = stores[0].db.execute("SELECT migration_set, name FROM _companion_migrations "
                                "ORDER BY migration_set, name").fetchall()
    assert rows == [("companion", "p001_core_tables"), ("companion", "p002_message_words_as_fts5_splits_them"),
                    ("companion", "p003_turn_leases_and_pending_messages"),
                    ("companion.documents", "p001_documents_chapters_passages"),
                    ("companion.documents", "p002_short_gin_pending_list"),
                    ("companion.life", "p001_choices_checkins_moderation"),
                    ("companion.memory", "p001_summaries_facts_embeddings"),
                    ("companion.personas", "p001_stored_personas")]
    for store in stores:
        store.close()


def test_two_processes_writing_one_conversation_store_every_line_once(postgres_url):
    first, second = open_postgres_store(postgres_url), open_postgres_store(postgres_url)
    user = first.directory.ensure_user("local", "me")
    assert second.directory.ensure_user("local", "me").id == user.id  # seen by both: one row
    conversation = first.conversations.start_conversation(Owner.user(user.id), "assistant")

    def write(store, name):
        for i in range(50):
            store.conversations.add_message(conversation.id, "user", f"{name} line {i}", user_id=user.id)

    threads = [threading.Thread(target=write, args=(first, "a")), threading.Thread(target=write, args=(second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [m.content for m in first.conversations.messages(conversation.id)]
    assert sorted(lines) == sorted([f"a line {i}" for i in range(50)] + [f"b line {i}" for i in range(50)])
    assert [line for line in lines if line.startswith("a")] == [f"a line {i}" for i in range(50)]  # each in order
    assert len(second.conversations.search_messages(Owner.user(user.id), "line")) == 10
    first.close()
    second.close()


def test_forget_leaves_no_row_of_the_user(postgres_url):
    store = open_postgres_store(postgres_url)
    marker = "ZQXJ-forget-me-7781"
    alice = store.directory.ensure_user("tg", 1, display_name="Alice")
    bob = store.directory.ensure_user("tg", 2, display_name="Bob")
    private = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    store.conversations.add_message(private.id, "user", f"my secret {marker} 秘密")
    group = store.conversations.start_conversation(Owner.group("tg:-100"), "assistant")
    asked = store.conversations.add_message(group.id, "user", f"Alice: {marker}", user_id=alice.id)
    store.conversations.add_message(group.id, "assistant", f"Noted, {marker}.", reply_to=asked.id)
    store.conversations.add_message(group.id, "user", "Bob: hello", user_id=bob.id)
    store.usage.record_usage(conversation_id=private.id, user_id=alice.id, model="m", outcome="complete")
    store.inbox.journal_update("tg", 7, f'{{"text": "{marker}"}}', user_external_id=1)
    store.inbox.enqueue_input(private.id, marker, user_id=alice.id)

    store.forget_user(alice.id)
    for table in ("users", "conversations", "messages", "messages_search", "usage", "inbox", "updates"):
        rows = store.db.execute(f"SELECT * FROM {table}").fetchall()
        assert not any(marker.lower() in str(row).lower() or "Alice" in str(row) for row in rows), table
    assert [m.content for m in store.conversations.messages(group.id)] == ["Bob: hello"]
    assert store.conversations.search_messages(Owner.group("tg:-100"), "hello")[0].content == "Bob: hello"
    store.close()


def test_search_is_the_same_on_both_backends(postgres_url, db_path):
    from memory.schema import open_store

    lines = ["孙悟空大闹天宫", "唐僧收了悟空做徒弟", "八戒和沙僧挑着担", "Elizabeth walked to Netherfield",
             "Mr. Darcy was proud", "悟", "The café was closed"]
    queries = ["悟空", "孙悟空", "天宫 悟空", "悟", "elizabeth", "DARCY proud", "八戒 Darcy", "沙僧", "cafe", "!!"]
    found = {}
    for name, store in (("sqlite", open_store(db_path)), ("postgresql", open_postgres_store(postgres_url))):
        user = store.directory.ensure_user("tg", 1)
        conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
        for line in lines:
            store.conversations.add_message(conversation.id, "user", line)
        found[name] = {query: sorted(m.content for m in store.conversations.search_messages(
            Owner.user(user.id), query, require_all=query != "八戒 Darcy")) for query in queries}
        store.close()
    assert found["sqlite"] == found["postgresql"]
    assert found["postgresql"]["cafe"] == ["The café was closed"]  # diacritics folded on both
    assert found["postgresql"]["悟空"] == ["唐僧收了悟空做徒弟", "孙悟空大闹天宫"]
    assert found["postgresql"]["八戒 Darcy"] == ["Mr. Darcy was proud", "八戒和沙僧挑着担"]


def test_an_unreachable_server_is_one_clear_error():
    with pytest.raises(PostgresUnavailable, match="cannot connect to PostgreSQL"):
        PostgresDatabase("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_p002_indexes_stored_messages_again_and_lists_their_words(postgres_url):
    """A database from before p002 (bodies as PostgreSQL's parser saw them, no word list) is
    brought up to date on open: old messages are found as new ones are."""
    store = open_postgres_store(postgres_url)
    owner = Owner.user(store.directory.ensure_user("tg", 1).id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    store.conversations.add_message(conversation.id, "user", "Zürich, booked on example.com")
    store.db.execute("UPDATE messages_search s SET body = to_tsvector('simple', m.content) "
                     "FROM messages m WHERE m.id = s.message_id")
    store.db.execute("DROP TABLE messages_search_words")
    store.db.execute("DELETE FROM _companion_migrations WHERE name = 'p002_message_words_as_fts5_splits_them'")
    assert store.conversations.search_messages(owner, "zurich") == []  # as it was before
    store.close()

    store = open_postgres_store(postgres_url)
    assert [m.content for m in store.conversations.search_messages(owner, "zurich example")] == [
        "Zürich, booked on example.com"]
    assert store.db.execute("SELECT word FROM messages_search_words ORDER BY word").fetchall() == [
        ("booked",), ("com",), ("example",), ("on",), ("zurich",)]
    store.close()


def test_a_nul_in_text_is_stored_as_a_replacement_character(postgres_url):
    """PostgreSQL's text cannot hold NUL: a piped or imported line with one is stored, not lost."""
    store = open_postgres_store(postgres_url)
    owner = Owner.user(store.directory.ensure_user("tg", 1).id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    message = store.conversations.add_message(conversation.id, "user", "a\x00b")
    assert store.conversations.message(message.id).content == "a\ufffdb"
    store.close()
