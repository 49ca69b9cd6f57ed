"""The Telegram app end to end: aiogram's real HTTP session against the fake Bot API,
the real openai SDK against the fake model, a real SQLite file."""

import asyncio
import threading

import pytest

from bot.settings import Settings
from bot.telegram.app import run_bot
from memory.schema import open_store
from memory.records import Owner
from tests.fakes.openai_server import Reply
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness
from tests.conftest import said, said_all

ALICE = DEFAULT_USER_ID


async def test_start_up_registers_the_command_menu_in_two_languages(companion, telegram):
    assert telegram.calls_of("getMe")
    menus = {lang: [c["command"] for c in commands] for (scope, lang), commands in telegram.commands.items()}
    assert "retry" in menus[next(k for k in menus if k in ("", None, "default", "en"))]
    assert any(k == "zh" for k in menus)


async def test_private_turn_is_streamed_by_drafts_and_finished_with_a_message(companion, telegram, fake_openai):
    fake_openai.enqueue(Reply("Hello Alice! " * 20, chunk_size=10, chunk_delay=0.02))
    telegram.private_message("hi there")
    texts = await companion.replies(ALICE, 1)
    assert texts == [("Hello Alice! " * 20).strip()]
    assert telegram.calls_of("sendMessageDraft", ok=True)
    assert not telegram.calls_of("editMessageText")
    conversation = companion.store.conversations.active_conversation(Owner.user(companion.store.directory.find_user("tg", ALICE).id),
                                                       "assistant")
    stored = companion.store.conversations.messages(conversation.id)
    assert [(m.role, m.content) for m in stored] == [("user", "hi there"), ("assistant", ("Hello Alice! " * 20))]
    # the Telegram id is stored once the send returns, a moment after the fake has the message
    await telegram.wait_until(lambda: companion.store.conversations.message(stored[1].id).platform_message_id is not None, 5)
    assert companion.store.conversations.message(stored[1].id).platform_message_id == str(
        telegram.bot_messages(ALICE)[0].message_id)


async def test_drafts_refused_then_one_message_is_edited(companion, telegram, fake_openai):
    telegram.refuse_drafts()
    fake_openai.enqueue(Reply("word " * 60, chunk_size=5, chunk_delay=0.02))
    telegram.private_message("tell me something long")
    await telegram.wait_until(lambda: telegram.bot_texts(ALICE) == [("word " * 60).strip()], 10)
    assert len(telegram.bot_messages(ALICE)) == 1
    assert telegram.calls_of("editMessageText", ok=True)


async def test_flood_limit_on_the_final_message_is_waited_out(companion, telegram, fake_openai):
    telegram.fail("sendMessage", 429, retry_after=1)
    fake_openai.enqueue("Patience pays.")
    telegram.private_message("hello?")
    assert await companion.replies(ALICE, 1) == ["Patience pays."]
    assert [c.status for c in telegram.calls_of("sendMessage")][:2] == [429, 200]


async def test_a_10000_character_reply_arrives_split_in_order(companion, telegram, fake_openai):
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(30)]
    long_reply = "\n\n".join(paragraphs)
    assert len(long_reply) > 10_000
    fake_openai.enqueue(Reply(long_reply, chunk_size=500))
    telegram.private_message("write a lot")
    await telegram.wait_until(lambda: len(telegram.bot_texts(ALICE)) >= 3, 10)
    await asyncio.sleep(0.3)
    texts = telegram.bot_texts(ALICE)
    assert all(len(t) <= 4096 for t in texts)
    assert "\n\n".join(texts).split() == long_reply.split()


async def test_group_answers_mentions_and_replies_and_keeps_other_messages_as_context(companion, telegram,
                                                                                       fake_openai):
    group = -1001234567890
    fake_openai.enqueue("Hi everyone!", "Yes, Bob?")
    telegram.group_message("just chatting among us", user=telegram.user(2002, first_name="Bob"))
    telegram.group_message("@companion_test_bot hello!", user=telegram.user(ALICE, first_name="Alice"))
    await companion.replies(group, 1)
    bot_message = telegram.bot_messages(group)[0]
    telegram.reply_to(bot_message.message_id, "are you there?", chat_id=group,
                      user=telegram.user(ALICE, first_name="Alice"))
    await companion.replies(group, 2)
    # in a group the reply streams into one edited message: wait for its final text
    await telegram.wait_until(lambda: telegram.bot_texts(group) == ["Hi everyone!", "Yes, Bob?"], 10)
    first_request = fake_openai.chat_requests[0].messages
    assert said_all(first_request[1:-1]) == ["Bob: just chatting among us"]
    assert said(first_request[-1]["content"]) == "Alice: hello!"
    assert len(fake_openai.chat_requests) == 2


