"""Compaction end to end: the engine, the memory providers, the fake model over HTTP."""

import random

import pytest

from memory.assembly import TAIL_HEADER
from memory.compaction import SummaryStore, _chunks
from memory.records import Message, Owner
from tests.conftest import make_memory_engine, memory_of
from tests.fakes.openai_server import Reply, count_prompt


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


WORDS = "river moon tea garden 月亮 星星 回家 故事 letter dream walk quiet 花园 小猫".split()


def chatty(seed=1):
    rng = random.Random(seed)
    return lambda body: Reply(" ".join(rng.choice(WORDS) for _ in range(45)))


async def run_turns(engine, conversation, user, turns, start=0, seed=2):
    rng = random.Random(seed)
    for turn in range(start, start + turns):
        result = await engine.submit(conversation.id, f"turn {turn}: " + " ".join(rng.choice(WORDS) for _ in range(45)),
                                     user=user)
        assert result.status == "complete"
        await engine.drain()


def memory_section(request):
    return next((m["content"] for m in request.messages[1:2] if m["content"].startswith("[Long-term memory")), None)


def covered(store, conversation_id):
    """Message ids that active summary segments cover."""
    ids = set()
    for segment in SummaryStore(store).active(conversation_id):
        ids |= {m.id for m in store.conversations.messages(conversation_id) if segment.first_message_id <= m.id <= segment.last_message_id}
    return ids


def setup(store, fake, **options):
    engine = make_memory_engine(store, fake, **options)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    return engine, user, engine.conversation_for(Owner.user(user.id), user=user)


async def test_compaction_runs_in_batches_and_the_prefix_changes_only_then(store, fake_openai):
    fake_openai.default_reply = chatty()
    engine, user, conversation = setup(store, fake_openai, window=4096, facts_every=0)
    await run_turns(engine, conversation, user, 45)

    summaries = [r for r in fake_openai.task_requests if r.task == "summary"]
    requests = fake_openai.chat_requests
    assert 4 <= len(summaries) <= 9  # a batch of many turns each time, not one turn per request
    changed = 0
    for previous, current in zip(requests, requests[1:]):
        if current.messages[:len(previous.messages) - 1] != previous.messages[:-1]:
            changed += 1
            # what changed is the memory section: it now holds the newest summary
            assert memory_section(current) != memory_section(previous)
    # (a compaction after the last turn has no next request to show it)
    assert changed == len([s for s in summaries if s.at < requests[-1].at])
    assert all(count_prompt(r.body) <= 4096 - 1024 for r in requests)

    # the summaries cover exactly the turns before the boundary, which starts at a user message
    boundary = store.conversations.conversation(conversation.id).boundary_message_id
    assert covered(store, conversation.id) == {m.id for m in store.conversations.messages(conversation.id) if m.id < boundary}
    assert store.conversations.message(boundary).role == "user"
    section = memory_section(requests[-1])
    assert "Summary: [" in section and "Summary of our earlier conversation" in section
    # the summariser rode the conversation's cache: its request is the turn's own request
    # before it, byte for byte, as the next turn resends it (the turn's question without
    # that turn's tail), through the last folded turn, then the task
    first = summaries[0]
    turn_before = max((r for r in requests if r.at <= first.at), key=lambda r: r.at)
    resent = [dict(m) for m in turn_before.messages]
    resent[-1]["content"] = resent[-1]["content"].split("\n\n" + TAIL_HEADER, 1)[0]
    prefix = first.messages[:-1]
    assert prefix[:len(resent)] == resent[:len(prefix)] and len(prefix) > 1
    assert first.body["prompt_cache_key"] == turn_before.body["prompt_cache_key"]
    assert "the conversation above" in first.messages[-1]["content"]
    await engine.close()


async def test_with_another_memory_model_the_excerpt_is_quoted_standalone(store, fake_openai):
    """Another model has another cache: the summary goes in its standalone form, the turns
    quoted, timestamped, named and in order."""
    fake_openai.default_reply = chatty()
    engine, user, conversation = setup(store, fake_openai, window=4096, facts_every=0, memory_model="small-model")
    await run_turns(engine, conversation, user, 30)
    summary = next(r for r in fake_openai.task_requests if r.task == "summary")
    assert summary.body["model"] == "small-model" and summary.messages[0]["role"] == "system"
    excerpt = summary.messages[-1]["content"]
    assert "Mia: turn 0:" in excerpt and excerpt.index("turn 0:") < excerpt.index("turn 1:")
    await engine.close()


async def test_failed_compaction_falls_back_to_dropping_and_catches_up_later(store, fake_openai):
    fake_openai.default_reply = chatty()
    fake_openai.task_reply = lambda body: Reply.error(400, "summaries are broken today")
    engine, user, conversation = setup(store, fake_openai, window=8192, facts_every=0)
    await run_turns(engine, conversation, user, 45)
    assert fake_openai.task_requests, "compaction was attempted"
    assert SummaryStore(store).active(conversation.id) == []
    dropped_to = store.conversations.conversation(conversation.id).boundary_message_id
    assert dropped_to > 0  # the core's batch dropping kept every request in the window
    assert all(count_prompt(r.body) <= 8192 - 1024 for r in fake_openai.chat_requests)

    fake_openai.task_reply = lambda body: Reply("Summary: Mia and the assistant talked about the moon.")
    for turn in range(45, 80):
        await run_turns(engine, conversation, user, 1, start=turn)
        if SummaryStore(store).active(conversation.id):
            break
    boundary = store.conversations.conversation(conversation.id).boundary_message_id
    # the turns dropped while it failed are summarised too: nothing before the boundary is uncovered
    assert covered(store, conversation.id) == {m.id for m in store.conversations.messages(conversation.id) if m.id < boundary}
    assert boundary >= dropped_to
    await engine.close()


