"""The turn engine end to end: real SQLite and PostgreSQL, the real openai SDK, the fake model server."""

import asyncio
import subprocess
import threading

import pytest

from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from memory.store import Store
from personas import PersonaLibrary
from tests.conftest import (assert_each_line_stored_once_and_each_turn_answered_once, make_engine, said, said_all,
                            second_connection)
from tests.fakes.openai_server import Reply


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


def local_user(engine, name="alice"):
    user = engine.store.directory.ensure_user("local", name, display_name=name.title())
    return user, engine.conversation_for(Owner.user(user.id), user=user)


def statuses(store, conversation_id):
    return [(m.role, m.content, m.status) for m in store.conversations.messages(conversation_id, include_hidden=True)]


async def test_user_message_is_stored_before_the_model_is_called(engine, fake_openai):
    seen_by_model_time = []

    def look_at_database(body):
        with second_connection(engine.store) as db:
            seen_by_model_time.append(db.execute("SELECT role, content, status FROM messages").fetchall())
        return Reply("I see you.")

    fake_openai.default_reply = look_at_database
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "Are you there?", user=user)
    assert seen_by_model_time == [[("user", "Are you there?", "pending")]]
    assert result.status == "complete"
    assert statuses(engine.store, conversation.id) == [
        ("user", "Are you there?", "complete"), ("assistant", "I see you.", "complete")]


async def test_reply_usage_and_calibration_are_recorded(engine, fake_openai):
    fake_openai.enqueue(Reply("Fine, thanks.", prompt_tokens=500, cached_tokens=384))
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "How are you?", user=user)
    row = engine.store.db.execute(
        "SELECT model, prompt_tokens, cached_tokens, estimated_prompt_tokens, outcome, message_id FROM usage"
    ).fetchone()
    assert row[:3] == ("fake-model", 500, 384)
    assert row[3] > 0 and row[4] == "complete" and row[5] == result.reply.id
    assert engine.store.usage.calibration_ratios()["fake-model"] == engine.calibration.ratio("fake-model") != 1.0
    assert result.reply.reply_to == result.user_messages[-1].id


async def test_a_server_that_sends_no_usage_gets_an_estimate_and_no_calibration(engine, fake_openai):
    """llama-cpp-python streams no usage: the row holds our own count, marked estimated,
    and the budget's calibration never learns from it (nor from zeros)."""
    fake_openai.enqueue(Reply("Fine, thanks.", usage=False), Reply("Still fine.", prompt_tokens=0))
    user, conversation = local_user(engine)
    await engine.submit(conversation.id, "How are you?", user=user)
    await engine.submit(conversation.id, "And now?", user=user)
    rows = engine.store.db.execute(
        "SELECT prompt_tokens, completion_tokens, estimated_prompt_tokens, usage_estimated FROM usage ORDER BY id"
    ).fetchall()
    assert fake_openai.chat_requests[0].body["stream_options"] == {"include_usage": True}
    for prompt, completion, estimate, estimated in rows:
        assert estimated == 1 and prompt == estimate > 0 and completion > 0
    assert engine.store.usage.calibration_ratios() == {} and engine.calibration.ratio("fake-model") == 1.0


async def test_history_is_resent_and_stored_replies_are_byte_identical(engine, fake_openai):
    user, conversation = local_user(engine)
    replies = ["First **reply**.\n\nWith lines.  ", "第二个回复。", "Third."]
    fake_openai.enqueue(*replies)
    for text in ["one", "two", "three"]:
        await engine.submit(conversation.id, text, user=user)
    last = fake_openai.chat_requests[-1].messages
    assert [m["content"] for m in last[1:-1]] == ["one", replies[0], "two", replies[1]]
    assert said(last[-1]["content"]) == "three"
    assert fake_openai.chat_requests[1].messages[:-1] == last[:3]


