"""Telegram commands and buttons end to end, asserting on what the fake Bot API received
and on the database."""

import asyncio
import re
import json

from bot.telegram.callbacks import ForgetMe, ResumeConversation, RetryTurn, ShowAlternative, UseAlternative
from memory.schema import open_store
from memory.records import Owner
from tests.fakes.openai_server import Reply
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness
from tests.conftest import said_all, table_names

ALICE = DEFAULT_USER_ID


def alice_conversation(companion):
    user = companion.store.directory.find_user("tg", ALICE)
    return companion.store.conversations.active_conversation(Owner.user(user.id), "assistant")


async def say(companion, text, count):
    companion.telegram.private_message(text)
    return await companion.replies(ALICE, count)


async def test_retry_keeps_alternatives_and_choosing_one(companion, telegram, fake_openai):
    fake_openai.enqueue("Blue.", "Green.")
    await say(companion, "favourite colour?", 1)
    await say(companion, "/retry", 2)
    second = telegram.bot_messages(ALICE)[-1]
    assert second.text == "Green."
    labels = [b["text"] for b in second.buttons]
    assert labels[:3] == ["◀", "2/2", "▶"]
    # page back to the first answer, then use it
    first_id = alice_conversation(companion)
    alternatives = companion.store.conversations.alternatives(companion.store.conversations.last_exchange(first_id.id)[0][-1].id)
    telegram.callback_query(second.message_id, ShowAlternative(reply_id=alternatives[0].id).pack())
    await telegram.wait_until(lambda: telegram.message(ALICE, second.message_id).text == "Blue.", 5)
    shown = telegram.message(ALICE, second.message_id)
    assert any(b["text"].startswith("✓") for b in shown.buttons)
    telegram.callback_query(second.message_id, UseAlternative(reply_id=alternatives[0].id).pack())
    await telegram.wait_until(lambda: not any(b["text"].startswith("✓") for b in
                                              telegram.message(ALICE, second.message_id).buttons), 5)
    assert [m.content for m in companion.store.conversations.messages(first_id.id)] == ["favourite colour?", "Blue."]
    fake_openai.enqueue("Noted.")
    await say(companion, "ok", 3)
    assert said_all(fake_openai.chat_requests[-1].messages[1:3]) == ["favourite colour?", "Blue."]


async def test_model_failure_gives_a_localized_error_with_a_retry_button(companion, telegram, fake_openai):
    fake_openai.default_reply = lambda body: Reply.error(500, "down")
    telegram.private_message("你好", language_code="zh-hans")
    texts = await companion.replies(ALICE, 1, timeout=15)
    assert "模型服务器出了问题" in texts[0]
    error_message = telegram.bot_messages(ALICE)[0]
    assert error_message.buttons[0]["callback_data"] == RetryTurn(
        conversation_id=alice_conversation(companion).id).pack()
    fake_openai.default_reply = lambda body: Reply("我回来了。")
    telegram.callback_query(error_message.message_id, error_message.buttons[0]["callback_data"])
    texts = await companion.replies(ALICE, 2)
    assert texts[-1] == "我回来了。"
    assert [m.status for m in companion.store.conversations.messages(alice_conversation(companion).id)] == ["complete", "complete"]


async def test_continue_and_undo(companion, telegram, fake_openai):
    fake_openai.enqueue(Reply("Once upon a time", finish_reason="length"), "there was a fox.")
    await say(companion, "story please", 1)
    texts = await say(companion, "/continue", 2)
    assert texts[-1] == "there was a fox."
    conversation = alice_conversation(companion)
    assert companion.store.conversations.messages(conversation.id)[-1].content == "Once upon a time there was a fox."
    texts = await say(companion, "/undo", 3)
    assert "2" in texts[-1]
    assert companion.store.conversations.messages(conversation.id) == []


async def test_new_and_history_resume(companion, telegram, fake_openai):
    fake_openai.enqueue("first chat reply", "second chat reply")
    await say(companion, "first conversation", 1)
    first = alice_conversation(companion)
    await say(companion, "/new", 2)
    await say(companion, "second conversation", 3)
    assert alice_conversation(companion).id != first.id
    await say(companion, "/history", 4)
    listing = telegram.bot_messages(ALICE)[-1]
    assert len(listing.buttons) == 2
    telegram.callback_query(listing.message_id, ResumeConversation(conversation_id=first.id).pack())
    await companion.replies(ALICE, 5)
    assert alice_conversation(companion).id == first.id
    assert len(companion.store.conversations.conversations_of(Owner.user(companion.store.directory.find_user("tg", ALICE).id))) == 2


async def test_search_finds_chinese_and_english_in_my_history(companion, telegram, fake_openai):
    fake_openai.enqueue("好的", "ok")
    await say(companion, "我养了一只猫，叫团子", 1)
    await say(companion, "My favourite tea is oolong", 2)
    texts = await say(companion, "/search 团子", 3)
    assert "我养了一只猫，叫团子" in texts[-1]
    texts = await say(companion, "/search OOLONG", 4)
    assert "My favourite tea is oolong" in texts[-1]
    texts = await say(companion, "/search 八戒", 5)
    assert "八戒" in texts[-1] and "oolong" not in texts[-1]


