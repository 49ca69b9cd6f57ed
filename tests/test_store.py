"""The Store: a real SQLite file that survives a restart, the schema applied on open,
the injected clock, the whole forget, and transactions across connections."""

import threading
import time
from datetime import datetime, timezone

from memory.schema import open_store
from memory.records import Owner


def test_everything_survives_a_restart(db_path):
    store = open_store(db_path)
    user = store.directory.ensure_user("local", "carol")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    for i in range(50):
        store.conversations.add_message(conversation.id, "user" if i % 2 == 0 else "assistant", f"turn {i}")
    store.conversations.set_boundary(conversation.id, 10)
    store.close()

    reopened = open_store(db_path)
    assert [m.content for m in reopened.conversations.messages(conversation.id)] == [f"turn {i}" for i in range(50)]
    assert reopened.conversations.conversation(conversation.id).boundary_message_id == 10
    assert reopened.conversations.active_conversation(Owner.user(user.id), "assistant").id == conversation.id
    reopened.close()


def test_injected_clock_sets_timestamps(db_path):
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store = open_store(db_path, clock=lambda: moment)
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "i").id), "assistant")
    assert store.conversations.add_message(conversation.id, "user", "x").created_at == "2026-01-02T03:04:05.000+00:00"
    store.close()


def test_forget_user_leaves_no_row_and_no_bytes(db_path):
    store = open_store(db_path)
    marker = "ZQXJ-forget-me-7781"
    alice = store.directory.ensure_user("tg", 1, display_name="Alice")
    bob = store.directory.ensure_user("tg", 2, display_name="Bob")
    private = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    store.conversations.add_message(private.id, "user", f"my secret {marker} 秘密")
    store.conversations.add_message(private.id, "assistant", f"I keep {marker}")
    group = store.conversations.start_conversation(Owner.group("tg:-100"), "assistant")
    store.conversations.add_message(group.id, "user", f"Alice: {marker} in a group", user_id=alice.id)
    store.conversations.add_message(group.id, "user", "Bob: hello", user_id=bob.id)
    store.usage.record_usage(conversation_id=private.id, user_id=alice.id, model="m", outcome="complete")
    store.inbox.journal_update("tg", 7, f'{{"text": "{marker}"}}', user_external_id=1)
    store.inbox.enqueue_input(private.id, marker, user_id=alice.id)

    store.forget_user(alice.id)
    for table in ("users", "conversations", "messages", "usage", "inbox", "updates"):
        rows = store.db.execute(f"SELECT * FROM {table}").fetchall()
        assert not any(marker in str(row) or "Alice" in str(row) for row in rows), table
    assert store.conversations.search_messages(Owner.group("tg:-100"), marker) == []
    assert [m.content for m in store.conversations.messages(group.id)] == ["Bob: hello"]
    store.close()
    for path in db_path.parent.iterdir():
        if path.name.startswith(db_path.name):
            assert marker.encode() not in path.read_bytes(), path.name


def test_a_transaction_that_reads_first_waits_for_another_connections_write(db_path):
    # A deferred transaction would read, see another connection commit, and then fail to
    # write with "database is locked" at once (no busy wait helps a stale snapshot).
    mine, other = open_store(db_path), open_store(db_path)
    reading = threading.Event()
    writer = threading.Thread(target=lambda: (reading.wait(), other.directory.ensure_user("tg", 2)))
    writer.start()
    with mine.db.atomic():
        assert mine.db.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        reading.set()
        time.sleep(0.3)  # the other connection tries to write meanwhile
        mine.directory.ensure_user("tg", 1)
    writer.join(10)
    assert sorted(row[0] for row in mine.db.execute("SELECT external_id FROM users")) == ["1", "2"]
    mine.close()
    other.close()


def test_a_write_outside_a_transaction_does_not_keep_the_write_lock(db_path):
    # The reading store and other processes open their own connections: a statement run
    # outside `transaction()` must commit at once, not open an implicit transaction that
    # holds the lock until some later commit (the Mini App's document upload waited on it).
    import sqlite3

    from memory.compaction import Segment, SummaryStore

    store = open_store(db_path)
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("tg", 1).id),
                                                          "assistant")
    said = store.conversations.add_message(conversation.id, "user", "hello")
    SummaryStore(store).save(conversation.id, Segment(None, 0, said.id, said.id, said.created_at,
                                                      said.created_at, "A greeting.", 3))
    store.db.execute("UPDATE conversations SET title = 'greetings' WHERE id = ?", [conversation.id])
    assert not store.db.conn.in_transaction
    other = sqlite3.connect(db_path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the Store still held it
    assert other.execute("SELECT title FROM conversations").fetchone() == ("greetings",)
    other.rollback()
    other.close()
    store.close()