async def test_two_users_are_fully_isolated(companion, telegram, fake_openai):
    bob = telegram.user(2002, first_name="Bob")
    companion.store.directory.update_user(companion.store.directory.ensure_user("tg", 2002).id, allowed=1)
    fake_openai.enqueue("noted, Alice", "noted, Bob")
    telegram.private_message("my secret is ALICE-SECRET")
    await companion.replies(ALICE, 1)
    telegram.private_message("what is my secret?", user=bob)
    await companion.replies(2002, 1)
    bob_request = fake_openai.chat_requests[1]
    assert "ALICE-SECRET" not in str(bob_request.body)


async def test_a_refused_user_gets_one_polite_refusal_and_costs_no_model_call(companion, telegram, fake_openai):
    stranger = telegram.user(3003, first_name="Eve")
    telegram.private_message("hello", user=stranger)
    telegram.private_message("hello again", user=stranger)
    texts = await companion.replies(3003, 1)
    await asyncio.sleep(0.5)
    assert len(telegram.bot_texts(3003)) == 1 and "3003" in texts[0]
    assert fake_openai.chat_requests == []


async def test_sticker_and_photo_get_sensible_answers(companion, telegram, fake_openai):
    fake_openai.enqueue("What a cute sticker!", "Nice photo!")
    telegram.sticker(chat_id=ALICE)
    await companion.replies(ALICE, 1)
    telegram.photo(caption="my cat")
    await companion.replies(ALICE, 2)
    assert fake_openai.chat_requests[0].messages[-1]["content"].split("\n")[-1].startswith("[sticker")
    assert fake_openai.chat_requests[1].messages[-1]["content"].endswith("[photo] my cat")
    telegram.voice()
    texts = await companion.replies(ALICE, 3)
    assert "voice" in texts[-1]
    assert len(fake_openai.chat_requests) == 2


async def test_quotes_forwards_and_polls_reach_the_model_as_short_descriptions(companion, telegram, fake_openai):
    fake_openai.enqueue("First answer.", "Second answer.", "Quoted.", "Forwarded.", "Polled.")
    telegram.private_message("one")
    await companion.replies(ALICE, 1)
    first_reply = telegram.bot_messages(ALICE)[-1]
    telegram.private_message("two")
    await companion.replies(ALICE, 2)
    telegram.reply_to(first_reply.message_id, "what did you mean?")  # an older message: quoted
    await companion.replies(ALICE, 3)
    telegram.forwarded_message("the meeting moved to Friday")
    await companion.replies(ALICE, 4)
    telegram.poll("Tea or coffee?", ["tea", "coffee"])
    await companion.replies(ALICE, 5)
    last_lines = [r.messages[-1]["content"].split("\n") for r in fake_openai.chat_requests[2:]]
    assert last_lines[0][-2:] == ["[replying to Companion: “First answer.”]", "what did you mean?"]
    assert last_lines[1][-2:] == ["[forwarded from Bob]", "the meeting moved to Friday"]
    assert last_lines[2][-1] == "[poll] Tea or coffee? — tea / coffee"
    alice = companion.store.directory.find_user("tg", ALICE)
    conversation = companion.store.conversations.active_conversation(Owner.user(alice.id), "assistant")
    stored = [m.content for m in companion.store.conversations.messages(conversation.id)]
    assert "[forwarded from Bob]\nthe meeting moved to Friday" in stored


