"""Storage: real rows in a real SQLite file, surviving a restart."""

import sqlite3
import threading
import time
from datetime import datetime, timezone

import pytest

from memory.schema import open_store
from memory.records import Owner
from memory.tokens import count_tokens


def test_user_is_created_once_and_refreshed(store):
    alice = store.directory.ensure_user("tg", 42, display_name="Alice", language="en")
    again = store.directory.ensure_user("tg", "42", display_name="Alice B.")
    assert again.id == alice.id
    assert again.display_name == "Alice B."
    assert again.language == "en"
    assert store.directory.find_user("tg", 43) is None
    assert store.directory.ensure_user("local", "42").id != alice.id  # platforms do not mix


def test_message_stored_with_token_count_and_utc_time(store):
    user = store.directory.ensure_user("local", "bob")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    text = "你好，孙悟空！Hello there."
    message = store.conversations.add_message(conversation.id, "user", text, user_id=user.id, status="pending")
    assert message.tokens == count_tokens(text)
    row = store.db.execute("SELECT content, tokens, created_at, status FROM messages").fetchone()
    assert row[0] == text and row[1] == count_tokens(text) and row[3] == "pending"
    assert datetime.fromisoformat(row[2]).utcoffset().total_seconds() == 0


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


def test_new_conversation_keeps_the_old_one(store):
    owner = Owner.user(store.directory.ensure_user("local", "dan").id)
    first = store.conversations.start_conversation(owner, "assistant")
    store.conversations.add_message(first.id, "user", "remember me")
    second = store.conversations.start_conversation(owner, "assistant")
    assert store.conversations.active_conversation(owner, "assistant").id == second.id
    assert [c.id for c in store.conversations.conversations_of(owner)] == [second.id, first.id]
    assert store.conversations.messages(first.id)[0].content == "remember me"
    store.conversations.resume_conversation(first.id)
    assert store.conversations.active_conversation(owner, "assistant").id == first.id


def test_personas_and_groups_have_separate_conversations(store):
    user = Owner.user(store.directory.ensure_user("local", "eve").id)
    a = store.conversations.start_conversation(user, "assistant")
    b = store.conversations.start_conversation(user, "other")
    group = store.conversations.start_conversation(Owner.group("tg:-100:7"), "assistant")
    assert len({a.id, b.id, group.id}) == 3
    assert store.conversations.active_conversation(user, "assistant").id == a.id
    assert store.conversations.active_conversation(Owner.group("tg:-100:7"), "assistant").id == group.id
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("INSERT INTO conversations (persona_id, created_at, updated_at) VALUES ('x', '', '')")


def test_boundary_only_moves_forward(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "f").id), "assistant")
    store.conversations.set_boundary(conversation.id, 20)
    store.conversations.set_boundary(conversation.id, 5)
    assert store.conversations.conversation(conversation.id).boundary_message_id == 20


def test_history_since_skips_hidden_and_earlier(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "g").id), "assistant")
    ids = [store.conversations.add_message(conversation.id, "user", f"m{i}").id for i in range(6)]
    store.conversations.set_status(ids[4], "hidden")
    history = store.conversations.history_since(conversation.id, ids[2])
    assert [row.content for row in history] == ["m2", "m3", "m5"]
    assert store.conversations.count_messages(conversation.id) == 6


def test_search_finds_chinese_names_and_english_within_owner_only(store):
    alice = Owner.user(store.directory.ensure_user("local", "alice").id)
    bob = Owner.user(store.directory.ensure_user("local", "bob").id)
    ca = store.conversations.start_conversation(alice, "assistant")
    cb = store.conversations.start_conversation(bob, "assistant")
    store.conversations.add_message(ca.id, "user", "我最喜欢的角色是孙悟空，因为他很勇敢")
    store.conversations.add_message(ca.id, "user", "My sister Margaret lives in Lisbon")
    store.conversations.add_message(cb.id, "user", "悟空 is bob's favourite too")
    assert [m.content[:6] for m in store.conversations.search_messages(alice, "悟空")] == ["我最喜欢的角"]
    assert store.conversations.search_messages(alice, "margaret lisbon")[0].content.startswith("My sister")
    assert store.conversations.search_messages(alice, "八戒") == []
    assert len(store.conversations.search_messages(bob, "悟空")) == 1