async def test_persistent_failure_keeps_the_user_message_and_no_junk_reply(store, fake_openai):
    engine = make_engine(store, fake_openai, deadline=1.5)
    fake_openai.default_reply = lambda body: Reply.error(500, "down")
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "hello?", user=user)
    assert result.status == "failed" and result.error.kind == "server"
    assert statuses(store, conversation.id) == [("user", "hello?", "failed")]

    fake_openai.default_reply = lambda body: Reply("Sorry, I'm back.")
    result = await engine.submit(conversation.id, "still there?", user=user)
    assert result.status == "complete"
    assert [m["content"] for m in fake_openai.chat_requests[-1].messages[1:]][0] == "hello?"
    await engine.close()


async def test_stream_broken_twice_stores_partial_as_interrupted_and_next_turn_works(engine, fake_openai):
    fake_openai.enqueue(Reply("Once upon a time", cut_after=1), Reply("Once upon a time", cut_after=2),
                        Reply("Here is the full story."))
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "tell me a story", user=user)
    assert result.status == "interrupted" and result.error.kind == "stream"
    assert statuses(engine.store, conversation.id) == [
        ("user", "tell me a story", "failed"), ("assistant", "Once upon a time"[:16], "interrupted")]
    result = await engine.submit(conversation.id, "go on", user=user)
    assert result.status == "complete"
    sent = [m["content"] for m in fake_openai.chat_requests[-1].messages]
    assert sent[1:3] == ["tell me a story", "Once upon a time"[:16]]


async def test_bad_request_is_not_retried(engine, fake_openai):
    fake_openai.enqueue(Reply.error(400, "invalid model parameter"))
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "hi", user=user)
    assert result.status == "failed" and result.error.kind == "bad_request"
    assert len(fake_openai.chat_requests) == 1


async def test_context_length_error_shrinks_the_request_and_retries_once(store, fake_openai):
    engine = make_engine(store, fake_openai, window=32_768, reply_tokens=1024)
    user, conversation = local_user(engine)
    for i in range(40):
        store.conversations.add_message(conversation.id, "user", f"old question {i} " + "lorem ipsum " * 150)
        store.conversations.add_message(conversation.id, "assistant", f"old answer {i} " + "dolor sit " * 150)
    fake_openai.enqueue(Reply.context_too_long(16_384), Reply("Shorter now."))
    result = await engine.submit(conversation.id, "and now?", user=user)
    assert result.status == "complete"
    first, second = fake_openai.chat_requests
    assert len(second.messages) < len(first.messages)
    assert store.conversations.conversation(conversation.id).boundary_message_id > 0
    fake_openai.enqueue(Reply.context_too_long(1000), Reply.context_too_long(1000), Reply("unused"))
    result = await engine.submit(conversation.id, "again", user=user)
    assert result.status == "failed" and result.error.kind == "context_too_long"
    assert len(fake_openai.chat_requests) == 4
    await engine.close()


async def test_one_turn_at_a_time_and_waiting_messages_are_answered_together(engine, fake_openai):
    gate = threading.Event()
    fake_openai.enqueue(Reply("answer to one", wait_for=gate), Reply("answer to two and three"))
    user, conversation = local_user(engine)
    first = asyncio.create_task(engine.submit(conversation.id, "one", user=user))
    while not fake_openai.chat_requests:
        await asyncio.sleep(0.01)
    second = asyncio.create_task(engine.submit(conversation.id, "two", user=user))
    third = asyncio.create_task(engine.submit(conversation.id, "three", user=user))
    await asyncio.sleep(0.1)
    assert len(fake_openai.chat_requests) == 1  # the conversation is busy
    gate.set()
    results = await asyncio.gather(first, second, third)
    assert [r.status for r in results] == ["complete", "complete", "merged"]
    assert [m.content for m in results[1].user_messages] == ["two", "three"]
    assert statuses(engine.store, conversation.id) == [
        ("user", "one", "complete"), ("assistant", "answer to one", "complete"),
        ("user", "two", "complete"), ("user", "three", "complete"),
        ("assistant", "answer to two and three", "complete")]


