"""The safety hook in Telegram: refused input is neither stored nor sent to the model;
a refused reply is never shown (not even as a draft) and is hidden from the context;
warn answers with a warning; every flag is recorded. And the age question of open bots."""

from bot.telegram.callbacks import ConfirmAge
from memory.records import Owner
from tests.fakes.openai_server import Reply
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness

ALICE = DEFAULT_USER_ID


async def say(harness, text, count, user=ALICE):
    harness.telegram.private_message(text, user=user)
    return await harness.replies(user["id"] if isinstance(user, dict) else user, count)


def events(harness):
    return harness.store.db.execute("SELECT direction, action, checker FROM moderation_events ORDER BY id").fetchall()


def messages_of(harness, external_id=ALICE):
    user = harness.store.directory.find_user("tg", external_id)
    conversation = harness.store.conversations.active_conversation(Owner.user(user.id), "assistant")
    return harness.store.conversations.messages(conversation.id, include_hidden=True) if conversation else []


async def test_refused_input_costs_no_model_call_and_is_not_stored(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, moderation_words=["forbidden"]).start()
    try:
        texts = await say(harness, "tell me the FORBIDDEN recipe", 1)
        assert "goes against this bot's rules" in texts[0] and "not saved" in texts[0]
        assert fake_openai.chat_requests == []
        assert [m for m in messages_of(harness) if m.role == "user"] == []
        assert events(harness) == [("input", "refuse", "words")]
        fake_openai.enqueue("Hello!")
        assert (await say(harness, "hello", 2))[-1] == "Hello!"
    finally:
        await harness.stop()


async def test_a_refused_reply_is_never_shown_and_leaves_the_context(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, moderation_model="omni-moderation-latest").start()
    try:
        fake_openai.flagged_words = {"idiot"}
        fake_openai.enqueue(Reply("Honestly, you idiot, " + "that was silly. " * 20, chunk_delay=0.01))
        texts = await say(harness, "I forgot my keys again", 1)
        assert "won't send it" in texts[0]
        assert telegram.calls_of("sendMessageDraft") == []  # held back while it was written
        assert telegram.calls_of("sendChatAction")  # the user saw "typing…" instead
        reply = [m for m in messages_of(harness) if m.role == "assistant"][-1]
        assert reply.status == "hidden" and "idiot" in reply.content
        assert events(harness) == [("output", "refuse", "endpoint")]
        assert [r.body["input"] for r in fake_openai.moderation_requests] == ["I forgot my keys again", reply.content]
        fake_openai.enqueue("Let's retrace your steps.")
        await say(harness, "help?", 2)
        context = [m["content"] for m in fake_openai.chat_requests[-1].messages]
        assert not any("idiot" in text for text in context)
    finally:
        await harness.stop()


async def test_warn_answers_with_a_warning_and_log_only_records(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, moderation_words=["darn"],
                               moderation_input="warn", moderation_output="log").start()
    try:
        fake_openai.enqueue(Reply("Darn indeed. " * 12, chunk_delay=0.02))
        texts = await say(harness, "darn it", 2)
        assert "flagged" in texts[0] and texts[1] == ("Darn indeed. " * 12).strip()
        assert events(harness) == [("input", "warn", "words"), ("output", "log", "words")]
        assert telegram.calls_of("sendMessageDraft")  # log policy: the reply streams as usual
    finally:
        await harness.stop()


async def test_an_open_bot_asks_for_the_age_once(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, open_to_all=True, age_confirmation=True,
                               minimum_age=18).start()
    try:
        eve = telegram.user(3003, first_name="Eve")
        texts = await say(harness, "hi", 1, user=eve)
        assert "confirm that you are 18 or older" in texts[0]
        question = telegram.bot_messages(3003)[0]
        assert [b["callback_data"] for b in question.buttons] == [ConfirmAge(adult=True).pack(),
                                                                   ConfirmAge(adult=False).pack()]
        await say(harness, "hello??", 2, user=eve)
        assert fake_openai.chat_requests == [] and messages_of(harness, 3003) == []
        telegram.callback_query(question.message_id, ConfirmAge(adult=True).pack(), chat_id=3003, user=eve)
        await telegram.wait_until(lambda: telegram.message(3003, question.message_id).text == "Thank you. Say hello!")
        fake_openai.enqueue("Hi Eve!")
        assert (await say(harness, "hi again", 3, user=eve))[-1] == "Hi Eve!"
        fake_openai.enqueue("Hi Alice!")
        assert (await say(harness, "hi", 1))[-1] == "Hi Alice!"  # admins are never asked
    finally:
        await harness.stop()
