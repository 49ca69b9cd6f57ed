"""Request assembly: lossless while it fits, cache-stable, never over budget."""

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from memory.assembly import (TAIL_FOOTER, TAIL_HEADER, Budget, ContextTooSmall, StaticBlock, TailPart,
                             assemble)
from memory.records import HistoryRow, Owner
from memory.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, count_tokens


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


SYSTEM = "You are a companion."
SYSTEM_TOKENS = count_tokens(SYSTEM)


def request_for(store, conversation_id, budget, tail=(), static=()):
    conversation = store.conversations.conversation(conversation_id)
    history = store.conversations.history_since(conversation_id, conversation.boundary_message_id)
    request = assemble(system_text=SYSTEM, system_tokens=SYSTEM_TOKENS, history=history,
                       boundary_message_id=conversation.boundary_message_id, budget=budget,
                       static_blocks=static, tail_parts=tail)
    if request.boundary_moved:
        store.conversations.set_boundary(conversation_id, request.boundary_message_id)
    return request


def exact_tokens(request) -> int:
    return REQUEST_OVERHEAD + sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in request.payload())


def test_300_turns_that_fit_are_all_sent_verbatim_and_prefix_stable(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "a").id), "assistant")
    budget = Budget.for_window(262_144)
    rng = random.Random(1)
    previous = None
    sent_turns = []
    for turn in range(300):
        user_text = f"turn {turn}: " + " ".join(rng.choice(["你好", "hello", "记得", "moon", "猴子"]) for _ in range(8))
        store.conversations.add_message(conversation.id, "user", user_text, status="pending")
        tail = [TailPart("time", f"Current time: turn {turn}")]
        request = request_for(store, conversation.id, budget, tail)
        payload = request.payload()

        # every earlier turn is there, verbatim and in order
        assert [m["content"] for m in payload[1:-1]] == sent_turns
        assert payload[-1]["content"].startswith(f"{user_text}\n\n{TAIL_HEADER}")
        assert payload[-1]["content"].endswith(TAIL_FOOTER)
        # the request repeats the previous one up to its last user message, and that
        # message up to the end of the user's words (the tail comes after them)
        if previous is not None:
            assert payload[:len(previous) - 1] == previous[:-1]
            assert previous[-1]["content"].startswith(payload[len(previous) - 1]["content"])
        # the count is the stored counts plus overhead, and exact
        history_rows = store.conversations.history_since(conversation.id, 0)
        assert [m.tokens for m in request.messages if m.section == "history"] == [r.tokens for r in history_rows[:-1]]
        assert request.total_tokens == REQUEST_OVERHEAD + sum(m.tokens + MESSAGE_OVERHEAD for m in request.messages)
        assert request.total_tokens == exact_tokens(request)
        assert not request.boundary_moved

        reply = f"reply {turn} 我记得"
        store.conversations.add_message(conversation.id, "assistant", reply)
        sent_turns += [user_text, reply]
        previous = payload
    assert len(previous) == 1 + 599


def fill(store, conversation_id, turns, words=60, seed=0):
    rng = random.Random(seed)
    vocabulary = ["春天", "river", "光", "memory", "小猫", "tea", "星星", "promise"]
    for turn in range(turns):
        store.conversations.add_message(conversation_id, "user", " ".join(rng.choice(vocabulary) for _ in range(words)))
        store.conversations.add_message(conversation_id, "assistant", " ".join(rng.choice(vocabulary) for _ in range(words)))


def test_overflow_moves_the_boundary_in_large_persisted_steps(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "b").id), "assistant")
    budget = Budget.for_window(8192)
    moves, turns = 0, 400
    previous = None
    stable = 0
    for turn in range(turns):
        fill(store, conversation.id, 0)
        store.conversations.add_message(conversation.id, "user", f"question {turn} " + "星星 river " * 20, status="pending")
        request = request_for(store, conversation.id, budget, [TailPart("time", f"t{turn}")])
        assert request.total_tokens <= budget.prompt_limit
        assert exact_tokens(request) <= budget.window - budget.reply_tokens
        payload = request.payload()
        if request.boundary_moved:
            moves += 1
        elif previous is not None:
            assert payload[:len(previous) - 1] == previous[:-1]
            stable += 1
        previous = payload
        store.conversations.add_message(conversation.id, "assistant", f"answer {turn} " + "光 memory " * 20)
    # each move drops about a quarter of the window, so moves are rare
    assert 0 < moves <= turns // 8
    assert stable >= turns - moves - 1
    # the persisted boundary is what the next request starts from
    boundary = store.conversations.conversation(conversation.id).boundary_message_id
    assert store.conversations.message(boundary).role == "user"


