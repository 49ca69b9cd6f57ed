"""The fault-injection matrix: what the user sees when the model or Telegram fails.

Every failure the fake model can produce (timeouts, 429 with Retry-After, 5xx, a
connection reset mid-stream, a malformed SSE chunk, a stream without a finish reason, a
context-length error; once, and on every try), and Telegram's 429, 400, 403 and 502 on
each Bot API method the bot uses. The whole bot runs in-process against both fakes over
real HTTP (tests/harness.py). Each case checks that the user got the reply or one clear
error in their language, that nothing they sent was lost, and that the bot still answers
the next message. docs/reliability.md holds the same matrix as a table; a test keeps the
two in step.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from bot.settings import Settings
from bot.telegram.app import run_bot
from bot.telegram.callbacks import ForgetMe
from bot.texts import error_text, text
from memory.records import Owner
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID, FakeTelegram
from tests.harness import BotHarness

ALICE = DEFAULT_USER_ID
DOCS = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
LONG = "Here I am, and here is a long answer. " * 12


# == the model ==============================================================================
@dataclass(frozen=True)
class ModelFault:
    scripted: tuple[Reply, ...]  # answers to the first requests
    always: Reply | None = None  # then this one, to every request, while the case runs
    error: str | None = None  # None: the reply arrives; else the ErrorKind the user is told of
    partial: bool = False  # the part of the reply that arrived is shown and kept


MODEL_FAULTS = {
    "timeout, once": ModelFault((Reply("late", delay=2.5),)),
    "timeout, on every try": ModelFault((), Reply("late", delay=5), error="timeout"),
    "429 with Retry-After, once": ModelFault((Reply.rate_limited(1),)),
    "429 with Retry-After, on every try": ModelFault((), Reply.rate_limited(1), error="rate_limit"),
    "500, once": ModelFault((Reply.error(500, "internal error"),)),
    "503, on every try": ModelFault((), Reply.error(503, "overloaded"), error="server"),
    "connection reset mid-stream, once": ModelFault((Reply(LONG, chunk_size=20, cut_after=3),)),
    "connection reset mid-stream, twice": ModelFault(
        (Reply(LONG, chunk_size=20, cut_after=3), Reply(LONG, chunk_size=20, cut_after=3)), error="stream",
        partial=True),
    "malformed SSE chunk, once": ModelFault((Reply(LONG, chunk_size=20, malformed_after=2),)),
    "stream ends without a finish reason, once": ModelFault((Reply(LONG, finish_reason=None),)),
    "context too long, once": ModelFault((Reply.context_too_long(8192),)),
    "context too long, on every try": ModelFault((), Reply.context_too_long(8192), error="context_too_long"),
}


@pytest.mark.parametrize("name", MODEL_FAULTS)
async def test_model_fault(name, tmp_path, telegram, fake_openai):
    fault = MODEL_FAULTS[name]
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    lang = "zh" if fault.error else "en"  # errors are checked in Chinese: localized, not just English
    fake_openai.enqueue(*fault.scripted)
    if fault.always is not None:
        fake_openai.default_reply = lambda body: fault.always
    if fault.error is None:
        fake_openai.enqueue("Here I am.")
    telegram.private_message("hello?", language_code=lang)
    try:
        if fault.error is None:
            assert await harness.replies(ALICE, 1, timeout=15) == ["Here I am."]
            assert stored_exchange(harness) == [("user", "hello?", "complete"), ("assistant", "Here I am.", "complete")]
        else:
            await telegram.wait_until(lambda: any(m.buttons for m in telegram.bot_messages(ALICE)), 15)
            *shown, notice = telegram.bot_messages(ALICE)
            assert notice.text == error_text(fault.error, lang) and "retry" in notice.buttons[0]["callback_data"]
            rows = stored_exchange(harness)
            assert rows[0] == ("user", "hello?", "failed")  # kept: /retry or the button answers it
            if fault.partial:
                assert len(shown) == 1 and rows[1][0] == "assistant" and rows[1][2] == "interrupted"
                assert shown[0].text == rows[1][1].strip() and LONG.startswith(rows[1][1])
            else:
                assert shown == [] and len(rows) == 1
        fake_openai.default_reply = lambda body: Reply("Still here.")
        await still_answers(harness, telegram, lang)
    finally:
        await harness.stop()


def stored_exchange(harness: BotHarness) -> list[tuple[str, str, str]]:
    user = harness.store.directory.find_user("tg", ALICE)
    conversation = harness.store.conversations.active_conversation(Owner.user(user.id), "assistant")
    return [(m.role, m.content, m.status) for m in harness.store.conversations.messages(conversation.id)]


def status_of(harness: BotHarness) -> str | None:
    user = harness.store.directory.find_user("tg", ALICE)
    return user.status if user else None


async def still_answers(harness: BotHarness, telegram: FakeTelegram, lang: str = "en") -> None:
    """The bot is up: the next message is answered."""
    before = len(telegram.bot_messages(ALICE))
    harness.openai.enqueue("Still here.")
    telegram.private_message("are you still there?", language_code=lang)
    await telegram.wait_until(lambda: "Still here." in telegram.bot_texts(ALICE)[before:], 15)


# == Telegram ================================================================================
STATUSES = (429, 400, 403, 502)
Scenario = Callable[[Path, FakeTelegram, FakeOpenAI, int], Awaitable[None]]


async def answered(harness: BotHarness, telegram: FakeTelegram, chat_id: int = ALICE) -> None:
    await telegram.wait_until(lambda: "Here I am." in telegram.bot_texts(chat_id), 15)


async def chat_turn(tmp_path, telegram, fake_openai, method, status) -> None:
    """A private message answered by a streamed reply (drafts, typing, final sendMessage)."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.fail(method, status)
        fake_openai.enqueue(Reply("Here I am.", chunk_size=2, chunk_delay=0.03))
        telegram.private_message("hello?")
        if status == 403 and method == "sendMessage":  # Telegram says the user blocked the bot
            await telegram.wait_until(lambda: status_of(harness) == "blocked", 15)
            assert [r[2] for r in stored_exchange(harness)] == ["complete", "complete"]  # kept all the same
            await still_answers(harness, telegram)
            assert status_of(harness) == "active"
            return
        await answered(harness, telegram)
        # a preview may show the whole text before the turn is stored: the final comes after
        await telegram.wait_until(lambda: stored_exchange(harness)[-1] == ("assistant", "Here I am.", "complete"), 15)
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def group_turn(tmp_path, telegram, fake_openai, method, status) -> None:
    """A group message answered by one message edited as the reply streams; a first reply
    that breaks after two messages' worth of text leaves a preview to delete."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.fail(method, status)
        if method == "deleteMessage":
            fake_openai.enqueue(Reply("word " * 1200, chunk_size=1500, chunk_delay=0.15, cut_after=4))
        fake_openai.enqueue(Reply("Here I am. " * 8, chunk_size=4, chunk_delay=0.03))
        telegram.group_message("hello?", mention="username", user=telegram.user(ALICE))
        await telegram.wait_until(lambda: telegram.bot_texts(DEFAULT_GROUP_ID)
                                  and telegram.bot_texts(DEFAULT_GROUP_ID)[0] == ("Here I am. " * 8).strip(), 20)
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def start_up(tmp_path, telegram, fake_openai, method, status) -> None:
    """Start-up calls: getMe checks the token, setMyCommands registers the menu."""
    telegram.fail(method, status)
    if method == "getMe" and status in (400, 403):  # not transient: one clear line, exit code 1
        settings = BotHarness(tmp_path, telegram, fake_openai).settings
        code, err = await run_capturing(settings)
        assert code == 1 and err.count("\n") == 1 and "Telegram did not let the bot start" in err
        return
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def polling(tmp_path, telegram, fake_openai, method, status) -> None:
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.fail("getUpdates", status)
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def persona_button(tmp_path, telegram, fake_openai, method, status) -> None:
    """/persona, then a tap on a persona: the menu loses its buttons and the switch is announced."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.private_message("/persona")
        menu = (await wait_for_message(telegram, 1))[-1]
        choice = next(b for b in menu.buttons if "mara" in b.get("callback_data", ""))
        telegram.fail(method, status)
        telegram.callback_query(menu.message_id, choice["callback_data"])
        alice = Owner.user(harness.store.directory.find_user("tg", ALICE).id)
        if status == 403:  # only a user who blocked the bot gets 403: marked inactive, nothing changed
            await telegram.wait_until(lambda: status_of(harness) == "blocked", 15)
        else:
            switched = text("tg.persona_switched", "en", name="Captain Mara Vale")
            await telegram.wait_until(lambda: switched in telegram.bot_texts(ALICE), 15)
            assert harness.store.directory.persona_of(alice) == "mara"
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def forget_button(tmp_path, telegram, fake_openai, method, status) -> None:
    """/forget and its confirm button: the data goes even if the button's spinner cannot be stopped."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.private_message("/forget")
        confirm = (await wait_for_message(telegram, 1))[-1]
        telegram.fail(method, status)
        telegram.callback_query(confirm.message_id, ForgetMe(confirmed=True).pack())
        await telegram.wait_until(lambda: telegram.message(ALICE, confirm.message_id).text.startswith("Done."), 15)
        assert harness.store.directory.find_user("tg", ALICE) is None
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def export_files(tmp_path, telegram, fake_openai, method, status) -> None:
    """/export sends the conversation as two files."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        fake_openai.enqueue("Here I am.")
        telegram.private_message("hello?")
        await answered(harness, telegram)
        telegram.fail(method, status)
        telegram.private_message("/export")
        if status in (429, 502):
            await telegram.wait_until(lambda: len(telegram.calls_of("sendDocument", ok=True)) == 2, 15)
        elif status == 403:
            await telegram.wait_until(lambda: status_of(harness) == "blocked", 15)
        else:
            await telegram.wait_until(lambda: text("tg.failed", "en") in telegram.bot_texts(ALICE), 15)
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def voice_reply(tmp_path, telegram, fake_openai, method, status) -> None:
    """With /voice on, the reply comes as text and as a voice note."""
    harness = await BotHarness(tmp_path, telegram, fake_openai, tts_model="tts-1", tts_voice="nova").start()
    try:
        telegram.private_message("/voice on")
        await wait_for_message(telegram, 1)
        telegram.fail(method, status)
        fake_openai.enqueue("Here I am.")
        telegram.private_message("say something")
        await answered(harness, telegram)
        if status in (429, 502):
            await telegram.wait_until(lambda: telegram.calls_of("sendVoice", ok=True), 15)
        else:
            await telegram.wait_until(lambda: text("tg.voice_reply_failed", "en") in telegram.bot_texts(ALICE), 15)
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def document_upload(tmp_path, telegram, fake_openai, method, status) -> None:
    """A document sent as a file: downloaded (getFile), read and attached."""
    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        telegram.fail(method, status)
        body = "Chapter 1\n\nThe lighthouse keeper counted ships every night.\n" * 20
        telegram.document(telegram.add_file(body.encode(), "keeper.txt", "text/plain"))
        user = None
        if status in (429, 502):
            await telegram.wait_until(lambda: any(t.startswith("📚 Read") for t in telegram.bot_texts(ALICE)), 15)
            user = harness.store.directory.find_user("tg", ALICE)
            assert [d.title for d in harness.services.reading.documents.documents_of(user.id)] == ["keeper"]
        else:
            failed = text("doc.failed", "en", name="keeper.txt")
            await telegram.wait_until(lambda: failed in telegram.bot_texts(ALICE), 15)
            user = harness.store.directory.find_user("tg", ALICE)
            assert harness.services.reading.documents.documents_of(user.id) == []  # nothing half-stored
        await still_answers(harness, telegram)
    finally:
        await harness.stop()