async def test_usage_and_export(companion, telegram, fake_openai):
    fake_openai.enqueue(Reply("Hello!", prompt_tokens=1000, cached_tokens=800))
    await say(companion, "hi", 1)
    texts = await say(companion, "/usage", 2)
    assert "80%" in texts[-1] and "in 1 requests" in texts[-1]
    await say(companion, "/export", 4)
    documents = telegram.calls_of("sendDocument", ok=True)
    assert len(documents) == 2
    uploads = [upload for call in documents for upload in call.files.values()]
    assert sorted(u.filename.rsplit(".", 1)[1] for u in uploads) == ["json", "md"]
    exported = json.loads(next(u.data for u in uploads if u.filename.endswith(".json")))
    assert exported["format"] == "companion-chat/1"
    assert exported["persona"] == {"id": "assistant", "name": "Assistant"}
    assert [(m["role"], m["content"]) for m in exported["messages"]] == [("user", "hi"), ("assistant", "Hello!")]
    assert all(m["created_at"].endswith("+00:00") for m in exported["messages"])


async def test_timezone_and_language(companion, telegram, fake_openai):
    texts = await say(companion, "/tz +8", 1)
    assert texts[-1].startswith("Time zone set to UTC+08:00.")  # as people read it, not the POSIX Etc/GMT-8
    assert companion.store.directory.find_user("tg", ALICE).timezone == "Etc/GMT-8"
    texts = await say(companion, "/tz Mars/Olympus", 2)
    assert "Mars/Olympus" in texts[-1]
    texts = await say(companion, "/lang zh", 3)
    assert texts[-1] == "菜单已切换为中文。"
    texts = await say(companion, "/tz", 4)
    assert texts[-1].startswith("你的时区是 UTC+08:00")
    fake_openai.enqueue("ok")
    await say(companion, "what time is it", 5)
    # the zone in the system message, the local time on the newest message
    sent = fake_openai.chat_requests[-1].messages
    assert "(Etc/GMT-8, UTC+08:00)" in sent[0]["content"]
    assert re.match(r"\[\w{3} \d{4}-\d\d-\d\d \d\d:\d\d\]\nwhat time is it$", sent[-1]["content"])
    texts = await say(companion, "/tz UTC+8", 6)
    assert texts[-1].startswith("时区已设为 UTC+08:00。")
    texts = await say(companion, "/tz Asia/Shanghai", 7)
    assert texts[-1].startswith("时区已设为 Asia/Shanghai (UTC+08:00)。")
    assert companion.store.directory.find_user("tg", ALICE).timezone == "Asia/Shanghai"


async def test_context_command_shows_sections(companion, telegram, fake_openai):
    fake_openai.enqueue("hello")
    await say(companion, "hi", 1)
    texts = await say(companion, "/context", 2)
    assert "history (2 msgs)" in texts[-1] and "system" in texts[-1]


async def test_forget_leaves_no_row_of_the_user(companion, telegram, fake_openai):
    fake_openai.enqueue("I will remember FORGET-MARKER.")
    await say(companion, "remember FORGET-MARKER", 1)
    telegram.group_message("@companion_test_bot FORGET-MARKER in group", user=telegram.user(ALICE))
    await companion.replies(-1001234567890, 1)
    await say(companion, "/forget", 2)
    confirm = telegram.bot_messages(ALICE)[-1]
    telegram.callback_query(confirm.message_id, ForgetMe(confirmed=True).pack())
    await telegram.wait_until(lambda: telegram.message(ALICE, confirm.message_id).text.startswith("Done."), 5)
    await asyncio.sleep(0.2)
    store = companion.store
    assert store.directory.find_user("tg", ALICE) is None
    for table in table_names(store):
        for row in store.db.execute(f'SELECT * FROM "{table}"').fetchall():
            assert "FORGET-MARKER" not in str(row), table
            assert str(ALICE) not in [str(v) for v in row], table


async def test_stop_button_keeps_the_partial_reply(tmp_path, telegram, fake_openai):
    telegram.refuse_drafts()
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    fake_openai.enqueue(Reply("word " * 400, chunk_size=5, chunk_delay=0.02))
    telegram.private_message("talk a lot")
    preview = await telegram.wait_until(
        lambda: next((m for m in telegram.bot_messages(ALICE) if m.buttons), None), 10)
    telegram.callback_query(preview.message_id, preview.buttons[0]["callback_data"])
    conversation_done = lambda: (conv := alice_conversation(harness)) and harness.store.conversations.last_exchange(conv.id)[1]
    reply = await telegram.wait_until(conversation_done, 10)
    assert reply.status == "interrupted"
    assert 0 < len(reply.content) < len("word " * 400)
    await telegram.wait_until(lambda: telegram.bot_texts(ALICE)[-1] == reply.content.strip(), 10)
    await harness.stop()


