"""Inbox: inputs waiting for a turn and the update journal, on both backends: a real SQLite file and a real PostgreSQL database."""

import threading

import pytest

from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from memory.store import Store


@pytest.fixture
def store(backend_store):
    return backend_store


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


def _second_process_store(store):
    """Another Store on the same database, as a second worker process would open it."""
    return open_store(store.path) if isinstance(store, Store) else open_postgres_store(store.url)


def test_two_workers_accepting_at_once_move_each_input_once(store):
    user = store.directory.ensure_user("local", "h")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    for text in ("one", "two", "three"):
        store.inbox.enqueue_input(conversation.id, text, user_id=user.id)
    other = _second_process_store(store)
    try:
        other_accepted = []
        with store.transaction():
            first_accepted = store.inbox.accept_inputs(conversation.id)
            # The other worker accepts while the first's transaction is still open: it waits
            # for it to end and then finds nothing left to take.
            rival = threading.Thread(target=lambda: other_accepted.extend(other.inbox.accept_inputs(conversation.id)))
            rival.start()
            rival.join(timeout=0.5)
            assert rival.is_alive()
        rival.join(timeout=30)
        assert not rival.is_alive()
    finally:
        other.close()
    assert [m.content for m in first_accepted] == ["one", "two", "three"] and other_accepted == []
    assert [m.content for m in store.conversations.messages(conversation.id)] == ["one", "two", "three"]


def test_update_journal_deduplicates_and_prunes(store):
    assert store.inbox.journal_update("tg", 100, '{"update_id": 100}', chat_key="1", user_external_id=5)
    assert not store.inbox.journal_update("tg", 100, '{"update_id": 100}')
    assert [e.update_id for e in store.inbox.unfinished_updates("tg")] == [100]
    store.inbox.finish_update("tg", 100)
    assert store.inbox.unfinished_updates("tg") == []
    assert store.db.execute("SELECT payload FROM updates").fetchone()[0] == ""
    assert store.inbox.prune_updates("9999") == 1
    assert store.inbox.journal_update("tg", 100, "{}")  # an id reused after pruning is new again


def test_after_a_crash_waiting_inputs_join_the_history_and_unanswered_turns_fail(store):
    user = store.directory.ensure_user("local", "h")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    unanswered = store.conversations.add_message(conversation.id, "user", "hello?", status="pending")
    store.inbox.enqueue_input(conversation.id, "are you there?", user_id=user.id)
    assert store.inbox.mark_pending_failed() == 2
    assert [(m.content, m.status) for m in store.conversations.messages(conversation.id)] == [
        ("hello?", "failed"), ("are you there?", "failed")]
    assert store.inbox.pending_inputs() == [] and store.conversations.message(unanswered.id).status == "failed"