async def test_different_conversations_do_not_wait_for_each_other(engine, fake_openai):
    gate = threading.Event()
    fake_openai.enqueue(Reply("slow answer", wait_for=gate))
    alice, alice_conversation = local_user(engine, "alice")
    bob, bob_conversation = local_user(engine, "bob")
    slow = asyncio.create_task(engine.submit(alice_conversation.id, "take your time", user=alice))
    while not fake_openai.chat_requests:
        await asyncio.sleep(0.01)
    fake_openai.enqueue(Reply("quick answer"))
    quick = await asyncio.wait_for(engine.submit(bob_conversation.id, "quick one", user=bob), 10)
    assert quick.reply.content == "quick answer"
    assert not slow.done()
    gate.set()
    assert (await slow).reply.content == "slow answer"


async def test_greeting_is_the_first_message_and_groups_record_speakers(tmp_path, store, fake_openai):
    persona_dir = tmp_path / "personas"
    persona_dir.mkdir()
    (persona_dir / "luna.toml").write_text(
        'id = "luna"\nname = "Luna"\ngreeting = "Hi {{user}}, I am {{char}}."\n', encoding="utf-8")
    engine = make_engine(store, fake_openai, PersonaLibrary([persona_dir]))
    user = store.directory.ensure_user("tg", 7, display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), "luna", user=user)
    assert statuses(store, conversation.id) == [("assistant", "Hi Mia, I am Luna.", "complete")]

    group = engine.conversation_for(Owner.group("tg:-1001"), "luna", user=user)
    await engine.submit(group.id, "hello all", user=user, speaker_name="Mia")
    assert store.conversations.messages(group.id)[1].content == "Mia: hello all"
    assert said(fake_openai.chat_requests[-1].messages[-1]["content"]) == "Mia: hello all"
    await engine.close()


async def test_stop_keeps_the_partial_reply(engine, fake_openai):
    fake_openai.enqueue(Reply("word " * 100, chunk_size=5, chunk_delay=0.01))
    user, conversation = local_user(engine)
    stop = asyncio.Event()

    class StopAfterThree:
        count = 0

        async def delta(self, text):
            self.count += 1
            if self.count == 3:
                stop.set()

        async def restart(self):
            pass

    result = await engine.submit(conversation.id, "talk", user=user, sink=StopAfterThree(), stop=stop)
    assert result.status == "interrupted"
    assert statuses(engine.store, conversation.id)[-1] == ("assistant", "word " * 3, "interrupted")


async def test_a_failing_sink_never_breaks_the_turn(engine, fake_openai):
    class BrokenTransport:
        async def delta(self, text):
            raise RuntimeError("telegram is down")

        async def restart(self):
            raise RuntimeError("still down")

    fake_openai.enqueue("All good.")
    user, conversation = local_user(engine)
    result = await engine.submit(conversation.id, "hi", user=user, sink=BrokenTransport())
    assert result.status == "complete" and result.reply.content == "All good."


async def test_time_is_in_the_tail_in_the_users_zone(engine, fake_openai):
    user, conversation = local_user(engine)
    engine.store.directory.update_user(user.id, timezone="Asia/Shanghai")
    user = engine.store.directory.user(user.id)
    await engine.submit(conversation.id, "what time is it?", user=user)
    last = fake_openai.chat_requests[-1].messages[-1]["content"]
    assert "Asia/Shanghai, UTC+08:00" in last
    assert "Asia/Shanghai" not in fake_openai.chat_requests[-1].messages[0]["content"]