async def test_daily_budget_refuses_without_a_model_call(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, open_to_all=True, admins=[],
                               daily_tokens=500).start()
    fake_openai.enqueue(Reply("first", prompt_tokens=600))
    telegram.private_message("one")
    await harness.replies(ALICE, 1)
    telegram.private_message("two")
    texts = await harness.replies(ALICE, 2)
    assert "500" in texts[-1]
    assert len(fake_openai.chat_requests) == 1
    await harness.stop()


async def test_unanswered_update_after_a_crash_is_answered_on_restart(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    await harness.stop()
    # a crash: the update was journaled, its message stored, and the turn never finished
    store = open_store(harness.settings.db)
    sent = telegram.private_message("are you still there?")
    user = store.directory.ensure_user("tg", ALICE)
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    store.conversations.add_message(conversation.id, "user", "are you still there?", status="pending", user_id=user.id,
                      platform_message_id=sent["message_id"])
    from aiogram.types import Update
    store.inbox.journal_update("tg", 1, Update.model_validate({"update_id": 1, "message": sent}).model_dump_json(
        exclude_none=True), user_external_id=ALICE)
    store.close()
    with telegram.lock:
        telegram._updates.clear()  # Telegram already considers it delivered
    fake_openai.enqueue("Yes, I am here.")
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    texts = await harness.replies(ALICE, 1)
    assert texts == ["Yes, I am here."]
    assert [(m.content, m.status) for m in harness.store.conversations.messages(conversation.id)] == [
        ("are you still there?", "complete"), ("Yes, I am here.", "complete")]
    await harness.stop()


async def test_admin_commands(companion, telegram, fake_openai):
    texts = await say(companion, "/stats", 1)
    assert "Users:" in texts[-1]
    texts = await say(companion, "/allow 4242", 2)
    assert "4242" in texts[-1]
    fake_openai.enqueue("welcome")
    telegram.private_message("hi", user=telegram.user(4242, first_name="New"))
    assert await companion.replies(4242, 1) == ["welcome"]
    telegram.private_message("/stats", user=telegram.user(4242, first_name="New"))
    texts = await companion.replies(4242, 2)
    assert "admins" in texts[-1]


async def test_start_shows_the_greeting_and_starter_prompts(companion, telegram, fake_openai):
    fake_openai.enqueue("hello")
    await say(companion, "/persona mara", 2)
    await say(companion, "hi", 3)
    texts = await say(companion, "/start", 4)
    from bot.telegram.formatting import format_reply

    mara = companion.services.personas.get("mara")
    greeting = format_reply(mara.render(mara.greeting.strip(), "Alice"))[0].text
    assert texts[-1] == greeting  # the greeting, not the newest message
    assert len(telegram.bot_messages(ALICE)[-1].buttons) == len(mara.starter_prompts[:6])


async def test_memory_command_lists_adds_edits_and_deletes_pinned_facts(companion, telegram, fake_openai):
    texts = await say(companion, "/memory", 1)
    assert "no pinned memories" in texts[-1]
    await say(companion, "/memory add My cat is called Mochi", 2)
    await say(companion, "/memory add I work night shifts", 3)
    texts = await say(companion, "/memory edit 2 I work day shifts now", 4)
    assert "2" in texts[-1]
    texts = await say(companion, "/memory", 5)
    assert "1. My cat is called Mochi" in texts[-1] and "2. I work day shifts now" in texts[-1]
    fake_openai.enqueue("Hello!")
    await say(companion, "hi", 6)
    sent = str(fake_openai.chat_requests[-1].messages)
    assert "Mochi" in sent and "day shifts" in sent and "night shifts" not in sent
    listing = telegram.bot_messages(ALICE)[-2]
    telegram.callback_query(listing.message_id, listing.buttons[0]["callback_data"])
    await telegram.wait_until(lambda: "Mochi" not in (telegram.message(ALICE, listing.message_id).text or ""), 5)
    texts = await say(companion, "/memory delete 9", 7)
    assert "Usage" in texts[-1]


async def test_a_message_longer_than_the_window_is_answered_with_what_was_cut(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, context_tokens=4096).start()
    fake_openai.enqueue("That was a lot.")
    long_message = " ".join(f"word{n}" for n in range(6000))
    telegram.private_message(long_message)
    texts = await harness.replies(ALICE, 2)
    assert texts[0] == "That was a lot."
    assert "I read the first" in texts[1] and f"of its {len(long_message):,} characters" in texts[1]
    assert "/search" in texts[1] and "document" in texts[1]
    sent = fake_openai.chat_requests[-1].messages[-1]["content"]
    assert len(sent) < len(long_message)
    conversation = alice_conversation(harness)
    assert harness.store.conversations.last_exchange(conversation.id)[0][0].content == long_message  # stored whole
    await harness.stop()