def test_inbox_moves_inputs_into_history_in_order(store):
    user = store.directory.ensure_user("local", "h")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    store.inbox.enqueue_input(conversation.id, "first", user_id=user.id, platform_message_id=11)
    store.inbox.enqueue_input(conversation.id, "second", user_id=user.id)
    accepted = store.inbox.accept_inputs(conversation.id)
    assert [(m.content, m.status, m.platform_message_id) for m in accepted] == [
        ("first", "pending", "11"), ("second", "pending", None)]
    assert store.inbox.pending_inputs() == []
    assert store.inbox.accept_inputs(conversation.id) == []


def test_usage_and_calibration_rows(store):
    store.usage.record_usage(conversation_id=None, user_id=None, model="m", outcome="complete",
                       prompt_tokens=100, cached_tokens=80, completion_tokens=20)
    assert store.usage.usage_totals() == {"requests": 1, "prompt_tokens": 100, "cached_tokens": 80,
                                    "completion_tokens": 20}
    store.usage.save_calibration("m", 1.1)
    store.usage.save_calibration("m", 1.2)
    assert store.usage.calibration_ratios() == {"m": 1.2}
    assert store.db.execute("SELECT samples FROM calibration").fetchone()[0] == 2


def test_injected_clock_sets_timestamps(db_path):
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store = open_store(db_path, clock=lambda: moment)
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "i").id), "assistant")
    assert store.conversations.add_message(conversation.id, "user", "x").created_at == "2026-01-02T03:04:05.000+00:00"
    store.close()


def test_update_journal_deduplicates_and_prunes(store):
    assert store.inbox.journal_update("tg", 100, '{"update_id": 100}', chat_key="1", user_external_id=5)
    assert not store.inbox.journal_update("tg", 100, '{"update_id": 100}')
    assert [e.update_id for e in store.inbox.unfinished_updates("tg")] == [100]
    store.inbox.finish_update("tg", 100)
    assert store.inbox.unfinished_updates("tg") == []
    assert store.db.execute("SELECT payload FROM updates").fetchone()[0] == ""
    assert store.inbox.prune_updates("9999") == 1
    assert store.inbox.journal_update("tg", 100, "{}")  # an id reused after pruning is new again


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


def test_forget_user_takes_the_replies_to_them_in_groups(store):
    alice = store.directory.ensure_user("tg", 1, display_name="Alice")
    bob = store.directory.ensure_user("tg", 2, display_name="Bob")
    group = store.conversations.start_conversation(Owner.group("tg:-100"), "assistant")
    asked = store.conversations.add_message(group.id, "user", "Alice: my secret is ZQXJ", user_id=alice.id)
    store.conversations.add_message(group.id, "assistant", "Your secret ZQXJ is safe.", reply_to=asked.id)
    store.conversations.add_message(group.id, "assistant", "ZQXJ, noted (an alternative).", reply_to=asked.id, status="hidden")
    bobs = store.conversations.add_message(group.id, "user", "Bob: hello", user_id=bob.id)
    store.conversations.add_message(group.id, "assistant", "Hello Bob.", reply_to=bobs.id)
    store.conversations.add_message(group.id, "assistant", "Good morning, everyone.")  # a reply to nobody in particular

    store.forget_user(alice.id)
    assert [m.content for m in store.conversations.messages(group.id, include_hidden=True)] == [
        "Bob: hello", "Hello Bob.", "Good morning, everyone."]
    assert store.conversations.search_messages(Owner.group("tg:-100"), "ZQXJ") == []


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