async def test_regenerate_keeps_every_alternative_and_choosing_one_applies(engine, fake_openai):
    fake_openai.enqueue("first answer", "second answer", "third answer")
    user, conversation = local_user(engine)
    first = await engine.submit(conversation.id, "pick a colour", user=user)
    second = await engine.regenerate(conversation.id, user=user)
    third = await engine.regenerate(conversation.id, user=user)
    assert third.status == "complete"
    # the regenerated request is the same conversation without the replaced reply
    assert said(fake_openai.chat_requests[1].messages[-1]["content"]) == "pick a colour"
    alternatives = engine.alternatives(third.reply.id)
    assert [a.content for a in alternatives] == ["first answer", "second answer", "third answer"]
    assert [a.status for a in alternatives] == ["hidden", "hidden", "complete"]
    await engine.choose_alternative(first.reply.id)
    assert [a.status for a in engine.alternatives(third.reply.id)] == ["complete", "hidden", "hidden"]
    assert [m.content for m in engine.store.conversations.messages(conversation.id)] == ["pick a colour", "first answer"]
    assert second.reply.reply_to == first.user_messages[0].id


async def test_failed_regeneration_leaves_the_previous_reply(store, fake_openai):
    engine = make_engine(store, fake_openai, deadline=1)
    fake_openai.enqueue("the answer")
    user, conversation = local_user(engine)
    await engine.submit(conversation.id, "question", user=user)
    fake_openai.default_reply = lambda body: Reply.error(503, "busy")
    result = await engine.regenerate(conversation.id, user=user)
    assert result.status == "failed"
    assert statuses(store, conversation.id) == [("user", "question", "complete"),
                                                ("assistant", "the answer", "complete")]
    await engine.close()


async def test_choosing_an_older_reply_is_refused(engine, fake_openai):
    import pytest

    fake_openai.enqueue("a1", "a2")
    user, conversation = local_user(engine)
    old = await engine.submit(conversation.id, "q1", user=user)
    await engine.submit(conversation.id, "q2", user=user)
    with pytest.raises(ValueError, match="latest"):
        await engine.choose_alternative(old.reply.id)


async def test_continue_appends_to_the_last_reply(engine, fake_openai):
    fake_openai.enqueue(Reply("The story begins", finish_reason="length"), Reply("and it goes on."))
    user, conversation = local_user(engine)
    first = await engine.submit(conversation.id, "tell me a story", user=user)
    result = await engine.continue_reply(conversation.id, user=user)
    assert result.status == "complete"
    assert result.reply.id == first.reply.id
    assert store_content(engine, first.reply.id) == "The story begins and it goes on."
    sent = fake_openai.chat_requests[-1].messages
    assert sent[-2] == {"role": "assistant", "content": "The story begins"}
    assert "Continue your previous reply" in sent[-1]["content"]
    assert engine.store.conversations.message(first.reply.id).tokens == engine.store.count("The story begins and it goes on.")


def store_content(engine, message_id):
    return engine.store.conversations.message(message_id).content


async def test_undo_hides_the_last_exchange_from_the_context(engine, fake_openai):
    fake_openai.enqueue("a1", "a2", "a3")
    user, conversation = local_user(engine)
    await engine.submit(conversation.id, "q1", user=user)
    await engine.submit(conversation.id, "q2 (regretted)", user=user)
    hidden = await engine.undo(conversation.id)
    assert [m.content for m in hidden] == ["q2 (regretted)", "a2"]
    await engine.submit(conversation.id, "q3", user=user)
    assert [m["content"] for m in fake_openai.chat_requests[-1].messages[1:-1]] == ["q1", "a1"]
    assert len(engine.store.conversations.messages(conversation.id, include_hidden=True)) == 6


async def test_editing_the_last_message_re_answers_it(engine, fake_openai):
    fake_openai.enqueue("answer to typo", "answer to fixed")
    user, conversation = local_user(engine)
    await engine.submit(conversation.id, "helo wrld", user=user, platform_message_id=501)
    result = await engine.answer_edit(conversation.id, 501, "hello world", user=user)
    assert result.reply.content == "answer to fixed"
    assert statuses(engine.store, conversation.id) == [
        ("user", "helo wrld", "hidden"), ("assistant", "answer to typo", "hidden"),
        ("user", "hello world", "complete"), ("assistant", "answer to fixed", "complete")]
    assert await engine.answer_edit(conversation.id, 999, "unknown message", user=user) is None