async def test_summaries_that_grow_too_big_fold_into_a_higher_level(store, fake_openai):
    fake_openai.default_reply = chatty()
    fake_openai.task_reply = lambda body: Reply("Summary: " + "they talked about the moon and tea. " * 12)
    engine, user, conversation = setup(store, fake_openai, window=4096, facts_every=0, summary_share=0.05)
    await run_turns(engine, conversation, user, 45)
    folds = [r for r in fake_openai.task_requests if r.task == "fold"]
    assert folds
    rows = store.db.execute("SELECT level, folded_into FROM summary_segments ORDER BY id").fetchall()
    assert any(level == 2 for level, _ in rows)
    assert any(folded_into is not None for _, folded_into in rows)
    active = SummaryStore(store).active(conversation.id)
    assert all(a.last_message_id < b.first_message_id for a, b in zip(active, active[1:]))  # disjoint, in order
    assert folds[0].messages[-1]["content"].count("they talked about the moon and tea.") >= 24  # the summaries
    await engine.close()


async def test_chinese_conversation_is_summarised_in_chinese(store, fake_openai):
    fake_openai.default_reply = lambda body: Reply("我记得呢，" + "我们一起看月亮，喝茶，聊小猫的故事。" * 4)
    engine, user, conversation = setup(store, fake_openai, window=4096, facts_every=0)
    for turn in range(30):
        await engine.submit(conversation.id, f"第{turn}天：今天我又去花园散步了，看到很多星星。" * 3, user=user)
        await engine.drain()
    summary = next(r for r in fake_openai.task_requests if r.task == "summary")
    task = summary.messages[-1]["content"]
    assert task.startswith("【这是给你的任务") and "你负责为" in task and "用中文" in task
    await engine.close()


async def test_forgetting_a_message_drops_its_summary_and_it_is_summarised_again(store, fake_openai):
    fake_openai.default_reply = chatty()
    engine, user, conversation = setup(store, fake_openai, window=8192, facts_every=0)
    await run_turns(engine, conversation, user, 35)
    memory = memory_of(engine)
    first = SummaryStore(store).active(conversation.id)[0]
    memory.forget_messages(conversation.id, [first.first_message_id])
    assert first.id not in [s.id for s in SummaryStore(store).active(conversation.id)]
    await run_turns(engine, conversation, user, 1, start=35)
    active = SummaryStore(store).active(conversation.id)
    assert active[0].first_message_id == first.first_message_id  # covered afresh
    await engine.close()


async def test_forgetting_a_message_clears_the_stored_memory_section_that_quotes_it(store, fake_openai):
    fake_openai.default_reply = chatty()
    engine, user, conversation = setup(store, fake_openai, window=8192, facts_every=0)
    await run_turns(engine, conversation, user, 35)
    first = SummaryStore(store).active(conversation.id)[0]
    block = lambda: store.db.execute("SELECT block, stale FROM memory_state WHERE conversation_id = ?",
                                     [conversation.id]).fetchone()
    assert first.content in block()[0]
    memory_of(engine).forget_messages(conversation.id, [first.first_message_id])
    assert block() == ("", 1)  # rendered afresh, without the summary, before its next use
    await engine.close()


def test_chunks_fit_the_limit_and_keep_questions_with_answers():
    messages = [Message(i, 1, "user" if i % 2 else "assistant", "x", 300, "", "complete") for i in range(1, 21)]
    chunks = _chunks(messages, 1000)
    assert [m.id for c in chunks for m in c] == list(range(1, 21))
    assert all(sum(m.tokens + 4 for m in c) <= 1000 for c in chunks)
    assert all(c[0].role == "user" for c in chunks)


async def test_forgetting_a_user_drops_group_summaries_of_their_messages_and_their_facts(store, fake_openai):
    fake_openai.default_reply = chatty()
    engine = make_memory_engine(store, fake_openai, window=4096, facts_every=0)
    memory = memory_of(engine)
    mia = store.directory.ensure_user("local", "mia", display_name="Mia")
    bob = store.directory.ensure_user("local", "bob", display_name="Bob")
    group = engine.conversation_for(Owner.group("tg:-100"), user=mia)
    rng = random.Random(4)
    for turn in range(30):
        speaker = mia if turn % 2 else bob
        await engine.submit(group.id, " ".join(rng.choice(WORDS) for _ in range(45)), user=speaker,
                            speaker_name=speaker.name)
        await engine.drain()
    assert SummaryStore(store).active(group.id)
    memory.facts.add(Owner.user(mia.id), "assistant", "Mia likes tea.", origin="user")
    memory.forget_user(mia.id)
    mia_messages = {m.id for m in store.conversations.messages(group.id) if m.user_id == mia.id}
    assert not any(s.first_message_id <= i <= s.last_message_id
                   for s in SummaryStore(store).active(group.id) for i in mia_messages)
    assert memory.list_facts(Owner.user(mia.id), "assistant") == []
    await engine.close()
