"""The safety hook: word lists (whole Latin words, Chinese substrings), the moderation
endpoint through the real SDK, and the policies — refuse, warn, log, off — with every
flagged message recorded. Storage on both backends."""

import logging

import pytest

from memory.moderation import ModerationEndpoint, Policy, SafetyGate, WordList
from memory.records import Owner


@pytest.fixture
def store(backend_store):
    return backend_store


async def test_word_list_matches_whole_latin_words_and_chinese_substrings():
    words = WordList(["Kill", "ass", "自杀", "  ", "bad phrase"])
    assert (await words.check("I will KILL it")).categories == ("word: kill",)
    assert not (await words.check("a classy assassin")).flagged
    assert (await words.check("我想自杀了")).flagged
    assert (await words.check("ＫＩＬＬ")).flagged  # full-width letters
    assert (await words.check("what a Bad  phrase".replace("  ", " "))).flagged
    assert not (await WordList([]).check("anything")).flagged


def test_word_list_file_skips_comments(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# operator's list\nfoo\n\n  bar baz  \n", encoding="utf-8")
    assert WordList.from_file(path, ["qux"]).words == ["bar baz", "foo", "qux"]  # longest first


@pytest.fixture
async def endpoint(fake_openai):
    checker = ModerationEndpoint(base_url=fake_openai.url, api_key="k", model="omni-moderation-latest")
    yield checker
    await checker.close()


async def test_endpoint_verdicts(endpoint, fake_openai):
    fake_openai.flagged_words = {"idiot"}
    verdict = await endpoint.check("you idiot")
    assert verdict.flagged and verdict.checker == "endpoint" and verdict.categories == ("harassment",)
    assert not (await endpoint.check("you are lovely")).flagged
    assert fake_openai.moderation_requests[0].body == {"input": "you idiot", "model": "omni-moderation-latest"}


def event_rows(store):
    return store.db.execute("SELECT direction, action, checker, categories, excerpt, message_id FROM "
                            "moderation_events ORDER BY id").fetchall()


async def test_refused_input_is_recorded_and_refused_output_hidden(store):
    gate = SafetyGate(store, [WordList(["forbidden"])])
    alice = store.directory.ensure_user("tg", 1)
    conversation = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    assert not (await gate.screen_input("all fine", user_id=alice.id, conversation_id=conversation.id)).action
    screening = await gate.screen_input("say the forbidden thing", user_id=alice.id, conversation_id=conversation.id)
    assert screening.refused and not screening.warned
    reply = store.conversations.add_message(conversation.id, "assistant", "the Forbidden thing")
    screening = await gate.screen_output(reply.content, user_id=alice.id, conversation_id=conversation.id,
                                         message_id=reply.id)
    assert screening.refused and store.conversations.message(reply.id).status == "hidden"
    assert event_rows(store) == [
        ("input", "refuse", "words", '["word: forbidden"]', "say the forbidden thing", None),
        ("output", "refuse", "words", '["word: forbidden"]', "the Forbidden thing", reply.id)]
    assert [e.direction for e in gate.events(alice.id)] == ["output", "input"]
    assert gate.holds_replies_back


async def test_warn_log_and_off_policies(store, caplog):
    gate = SafetyGate(store, [WordList(["rude"])], input_policy=Policy.WARN, output_policy=Policy.LOG)
    caplog.set_level(logging.WARNING, logger="memory.moderation")
    assert (await gate.screen_input("so rude", user_id=None, conversation_id=None)).warned
    logged = await gate.screen_output("rude reply", user_id=None, conversation_id=None, message_id=None)
    assert logged.action is Policy.LOG and not logged.refused and not logged.warned
    assert [row[:2] for row in event_rows(store)] == [("input", "warn"), ("output", "log")]
    assert any(getattr(r, "moderation", {}).get("action") == "log" for r in caplog.records)
    assert not gate.holds_replies_back
    off = SafetyGate(store, [WordList(["rude"])], input_policy=Policy.OFF)
    assert (await off.screen_input("rude", user_id=None, conversation_id=None)).action is None
    assert not SafetyGate(store, []).holds_replies_back  # nothing to check with


async def test_an_unavailable_endpoint_lets_messages_through_and_the_word_list_still_works(store, fake_openai,
                                                                                         endpoint, caplog):
    fake_openai.moderation_error = 400
    gate = SafetyGate(store, [endpoint, WordList(["banned"])])
    assert not (await gate.screen_input("hello", user_id=None, conversation_id=None)).action
    assert (await gate.screen_input("banned word", user_id=None, conversation_id=None)).refused
    assert "unavailable" in caplog.text


async def test_forgetting_a_user_removes_their_events(store):
    from memory import life_schema

    store.set_forget_cascade([life_schema.forget_step(store)])
    gate = SafetyGate(store, [WordList(["x"])])
    alice = store.directory.ensure_user("tg", 1)
    await gate.screen_input("x", user_id=alice.id, conversation_id=None)
    store.forget_user(alice.id)
    assert event_rows(store) == []
