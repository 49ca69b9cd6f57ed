"""Turn leases: one turn per conversation at a time across processes, on both backends.
Two Stores on one database stand in for two processes (as in tests/test_inbox.py)."""

import asyncio
import os
import subprocess
import time

import pytest

from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from memory.store import Store


@pytest.fixture
def store(backend_store):
    return backend_store


def other_process_store(store):
    """Another Store on the same database, as a second process would open it."""
    return open_store(store.path) if isinstance(store, Store) else open_postgres_store(store.url)


@pytest.fixture
def other(store):
    other = other_process_store(store)
    yield other
    other.close()


def conversation_of(store, name="h"):
    user = store.directory.ensure_user("local", name)
    return store.conversations.start_conversation(Owner.user(user.id), "assistant")


def test_a_lease_held_by_one_process_is_refused_to_another_until_released(store, other):
    first, second = conversation_of(store, "a"), conversation_of(store, "b")
    assert store.turns.try_take(first.id)
    assert not other.turns.try_take(first.id)
    assert other.turns.try_take(second.id)  # another conversation is free
    store.turns.release(first.id)
    assert other.turns.try_take(first.id)
    assert not store.turns.try_take(first.id)
    other.turns.release(first.id)
    other.turns.release(second.id)


def test_a_process_that_is_gone_leaves_its_leases_free_at_once(store):
    conversation = conversation_of(store)
    gone = other_process_store(store)
    if isinstance(store, Store):
        # a process of this machine that no longer runs took it (its lease has not expired)
        finished = subprocess.Popen(["true"])
        finished.wait()
        gone.turns.holder = f"{gone.turns.host}/{finished.pid}/killed"
        assert gone.turns.try_take(conversation.id)
    else:
        assert gone.turns.try_take(conversation.id)
        assert not store.turns.try_take(conversation.id)
    gone.close()  # PostgreSQL: the advisory lock goes with the connection (once the server has seen it close)
    deadline = time.monotonic() + 5
    while not store.turns.try_take(conversation.id):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    other = other_process_store(store)
    try:
        assert not other.turns.try_take(conversation.id)  # and the new holder's is kept
    finally:
        other.close()
    store.turns.release(conversation.id)


def test_an_expired_sqlite_lease_is_free_and_a_live_one_is_renewed_while_held(db_path):
    store, other = open_store(db_path), open_store(db_path)
    try:
        conversation = conversation_of(store)
        store.turns.lease_seconds = 0.3
        assert store.turns.try_take(conversation.id)  # taken, never renewed
        assert not other.turns.try_take(conversation.id)
        time.sleep(0.4)
        assert other.turns.try_take(conversation.id)
        other.turns.release(conversation.id)

        async def hold_for_a_while():
            async with store.turns.hold(conversation.id):
                for _ in range(8):  # almost three leases long: the heartbeat keeps it
                    await asyncio.sleep(0.1)
                    assert not other.turns.try_take(conversation.id)
            assert other.turns.try_take(conversation.id)

        asyncio.run(hold_for_a_while())
    finally:
        store.close()
        other.close()


async def test_hold_waits_for_the_other_process_without_blocking_the_loop(store, other):
    conversation = conversation_of(store)
    order = []
    second = other.turns.hold(conversation.id)
    async with store.turns.hold(conversation.id):
        waiting = asyncio.ensure_future(second.__aenter__())
        for _ in range(5):
            await asyncio.sleep(0.05)  # the loop runs while the other waits
        assert not waiting.done()
        order.append("first done")
    await asyncio.wait_for(waiting, 10)
    order.append("second holds")
    assert not store.turns.try_take(conversation.id)
    await second.__aexit__(None, None, None)
    assert store.turns.try_take(conversation.id)
    store.turns.release(conversation.id)
    assert order == ["first done", "second holds"]


def test_recovery_leaves_the_conversations_another_process_runs(store, other):
    busy, idle = conversation_of(store, "busy"), conversation_of(store, "idle")
    for conversation in (busy, idle):
        store.conversations.add_message(conversation.id, "user", "answering?", status="pending")
        store.inbox.enqueue_input(conversation.id, "waiting")
    assert store.turns.try_take(busy.id)  # a live process runs a turn of it
    assert other.inbox.mark_pending_failed() == 2
    assert [m.status for m in store.conversations.messages(busy.id)] == ["pending"]
    assert [i.content for i in store.inbox.pending_inputs(busy.id)] == ["waiting"]
    assert [m.status for m in store.conversations.messages(idle.id)] == ["failed", "failed"]
    store.turns.release(busy.id)


def test_a_lease_of_an_earlier_process_with_this_process_id_is_free(db_path):
    """A container's bot is pid 1 after every restart: the lease its predecessor held
    (same host, same pid) is not mistaken for this process's own."""
    store, earlier = open_store(db_path), open_store(db_path)
    try:
        conversation = conversation_of(store)
        earlier.turns.holder = f"{earlier.turns.host}/{os.getpid()}/restarted"
        assert earlier.turns.try_take(conversation.id)
        assert store.turns.try_take(conversation.id)
        store.turns.release(conversation.id)
    finally:
        store.close()
        earlier.close()


def test_a_store_closed_while_it_held_a_lease_leaves_it_free(store):
    conversation = conversation_of(store)
    closed = other_process_store(store)
    assert closed.turns.try_take(conversation.id)
    closed.close()
    deadline = time.monotonic() + 5
    while not store.turns.try_take(conversation.id):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    store.turns.release(conversation.id)