async def webhook_start(tmp_path, telegram, fake_openai, method, status) -> None:
    """Webhook mode registers its URL with setWebhook at start."""
    from tests.bot_process import free_port

    telegram.fail(method, status)
    settings = BotHarness(tmp_path, telegram, fake_openai, webhook_url="https://bot.example.com",
                          webhook_listen=f"127.0.0.1:{free_port()}").settings
    if status in (400, 403):
        code, err = await run_capturing(settings)
        assert code == 1 and err.count("\n") == 1 and "Telegram refused the webhook" in err
        return
    running = asyncio.create_task(run_bot(settings))
    try:
        await telegram.wait_until(lambda: telegram.calls_of("setWebhook", ok=True) or running.done(), 15)
        assert not running.done() and telegram.webhook["url"] == "https://bot.example.com/telegram"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def run_capturing(settings: Settings) -> tuple[int, str]:
    """run_bot in this process, with what it prints on stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = await run_bot(settings)
    return code, err.getvalue()


async def wait_for_message(telegram: FakeTelegram, count: int) -> list:
    await telegram.wait_until(lambda: len(telegram.bot_messages(ALICE)) >= count, 10)
    return telegram.bot_messages(ALICE)


TELEGRAM_METHODS: dict[str, Scenario] = {
    "getMe": start_up,
    "setMyCommands": start_up,
    "getUpdates": polling,
    "sendChatAction": chat_turn,
    "sendMessageDraft": chat_turn,
    "sendMessage": chat_turn,
    "editMessageText": group_turn,
    "deleteMessage": group_turn,
    "editMessageReplyMarkup": persona_button,
    "answerCallbackQuery": forget_button,
    "sendDocument": export_files,
    "sendVoice": voice_reply,
    "getFile": document_upload,
    "setWebhook": webhook_start,
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("method", TELEGRAM_METHODS)
async def test_telegram_fault(method, status, tmp_path, telegram, fake_openai):
    await TELEGRAM_METHODS[method](tmp_path, telegram, fake_openai, method, status)
    assert telegram.calls_of(method, ok=False), f"the {status} on {method} was never provoked"


def test_the_docs_show_every_case_of_the_matrix():
    docs = DOCS.read_text(encoding="utf-8")
    for name in MODEL_FAULTS:
        assert re.search(rf"^\| {re.escape(name)} \|", docs, re.MULTILINE), name
    for method in TELEGRAM_METHODS:
        assert re.search(rf"^\| `{method}` \|", docs, re.MULTILINE), method