async def test_lore_is_triggered_into_the_tail_and_user_persona_into_system(tmp_path, store, fake_openai):
    persona_dir = tmp_path / "personas"
    persona_dir.mkdir()
    (persona_dir / "keeper.toml").write_text(
        'id = "keeper"\nname = "Keeper"\npost_history_instructions = "Never break character."\n'
        '[lorebook]\n[[lorebook.entries]]\nkeys = ["灯塔"]\ncontent = "灯塔在岛的北端，已经废弃三十年。"\n',
        encoding="utf-8")
    engine = make_engine(store, fake_openai, PersonaLibrary([persona_dir]))
    user = store.directory.ensure_user("local", "mei", display_name="Mei")
    store.directory.update_user(user.id, me_name="小梅", me_description="一个喜欢海的画家")
    user = store.directory.user(user.id)
    conversation = engine.conversation_for(Owner.user(user.id), "keeper", user=user)
    await engine.submit(conversation.id, "我们去看看那座灯塔吧", user=user)
    sent = fake_openai.chat_requests[-1].messages
    assert "灯塔在岛的北端" in sent[-1]["content"] and "灯塔在岛的北端" not in sent[0]["content"]
    assert "一个喜欢海的画家" in sent[0]["content"] and "Never break character." in sent[0]["content"]
    await engine.submit(conversation.id, "今天天气不错", user=user)
    # beyond the lorebook's scan depth (the last 2 messages) the entry is no longer triggered
    assert "灯塔在岛的北端" not in fake_openai.chat_requests[-1].messages[-1]["content"]
    await engine.close()


async def test_an_entry_scans_as_deep_as_it_asks(tmp_path, store, fake_openai):
    persona_dir = tmp_path / "personas"
    persona_dir.mkdir()
    (persona_dir / "keeper.toml").write_text(
        'id = "keeper"\nname = "Keeper"\n[lorebook]\n'
        '[[lorebook.entries]]\nkeys = ["lighthouse"]\ncontent = "The lighthouse is dark."\nscan_depth = 40\n'
        '[[lorebook.entries]]\nkeys = ["harbour"]\ncontent = "The harbour froze."\n', encoding="utf-8")
    engine = make_engine(store, fake_openai, PersonaLibrary([persona_dir]))
    user = store.directory.ensure_user("local", "mei")
    conversation = engine.conversation_for(Owner.user(user.id), "keeper", user=user)
    store.conversations.add_message(conversation.id, "user", "the lighthouse and the harbour")
    for index in range(15):  # 30 messages later
        store.conversations.add_message(conversation.id, "user", f"small talk {index}")
        store.conversations.add_message(conversation.id, "assistant", "mm")
    await engine.submit(conversation.id, "what now?", user=user)
    tail = fake_openai.chat_requests[-1].messages[-1]["content"]
    assert "The lighthouse is dark." in tail and "The harbour froze." not in tail
    await engine.close()



async def test_turns_ending_together_leave_the_loop_turns_in_between():
    """Past its slice of a loop turn, the next turn ends wait for later loop turns, so the
    loop serves what else is ready (answers, timers) between them; none is overtaken."""
    from memory.engine import _LoopTurns

    turns = _LoopTurns(slice_seconds=0.0, per_turn=1)
    order: list[str] = []

    async def loop_turns() -> None:
        for _ in range(30):
            order.append("turn")
            await asyncio.sleep(0)

    async def turn_end(name: str) -> None:
        await turns()
        order.append(name)

    async def late_turn_end() -> None:
        await asyncio.sleep(0)  # arrives a loop turn later, while b and c still wait
        await turn_end("d")

    ticker = asyncio.create_task(loop_turns())
    await asyncio.gather(*(turn_end(name) for name in ("a", "b", "c")), late_turn_end())
    ticker.cancel()
    ends = [i for i, what in enumerate(order) if what != "turn"]
    assert [order[i] for i in ends] == ["a", "b", "c", "d"]  # in order of arrival
    assert all("turn" in order[i + 1:j] for i, j in zip(ends, ends[1:]))  # the loop went round between them


