"""Conversations: conversations, messages and their full-text index, on both backends: a real SQLite file and a real PostgreSQL database."""

import sqlite3
from datetime import datetime

import psycopg
import pytest

from memory.recall_index import recall_index
from memory.records import Owner
from memory.tokens import count_tokens


@pytest.fixture
def store(backend_store):
    return backend_store


def test_message_stored_with_token_count_and_utc_time(store):
    user = store.directory.ensure_user("local", "bob")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    text = "你好，孙悟空！Hello there."
    message = store.conversations.add_message(conversation.id, "user", text, user_id=user.id, status="pending")
    assert message.tokens == count_tokens(text)
    row = store.db.execute("SELECT content, tokens, created_at, status FROM messages").fetchone()
    assert row[0] == text and row[1] == count_tokens(text) and row[3] == "pending"
    assert datetime.fromisoformat(row[2]).utcoffset().total_seconds() == 0


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
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):  # the owner CHECK, on each backend
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


def test_the_index_splits_and_folds_words_as_the_query_does(store):
    """On both backends: diacritics folded, words split at dots and underscores (FTS5's
    unicode61 does it; PostgreSQL's parser would keep "example.com" whole)."""
    owner = Owner.user(store.directory.ensure_user("local", "z").id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    store.conversations.add_message(conversation.id, "user", "Zürich trip booked on example.com, see snake_case notes")
    for query in ("zurich", "ZÜRICH", "example", "case", "snake case"):
        assert len(store.conversations.search_messages(owner, query)) == 1, query
    index = recall_index(store)
    assert index.documents_with("zurich") == 1 and index.terms_between("exa", "exb") == [("example", 1)]


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
    assert recall_index(store).terms_between("zqxj", "zqxk") == []  # not even in the index's vocabulary
    assert recall_index(store).terms_between("bob", "boc") == [("bob", 2)]


def test_reindex_rebuilds_the_index_from_the_messages(store):
    owner = Owner.user(store.directory.ensure_user("local", "rita").id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    for text in ("孙悟空大闹天宫", "Zürich is lovely", "nothing here"):
        store.conversations.add_message(conversation.id, "user", text)
    before = {q: [m.id for m in store.conversations.search_messages(owner, q)] for q in ("悟空", "Zürich", "here")}
    assert all(before.values())
    assert store.conversations.reindex(batch=2) == 3  # batches of two: the last one short
    assert {q: [m.id for m in store.conversations.search_messages(owner, q)] for q in before} == before
    assert store.conversations.reindex() == 3  # again: cleared first, no duplicates
    assert {q: [m.id for m in store.conversations.search_messages(owner, q)] for q in before} == before
    assert recall_index(store).terms_between("zurich", "zurici") == [("zurich", 1)]  # recall's vocabulary too