def test_static_blocks_come_after_system_and_count_against_the_window(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "c").id), "assistant")
    fill(store, conversation.id, 5)
    store.conversations.add_message(conversation.id, "user", "what did the book say?", status="pending")
    document = StaticBlock("documents", "<document>Once upon a time</document>", 12, ("doc:1",))
    memory = StaticBlock("memory", "Summary: they met in spring.", 9)
    request = request_for(store, conversation.id, Budget.for_window(32_768), static=[document, memory])
    sections = [m.section for m in request.messages]
    assert sections[:3] == ["system", "documents", "memory"]
    assert request.messages[1].role == "user"  # material to read, never the system role
    assert request.messages[1].as_json()["source_ids"] == ["doc:1"]
    assert sections[-1] == "user"


def test_tail_parts_fold_into_the_last_user_message_in_priority_order(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "d").id), "assistant")
    message = store.conversations.add_message(conversation.id, "user", "hi", status="pending")
    tail = [TailPart("recall", "Earlier you said: I like tea.", (5, 6)), TailPart("time", "Now: Monday"),
            TailPart("lore", "The moon is made of cheese.")]
    request = request_for(store, conversation.id, Budget.for_window(32_768), tail)
    last = request.messages[-1]
    assert [p.section for p in last.parts] == ["user", "time", "lore", "recall"]
    assert last.parts[3].source_ids == [5, 6]
    assert last.parts[0].source_ids == [message.id]
    assert last.content.index("Now: Monday") < last.content.index("cheese") < last.content.index("tea")
    # the user's words first (they stay in the next request's cached prefix), the tail after
    assert last.content.startswith(f"hi\n\n{TAIL_HEADER}\n") and last.content.endswith(TAIL_FOOTER)
    assert last.as_json()["parts"][1] == {"section": "time", "tokens": last.parts[1].tokens}


def test_tail_budget_drops_what_does_not_fit_without_moving_the_history(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "e").id), "assistant")
    fill(store, conversation.id, 3)
    store.conversations.add_message(conversation.id, "user", "hi", status="pending")
    budget = Budget.for_window(8192, tail_tokens=200)
    small = request_for(store, conversation.id, budget, [TailPart("time", "Now")])
    big = request_for(store, conversation.id, budget,
                      [TailPart("time", "Now"), TailPart("passages", "text " * 5000)])
    assert big.payload()[:-1] == small.payload()[:-1]
    assert big.messages[-1].tokens <= 200 + count_tokens("hi") + 10
    assert big.boundary_message_id == small.boundary_message_id


def test_a_huge_new_message_is_shortened_not_sent_over_the_window(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "f").id), "assistant")
    fill(store, conversation.id, 20)
    store.conversations.add_message(conversation.id, "user", "word " * 20_000, status="pending")
    budget = Budget.for_window(4096)
    request = request_for(store, conversation.id, budget)
    assert exact_tokens(request) <= budget.window - budget.reply_tokens
    assert request.messages[-1].section == "user"


def test_fixed_parts_that_cannot_fit_raise_a_clear_error(store):
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "g").id), "assistant")
    store.conversations.add_message(conversation.id, "user", "hi", status="pending")
    huge = StaticBlock("documents", "x", 10_000)
    with pytest.raises(ContextTooSmall, match="no room for the conversation"):
        request_for(store, conversation.id, Budget.for_window(8192), static=[huge])


def test_calibration_ratio_shrinks_the_budget_in_our_tokens():
    assert Budget.for_window(10_000, reply_tokens=1000, ratio=1.5).prompt_limit == 6000
    assert Budget.for_window(10_000).reply_tokens == 2500
    assert Budget.for_window(100_000).reply_tokens == 4096


def rows_from(sizes):
    rows = []
    for index, size in enumerate(sizes):
        role = "user" if index % 2 == 0 else "assistant"
        content = ("星" * size) if index % 3 else ("word " * size)
        rows.append(HistoryRow(index + 1, role, content, count_tokens(content), "", "complete"))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=60),
    window=st.sampled_from([4096, 8192, 16_384, 32_768]),
    tail_size=st.integers(min_value=0, max_value=4000),
    ratio=st.floats(min_value=0.8, max_value=1.6),
)
def test_property_request_never_exceeds_the_window(sizes, window, tail_size, ratio):
    rows = rows_from(sizes)
    if rows[-1].role != "user":
        rows = rows[:-1] or rows_from([5])
    budget = Budget.for_window(window, ratio=ratio)
    request = assemble(system_text=SYSTEM, system_tokens=SYSTEM_TOKENS, history=rows, boundary_message_id=0,
                       budget=budget, tail_parts=[TailPart("recall", "memo " * tail_size), TailPart("time", "now")])
    assert request.total_tokens <= budget.prompt_limit
    assert exact_tokens(request) <= budget.prompt_limit
    # what is kept is a contiguous suffix of the history, ending with the newest message
    kept = [m.source_ids[0] for m in request.messages if m.section == "history"]
    assert kept == list(range(kept[0], kept[0] + len(kept))) if kept else True
    assert request.messages[-1].parts[0].source_ids == [rows[-1].id]  # the user part first