async def test_edited_last_message_is_answered_again(companion, telegram, fake_openai):
    fake_openai.enqueue("Answer to the typo.", "Answer to the fix.")
    sent = telegram.private_message("waht is 2+2")
    await companion.replies(ALICE, 1)
    telegram.edit_user_message(sent, "what is 2+2")
    texts = await companion.replies(ALICE, 2)
    assert texts[-1] == "Answer to the fix."
    conversation = companion.store.conversations.active_conversation(Owner.user(companion.store.directory.find_user("tg", ALICE).id),
                                                       "assistant")
    assert [m.content for m in companion.store.conversations.messages(conversation.id)] == ["what is 2+2", "Answer to the fix."]


async def test_restart_mid_conversation_keeps_history(companion, telegram, fake_openai):
    fake_openai.enqueue("Nice to meet you, Alice.", "You told me your name is Alice.")
    telegram.private_message("my name is Alice")
    await companion.replies(ALICE, 1)
    await companion.restart()
    telegram.private_message("what's my name?")
    await companion.replies(ALICE, 2)
    contents = [m["content"] for m in fake_openai.chat_requests[-1].messages]
    assert [said(c) for c in contents[1:3]] == ["my name is Alice", "Nice to meet you, Alice."]


async def test_a_redelivered_update_is_processed_once(companion, telegram, fake_openai):
    fake_openai.enqueue("Only once.")
    sent = telegram.private_message("once please")
    await companion.replies(ALICE, 1)
    with telegram.lock:  # Telegram delivers the same update again (e.g. after a webhook retry)
        telegram._updates.append({"update_id": 1, "message": sent})
    telegram.private_message("marker")
    await companion.replies(ALICE, 2)
    assert [r.messages[-1]["content"].split("\n")[-1] for r in fake_openai.chat_requests] == ["once please", "marker"]


async def test_50_chats_at_once_with_a_slow_model_are_all_answered_in_order(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, open_to_all=True).start()
    fake_openai.default_reply = lambda body: Reply(
        "re: " + body["messages"][-1]["content"].rsplit("\n", 1)[-1], delay=0.3)
    users = [telegram.user(5000 + i, first_name=f"U{i}") for i in range(50)]
    for round_ in range(2):
        for user in users:
            telegram.private_message(f"message {round_} from {user['id']}", user=user)
    for user in users:
        await telegram.wait_until(lambda u=user: len(telegram.bot_texts(u["id"])) >= 2, 30)
    for user in users:
        assert telegram.bot_texts(user["id"]) == [f"re: message 0 from {user['id']}",
                                                  f"re: message 1 from {user['id']}"]
    await harness.stop()


