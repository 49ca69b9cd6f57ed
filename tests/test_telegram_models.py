"""/model in Telegram and the fallback endpoint end to end: the chosen model answers and
is recorded; when the main endpoint fails, the fallback answers and the user sees which
model did."""

import pytest

from bot.telegram.callbacks import ChooseModel
from memory.records import Owner
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness

ALICE = DEFAULT_USER_ID


async def say(harness, text, count):
    harness.telegram.private_message(text)
    return await harness.replies(ALICE, count)


@pytest.fixture
async def menu(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai,
                               models=["small-model=8192", "big/model=200000"]).start()
    yield harness
    await harness.stop()


async def test_choosing_a_model_from_the_menu(menu, telegram, fake_openai):
    texts = await say(menu, "/model", 1)
    assert "fake-model" in texts[0]
    menu_message = telegram.bot_messages(ALICE)[0]
    assert [b["text"] for b in menu_message.buttons] == ["● fake-model · 32k", "small-model · 8k", "big/model · 200k"]
    telegram.callback_query(menu_message.message_id, ChooseModel(index=1).pack())
    await telegram.wait_until(
        lambda: "small-model answers you" in telegram.message(ALICE, menu_message.message_id).text)
    fake_openai.enqueue("Small but mighty.")
    await say(menu, "hello", 2)
    assert fake_openai.chat_requests[-1].body["model"] == "small-model"
    assert menu.store.db.execute("SELECT model FROM usage").fetchall() == [("small-model",)]
    texts = await say(menu, "/model BIG/MODEL", 3)
    assert "big/model" in texts[-1] and "200000" in texts[-1]
    texts = await say(menu, "/model gpt-9", 4)
    assert "does not offer the model “gpt-9”" in texts[-1] and "small-model" in texts[-1]
    await say(menu, "/model default", 5)
    await say(menu, "and now?", 6)
    assert fake_openai.chat_requests[-1].body["model"] == "fake-model"


async def test_one_model_only(companion, telegram):
    texts = await say(companion, "/model", 1)
    assert texts == ["This bot offers one model: fake-model."]


async def test_the_fallback_answers_when_the_main_endpoint_fails(tmp_path, telegram, fake_openai):
    with FakeOpenAI() as backup:
        harness = await BotHarness(tmp_path, telegram, fake_openai, fallback_base_url=backup.url,
                                   fallback_model="backup-model", fallback_api_key="backup-key",
                                   model_deadline_seconds=1).start()
        try:
            fake_openai.default_reply = lambda body: Reply.error(503, "overloaded")
            backup.enqueue("I'm still here for you.")
            texts = await say(harness, "are you there?", 1)
            assert texts == ["I'm still here for you.\n\n— answered by backup-model (the main model is unavailable "
                             "right now)"]
            assert harness.store.db.execute("SELECT model FROM usage").fetchall() == [("backup-model",)]
            user = harness.store.directory.find_user("tg", ALICE)
            conversation = harness.store.conversations.conversations_of(Owner.user(user.id))[0]
            assert harness.store.conversations.messages(conversation.id)[-1].content == "I'm still here for you."
            assert backup.chat_requests[0].headers["Authorization"] == "Bearer backup-key"
        finally:
            await harness.stop()