async def test_a_lone_turn_end_does_not_wait():
    from memory.engine import _LoopTurns

    other_work: list[str] = []
    asyncio.get_running_loop().call_soon(other_work.append, "ran")
    await _LoopTurns()()
    assert other_work == []  # it returned without giving the loop a turn



# -- several processes on one database (memory/turn_leases.py) ------------------------------
def second_process_store(store):
    """Another Store on the same database, as a second process would open it."""
    return open_store(store.path) if isinstance(store, Store) else open_postgres_store(store.url)


async def test_two_processes_on_one_database_run_one_turn_of_a_conversation_at_a_time(backend_store, fake_openai):
    other = second_process_store(backend_store)
    first, second = make_engine(backend_store, fake_openai), make_engine(other, fake_openai)
    fake_openai.default_reply = lambda body: Reply("a reply that streams for a while", chunk_delay=0.03)
    user, conversation = local_user(first)

    async def talk(engine, name):
        return [await engine.submit(conversation.id, f"{name} {i}", user=user) for i in range(4)]

    results = [r for rs in await asyncio.gather(talk(first, "a"), talk(second, "b")) for r in rs]
    lines = [f"{name} {i}" for name in "ab" for i in range(4)]
    replies = assert_each_line_stored_once_and_each_turn_answered_once(backend_store, conversation.id, lines)
    assert {r.status for r in results} <= {"complete", "merged"}
    assert replies == sum(r.status == "complete" for r in results) == len(fake_openai.chat_requests)
    assert sorted(m.content for r in results for m in r.user_messages) == sorted(lines)
    await first.close()
    await second.close()
    other.close()


async def test_two_processes_meeting_a_new_user_at_once_start_one_conversation(backend_store, fake_openai):
    other = second_process_store(backend_store)
    engines = [make_engine(backend_store, fake_openai), make_engine(other, fake_openai)]
    for round_ in range(15):
        user = backend_store.directory.ensure_user("local", f"new{round_}", display_name="New")
        barrier = threading.Barrier(2)

        def meet(engine):
            barrier.wait()
            return engine.conversation_for(Owner.user(user.id), user=user).id

        ids = await asyncio.gather(*(asyncio.to_thread(meet, engine) for engine in engines))
        assert ids[0] == ids[1], round_
        conversations = backend_store.conversations.conversations_of(Owner.user(user.id))
        assert len(conversations) == 1 and backend_store.conversations.count_messages(ids[0]) <= 1  # one greeting at most
    for engine in engines:
        await engine.close()
    other.close()


async def test_a_turn_takes_over_the_messages_a_killed_process_left_pending(backend_store, fake_openai):
    engine = make_engine(backend_store, fake_openai)
    user, conversation = local_user(engine)
    killed = second_process_store(backend_store)
    if isinstance(killed, Store):
        finished = subprocess.Popen(["true"])
        finished.wait()
        killed.turns.holder = f"{killed.turns.host}/{finished.pid}/killed"
    # it took the turn and its message, then died before the reply was stored
    killed.inbox.enqueue_input(conversation.id, "are you there?", user_id=user.id)
    assert killed.turns.try_take(conversation.id)
    (left,) = killed.inbox.accept_inputs(conversation.id)
    killed.close()
    fake_openai.enqueue("Yes, to both.")
    result = await engine.submit(conversation.id, "hello?", user=user)
    assert result.status == "complete"
    assert [m.content for m in result.user_messages] == ["are you there?", "hello?"]
    assert said_all(fake_openai.chat_requests[0].messages[-2:]) == ["are you there?", "hello?"]
    assert assert_each_line_stored_once_and_each_turn_answered_once(
        backend_store, conversation.id, ["are you there?", "hello?"]) == 1
    await engine.close()