async def test_wrong_token_is_a_clear_error(tmp_path, telegram, fake_openai, capsys):
    settings = Settings(openai_base_url=fake_openai.url, openai_api_key="k", db=tmp_path / "x.db",
                        telegram_bot_token="999:wrong", telegram_api_base=telegram.base_url)
    assert await run_bot(settings) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_sigterm_stops_cleanly_keeping_the_partial_reply(tmp_path, telegram, fake_openai):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tests.test_cli import COMMAND

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COMPANION_", "TELEGRAM_"))}
    env.update(OPENAI_BASE_URL=fake_openai.url, OPENAI_API_KEY="k", COMPANION_MODEL="fake-model",
               COMPANION_DB=str(tmp_path / "bot.db"), TELEGRAM_BOT_TOKEN=telegram.token,
               TELEGRAM_API_BASE=telegram.base_url, COMPANION_ADMINS=str(ALICE))
    fake_openai.enqueue(Reply("word " * 2000, chunk_size=5, chunk_delay=0.01))
    process = subprocess.Popen(COMMAND + ["run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        telegram.private_message("talk for a long time")
        telegram.wait_until(lambda: telegram.calls_of("sendMessageDraft", ok=True), 30)
        time.sleep(0.3)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, process.stderr.read()[-2000:]
    db = sqlite3.connect(tmp_path / "bot.db")
    rows = db.execute("SELECT role, status, content FROM messages ORDER BY id").fetchall()
    assert rows[0][:2] == ("user", "complete")
    assert rows[1][:2] == ("assistant", "interrupted") and 0 < len(rows[1][2]) < 10_000
    assert telegram.bot_texts(ALICE) == [rows[1][2].strip()]
    assert db.execute("SELECT count(*) FROM updates WHERE done_at IS NULL").fetchone()[0] == 0


async def test_each_forum_topic_is_its_own_conversation(companion, telegram, fake_openai):
    group = -1009999
    telegram.open_group(group, title="Forum", is_forum=True)
    fake_openai.enqueue("topic one reply", "topic two reply")
    telegram.topic_message("@companion_test_bot hello from topic 11", thread_id=11, chat_id=group,
                           user=telegram.user(ALICE))
    await companion.replies(group, 1)
    telegram.topic_message("@companion_test_bot hello from topic 22", thread_id=22, chat_id=group,
                           user=telegram.user(ALICE))
    await companion.replies(group, 2)
    second_request = fake_openai.chat_requests[1].messages
    assert "topic 11" not in str(second_request)
    assert {m.thread_id for m in telegram.bot_messages(group)} == {11, 22}
    keys = {c.group_key for c in companion.store.conversations.conversations_of(Owner.group(f"tg:{group}:11"))}
    assert keys == {f"tg:{group}:11"}


async def test_a_user_who_blocked_the_bot_is_marked_inactive(companion, telegram, fake_openai):
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", times=20)
    telegram.fail("sendMessageDraft", 403, "Forbidden: bot was blocked by the user", times=20)
    fake_openai.enqueue("you will not see this")
    telegram.private_message("bye")
    await telegram.wait_until(lambda: companion.store.directory.find_user("tg", ALICE) is not None
                              and companion.store.directory.find_user("tg", ALICE).status == "blocked", 10)
    conversation = companion.store.conversations.active_conversation(Owner.user(companion.store.directory.find_user("tg", ALICE).id),
                                                       "assistant")
    assert [m.role for m in companion.store.conversations.messages(conversation.id)] == ["user", "assistant"]


def test_webhook_mode_serves_updates_and_health(tmp_path, telegram, fake_openai):
    import json as jsonlib
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    from tests.test_cli import COMMAND

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COMPANION_", "TELEGRAM_"))}
    env.update(OPENAI_BASE_URL=fake_openai.url, OPENAI_API_KEY="k", COMPANION_MODEL="fake-model",
               COMPANION_DB=str(tmp_path / "bot.db"), TELEGRAM_BOT_TOKEN=telegram.token,
               TELEGRAM_API_BASE=telegram.base_url, COMPANION_ADMINS=str(ALICE),
               COMPANION_WEBHOOK_URL="https://bot.example.com", COMPANION_WEBHOOK_SECRET="s3cret",
               COMPANION_WEBHOOK_LISTEN=f"127.0.0.1:{port}")
    fake_openai.enqueue("Hello over the webhook.")
    process = subprocess.Popen(COMMAND + ["run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        telegram.wait_until(lambda: telegram.calls_of("setWebhook", ok=True), 30)
        assert telegram.calls_of("setWebhook")[0].params["url"] == "https://bot.example.com/telegram"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = jsonlib.loads(urllib.request.urlopen(f"{base}/healthz", timeout=2).read())
                break
            except OSError:
                time.sleep(0.1)
        assert health == {"ok": True}
        update = {"update_id": 1, "message": {
            "message_id": 1, "date": int(time.time()), "text": "hi via webhook",
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"}}}
        refused = urllib.request.Request(f"{base}/telegram", data=jsonlib.dumps(update).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(refused, timeout=5)
            raise AssertionError("an update without the secret token was accepted")
        except urllib.error.HTTPError as error:
            assert error.code == 401
        accepted = urllib.request.Request(f"{base}/telegram", data=jsonlib.dumps(update).encode(), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert urllib.request.urlopen(accepted, timeout=5).status == 200
        telegram.wait_until(lambda: telegram.bot_texts(ALICE) == ["Hello over the webhook."], 20)
        fake_openai.enqueue("The second one.")
        assert urllib.request.urlopen(accepted, timeout=5).status == 200  # Telegram retried: handled once
        update = {**update, "update_id": 2, "message": {**update["message"], "message_id": 2, "text": "again"}}
        second = urllib.request.Request(f"{base}/telegram", data=jsonlib.dumps(update).encode(), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert urllib.request.urlopen(second, timeout=5).status == 200
        telegram.wait_until(lambda: len(telegram.bot_texts(ALICE)) >= 2, 20)
        assert telegram.bot_texts(ALICE) == ["Hello over the webhook.", "The second one."]
        fake_openai.enqueue("A third one.")  # a lone surrogate in the update is read as U+FFFD
        update = {**update, "update_id": 3, "message": {**update["message"], "message_id": 3, "text": "lone \ud800"}}
        third = urllib.request.Request(f"{base}/telegram", data=jsonlib.dumps(update).encode(), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert urllib.request.urlopen(third, timeout=5).status == 200
        telegram.wait_until(lambda: len(telegram.bot_texts(ALICE)) >= 3, 20)
        assert telegram.bot_texts(ALICE)[-1] == "A third one."
        assert fake_openai.chat_requests[-1].messages[-1]["content"].endswith("lone \ufffd")
        garbage = urllib.request.Request(f"{base}/telegram", data=b"[1, 2", headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        try:
            urllib.request.urlopen(garbage, timeout=5)
            raise AssertionError("a body that is not an update was accepted")
        except urllib.error.HTTPError as error:
            assert error.code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def crashed_with(db_path, telegram, build) -> None:
    """The database as a crash leaves it: `build(store, user, conversation)` writes what
    the turns had stored, and every update Telegram sent is journaled, unfinished, and
    already confirmed (it will not be delivered again)."""
    from aiogram.types import Update

    from memory.schema import open_store

    store = open_store(db_path)
    user = store.directory.ensure_user("tg", ALICE)
    build(store, user, store.conversations.start_conversation(Owner.user(user.id), "assistant"))
    for raw in telegram.pending_updates():
        payload = Update.model_validate(raw).model_dump_json(exclude_none=True, exclude_unset=True)
        store.inbox.journal_update("tg", raw["update_id"], payload, user_external_id=ALICE)
    store.close()
    with telegram.lock:
        telegram._updates.clear()


async def test_a_message_a_crash_left_in_the_inbox_is_stored_and_answered_once(tmp_path, telegram, fake_openai):
    first = telegram.private_message("first message")
    second = telegram.private_message("second message, sent while the first was answered")

    def build(store, user, conversation):
        store.conversations.add_message(conversation.id, "user", "first message", status="pending", user_id=user.id,
                          platform_message_id=first["message_id"])
        store.inbox.enqueue_input(conversation.id, "second message, sent while the first was answered",
                            user_id=user.id, platform_message_id=second["message_id"])

    crashed_with(tmp_path / "bot.db", telegram, build)
    fake_openai.enqueue("Both answered.")
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    assert await harness.replies(ALICE, 1) == ["Both answered."]
    await asyncio.sleep(0.3)
    conversation = harness.store.conversations.active_conversation(Owner.user(harness.store.directory.find_user("tg", ALICE).id),
                                                     "assistant")
    assert [(m.content, m.status) for m in harness.store.conversations.messages(conversation.id)] == [
        ("first message", "complete"), ("second message, sent while the first was answered", "complete"),
        ("Both answered.", "complete")]
    assert len(fake_openai.chat_requests) == 1 and telegram.bot_texts(ALICE) == ["Both answered."]
    assert harness.store.inbox.pending_inputs() == []
    await harness.stop()


async def test_a_reply_stored_but_never_sent_is_sent_after_restart_without_a_model_call(tmp_path, telegram,
                                                                                         fake_openai):
    sent = telegram.private_message("are you there?")

    def build(store, user, conversation):
        question = store.conversations.add_message(conversation.id, "user", "are you there?", user_id=user.id,
                                     platform_message_id=sent["message_id"])
        store.conversations.add_message(conversation.id, "assistant", "Stored just before the crash.", reply_to=question.id)

    crashed_with(tmp_path / "bot.db", telegram, build)
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    assert await harness.replies(ALICE, 1) == ["Stored just before the crash."]
    conversation = harness.store.conversations.active_conversation(Owner.user(harness.store.directory.find_user("tg", ALICE).id),
                                                     "assistant")
    reply = harness.store.conversations.messages(conversation.id)[-1]
    assert reply.platform_message_id == str(telegram.bot_messages(ALICE)[0].message_id)
    assert fake_openai.chat_requests == []
    await harness.restart()  # a second restart sends nothing again
    await asyncio.sleep(0.3)
    assert len(telegram.bot_messages(ALICE)) == 1
    await harness.stop()
