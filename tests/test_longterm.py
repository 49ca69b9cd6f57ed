"""Pinned facts through the engine: learned in the background, riding in the tail until a
compaction moves them into the static memory section; the user's own edits apply at once.
And the window is never exceeded, even at 4k, with every memory part in play."""

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from memory.schema import open_store
from memory.records import Owner
from tests.conftest import make_memory_engine, memory_of
from tests.fakes.openai_server import Reply, count_prompt, default_task_reply, task_kind


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


class ScriptedFacts:
    """Answers fact-extraction requests from a list (then with no facts); summaries as usual."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def __call__(self, body):
        if task_kind(body) == "facts" and self.answers:
            return Reply(self.answers.pop(0))
        return default_task_reply(body)


def facts_json(*facts):
    return json.dumps({"facts": list(facts)}, ensure_ascii=False)


def memory_section(request):
    return next((m["content"] for m in request.messages[1:2] if m["content"].startswith("[Long-term memory")), "")


def tail(request):
    return request.messages[-1]["content"]


def setup(store, fake, **options):
    engine = make_memory_engine(store, fake, **options)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    owner = Owner.user(user.id)
    return engine, user, owner, engine.conversation_for(owner, user=user)


async def turn(engine, conversation, user, text):
    result = await engine.submit(conversation.id, text, user=user)
    assert result.status == "complete"
    await engine.drain()
    return result


async def test_facts_are_learned_replaced_deduplicated_and_moved_in_only_at_compaction(store, fake_openai):
    fake_openai.task_reply = ScriptedFacts(
        "Sure! Here you go:\n```json\n" + facts_json({"text": "Mia's cat is called Mochi.", "topic": "pet's name"})
        + "\n```\nAnything else?",
        facts_json({"text": "Mia's cat is now called Mocha.", "topic": "pet's name", "replaces": 1}),
        facts_json({"text": "mia's cat is now called Mocha!"}),  # the same fact again
    )
    engine, user, owner, conversation = setup(store, fake_openai, window=4096, facts_every=1)
    memory = memory_of(engine)
    first = await turn(engine, conversation, user, "My cat is called Mochi.")
    [fact] = memory.list_facts(owner, "assistant")
    assert fact.text == "Mia's cat is called Mochi." and fact.origin == "model"
    assert fact.source_ids == (first.user_messages[0].id,) and fact.said_at == first.user_messages[0].created_at
    # the extraction is the conversation's own request (its cache serves it), then the task
    extraction = fake_openai.task_requests[0]
    assert extraction.task == "facts" and extraction.body["prompt_cache_key"] == f"conversation-{conversation.id}"
    assert "messages of the conversation above" in extraction.messages[-1]["content"]

    await turn(engine, conversation, user, "Actually I renamed her Mocha.")
    request = fake_openai.chat_requests[-1]
    assert request.messages[:len(extraction.messages) - 1] == extraction.messages[:-1]
    # the fact's message is in the window: the history shows it, the tail does not repeat it
    assert "Mia's cat is called Mochi." not in tail(request) and memory_section(request) == ""
    assert [f.text for f in memory.list_facts(owner, "assistant")] == ["Mia's cat is now called Mocha."]
    assert store.db.execute("SELECT status, replaced_by FROM facts WHERE id = 1").fetchone() == ("replaced", 2)

    await turn(engine, conversation, user, "Mocha is sleeping.")
    request = fake_openai.chat_requests[-1]
    assert "Mia's cat is now called Mocha. (this replaces: Mia's cat is called Mochi.)" in tail(request)
    assert len(memory.list_facts(owner, "assistant")) == 1  # the repeat was dropped

    # until a compaction, the static part stays as it was: the fact rides in the tail
    rng = random.Random(3)
    for index in range(40):
        await turn(engine, conversation, user, f"chat {index} " + " ".join(rng.choice(["tea", "moon", "星星"]) for _ in range(60)))
        request = fake_openai.chat_requests[-1]
        if memory_section(request):
            break
    assert "Facts to keep in mind:\n- Mia's cat is now called Mocha." in memory_section(request)
    assert "Facts learned since" not in tail(request)
    compactions = [r for r in fake_openai.task_requests if r.task == "summary"]
    assert len(compactions) == 1  # the section first changed at the compaction
    await engine.close()


async def test_the_tail_shows_a_waiting_fact_only_once_its_messages_left_the_window(store, fake_openai):
    """While the message a fact came from is in the window, the history says it: the tail
    (evaluated again on every turn, with the reply after it) stays empty. Once the window
    has moved past that message and no compaction has taken the fact in yet, it is shown."""
    fake_openai.task_reply = ScriptedFacts(facts_json({"text": "Mia's cat is called Mochi."}))
    engine, user, owner, conversation = setup(store, fake_openai, window=8192, facts_every=1)
    first = await turn(engine, conversation, user, "My cat is called Mochi.")
    await turn(engine, conversation, user, "What a day.")
    request = fake_openai.chat_requests[-1]
    assert request.messages[-1]["content"] == "What a day."  # no tail at all: nothing is news
    second = await turn(engine, conversation, user, "Still here.")
    store.conversations.set_boundary(conversation.id, second.user_messages[0].id)  # the first turns left the window
    await turn(engine, conversation, user, "And now?")
    assert "- Mia's cat is called Mochi." in tail(fake_openai.chat_requests[-1])
    assert first.user_messages[0].id < second.user_messages[0].id
    await engine.close()


async def test_users_own_edits_apply_at_once_and_deleted_facts_are_not_relearned(store, fake_openai):
    fake_openai.task_reply = ScriptedFacts(facts_json({"text": "Mia lives in Paris."}),
                                           facts_json({"text": "Mia lives in Paris."}))
    engine, user, owner, conversation = setup(store, fake_openai, window=8192, facts_every=1)
    memory = memory_of(engine)
    await turn(engine, conversation, user, "I live in Paris.")
    birthday = memory.add_fact(owner, "assistant", "  Mia's birthday is  12 May. ")
    assert birthday.text == "Mia's birthday is 12 May." and birthday.origin == "user"
    assert memory.add_fact(owner, "assistant", "mia's birthday is 12 may") == birthday  # no duplicate

    await turn(engine, conversation, user, "hello")
    request = fake_openai.chat_requests[-1]
    assert "- Mia's birthday is 12 May." in memory_section(request)  # at once, in the static part
    assert "- Mia lives in Paris." in memory_section(request)

    paris = next(f for f in memory.list_facts(owner, "assistant") if "Paris" in f.text)
    moved = memory.edit_fact(owner, "assistant", paris.id, "Mia lives in Lyon.")
    assert moved.replaces == paris.id and moved.origin == "user"
    assert memory.delete_fact(owner, "assistant", birthday.id) is True
    assert memory.delete_fact(owner, "assistant", birthday.id) is False
    assert memory.edit_fact(owner, "assistant", 999, "nothing") is None
    await turn(engine, conversation, user, "I live in Paris.")  # the model proposes Paris again
    request = fake_openai.chat_requests[-1]
    section = memory_section(request)
    assert "Lyon" in section and "Paris" not in section and "birthday" not in section
    assert [f.text for f in memory.list_facts(owner, "assistant")] == ["Mia lives in Lyon."]

    # facts outlive the conversation: a new one starts with them
    fresh = engine.start_conversation(owner, user=user)
    await turn(engine, fresh, user, "hi again")
    assert "Mia lives in Lyon." in memory_section(fake_openai.chat_requests[-1])
    await engine.close()


async def test_fact_commands_refuse_bad_input_clearly(store, fake_openai):
    from memory.facts import FactError
    import pytest

    engine, user, owner, conversation = setup(store, fake_openai)
    memory = memory_of(engine)
    with pytest.raises(FactError, match="cannot be empty"):
        memory.add_fact(owner, "assistant", "   ")
    with pytest.raises(FactError, match="at most 500 characters"):
        memory.add_fact(owner, "assistant", "x" * 501)
    assert memory.list_facts(owner, "assistant") == []
    await engine.close()


async def test_the_request_never_exceeds_a_4k_window_with_every_memory_part(tmp_path, fake_openai):
    now = [datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)]
    store = open_store(tmp_path / "small.db", clock=lambda: now[0])
    rng = random.Random(11)
    words = "river moon tea garden 月亮 星星 回家 故事 Mochi Paris 小芳 letter".split()
    fake_openai.default_reply = lambda body: Reply(" ".join(rng.choice(words) for _ in range(rng.randint(5, 120))))
    counter = iter(range(1000))

    def fact(number):  # now and then a correction of the fact before (fact ids count from 1)
        return {"text": f"Fact number {number}: Mia likes " + " ".join(rng.choices(words, k=12)),
                "replaces": number if number % 3 == 2 else None}
    fake_openai.task_reply = lambda body: (
        Reply(facts_json(fact(next(counter)))) if task_kind(body) == "facts" else default_task_reply(body))
    engine, user, owner, conversation = setup(store, fake_openai, window=4096, facts_every=1, clock=lambda: now[0])
    for index in range(45):
        now[0] += timedelta(hours=rng.choice([0, 0, 1, 5, 30]))
        size = rng.choice([5, 40, 120, 400]) if index % 9 else 3000  # now and then a huge paste
        text = f"turn {index} " + " ".join(rng.choice(words) for _ in range(size))
        if index == 2:
            text = "My cousin Anselm lives in Tallinn."
        elif index > 30 and index % 3 == 0:
            text += " How is Anselm doing?"  # long out of the window by now: recalled
        result = await engine.submit(conversation.id, text, user=user)
        assert result.status == "complete"
        await engine.drain()
    requests = fake_openai.chat_requests
    assert all(count_prompt(r.body) <= 4096 - 1024 for r in requests)
    contents = "\n".join(r.messages[-1]["content"] for r in requests)
    assert "Earlier messages that may be relevant" in contents  # recall took part
    assert "Facts learned since" in contents
    assert any(m["content"].startswith("[") and m["role"] == "user" and "\n" in m["content"]
               for r in requests for m in r.messages[1:-1])  # date lines took part
    assert any(memory_section(r) for r in requests)
    await engine.close()
    store.close()
