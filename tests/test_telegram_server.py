"""The fake Bot API server behaves like Telegram where the product depends on it."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
)

from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID

USER = DEFAULT_USER_ID
GROUP = DEFAULT_GROUP_ID


def keyboard(data: str = "press") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Press", callback_data=data)]])


# -- identity and transport ----------------------------------------------------------------

async def test_get_me_and_a_wrong_token(telegram, telegram_bot):
    me = await telegram_bot.get_me()
    assert (me.id, me.username, me.is_bot) == (telegram.bot_user["id"], "companion_test_bot", True)
    stranger = Bot("42:wrong", session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_get_and_json_requests_work_like_the_real_api(telegram):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{telegram.base_url}/bot{telegram.token}/getme") as response:
            assert (await response.json())["result"]["username"] == "companion_test_bot"
        url = f"{telegram.base_url}/bot{telegram.token}/sendMessage"
        async with http.post(url, json={"chat_id": USER, "text": "123"}) as response:
            body = await response.json()
    assert body["ok"] and body["result"]["text"] == "123"
    assert [c.method for c in telegram.calls] == ["getMe", "sendMessage"]


async def test_unknown_methods_are_recorded_and_answered_ok(telegram, telegram_bot):
    assert await telegram_bot.set_my_description(description="A companion") is True
    [call] = telegram.calls_of("setMyDescription")
    assert call.params["description"] == "A companion"


# -- updates --------------------------------------------------------------------------------

async def test_get_updates_confirms_by_offset(telegram, telegram_bot):
    telegram.private_message("one")
    telegram.private_message("two")
    first = await telegram_bot.get_updates()
    assert [u.message.text for u in first] == ["one", "two"]
    assert [u.message.text for u in await telegram_bot.get_updates(offset=first[0].update_id + 1)] == ["two"]
    assert await telegram_bot.get_updates(offset=first[1].update_id + 1) == []
    assert telegram.pending_updates() == []


async def test_long_poll_returns_when_an_update_arrives_from_another_thread(telegram, telegram_bot):
    timer = threading.Timer(0.2, lambda: telegram.private_message("late"))
    timer.start()
    updates = await telegram_bot.get_updates(timeout=10)
    timer.join()
    assert [u.message.text for u in updates] == ["late"]


async def test_allowed_updates_filter_and_webhook_conflict(telegram, telegram_bot):
    telegram.private_message("text")
    message = await telegram_bot.send_message(USER, "hi", reply_markup=keyboard())
    telegram.callback_query(message.message_id, "press")
    updates = await telegram_bot.get_updates(allowed_updates=["callback_query"])
    assert [u.event_type for u in updates] == ["callback_query"]
    await telegram_bot.set_webhook("https://example.org/hook")
    with pytest.raises(TelegramConflictError):
        await telegram_bot.get_updates()
    assert (await telegram_bot.get_webhook_info()).url == "https://example.org/hook"
    await telegram_bot.delete_webhook()
    assert (await telegram_bot.get_webhook_info()).url == ""


async def test_update_builders_parse_into_aiogram_types(telegram, telegram_bot):
    private = telegram.private_message("/start hi", language_code="zh-hans")
    telegram.group_message("hello", mention="username")
    telegram.group_message("hello", mention="text_mention")
    telegram.topic_message("in a topic", thread_id=77, chat_id=-1009)
    sent = await telegram_bot.send_message(USER, "bot says")
    telegram.reply_to(sent.message_id, "replying")
    telegram.edit_user_message(private, "/start edited")
    telegram.sticker()
    telegram.photo(caption="look")
    telegram.voice(duration=5)
    telegram.document(telegram.add_file("第一章 ……".encode(), "novel.txt", "text/plain"), caption="read this")
    telegram.forwarded_message("forwarded words")
    telegram.poll("Tea or coffee?", ["tea", "coffee"])
    updates = await telegram_bot.get_updates()

    start, mention, text_mention, topic, reply, edited, sticker, photo, voice, document, forwarded, poll = updates
    assert start.message.from_user.language_code == "zh-hans"
    assert start.message.entities[0].type == "bot_command"
    assert mention.message.text == "@companion_test_bot hello"
    assert (mention.message.chat.type, mention.message.entities[0].type) == ("supergroup", "mention")
    assert text_mention.message.entities[0].user.id == telegram.bot_user["id"]
    assert (topic.message.message_thread_id, topic.message.is_topic_message) == (77, True)
    assert reply.message.reply_to_message.from_user.is_bot
    assert edited.edited_message.text == "/start edited" and edited.edited_message.edit_date
    assert sticker.message.sticker.emoji == "😀"
    assert photo.message.photo[0].file_id and photo.message.caption == "look"
    assert voice.message.voice.duration == 5
    assert document.message.document.file_name == "novel.txt"
    assert forwarded.message.forward_origin.sender_user.first_name == "Bob"
    assert [o.text for o in poll.message.poll.options] == ["tea", "coffee"]


async def test_callback_query_and_its_answer(telegram, telegram_bot):
    message = await telegram_bot.send_message(USER, "choose", reply_markup=keyboard("pick:1"))
    query = telegram.callback_query(message.message_id, "pick:1")
    [update] = await telegram_bot.get_updates()
    assert update.callback_query.data == "pick:1"
    assert update.callback_query.message.message_id == message.message_id
    assert await telegram_bot.answer_callback_query(query["id"], text="ok")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await telegram_bot.answer_callback_query(query["id"])


async def test_stopped_generation_update(telegram, telegram_bot):
    telegram.stopped_generation(USER, draft_id=99)
    [update] = await telegram_bot.get_updates(allowed_updates=["stopped_message_generation"])
    assert (update.stopped_message_generation.chat.id, update.stopped_message_generation.draft_id) == (USER, 99)


# -- chat state -----------------------------------------------------------------------------

async def test_message_ids_increase_per_chat_for_both_sides(telegram, telegram_bot):
    telegram.open_group()
    user_message = telegram.private_message("hi")
    first = await telegram_bot.send_message(USER, "one")
    in_group = await telegram_bot.send_message(GROUP, "group one")
    second = await telegram_bot.send_message(USER, "two")
    assert [user_message["message_id"], first.message_id, second.message_id] == [1, 2, 3]
    assert in_group.message_id == 1
    assert [m.text for m in telegram.chat_messages(USER)] == ["hi", "one", "two"]
    assert telegram.bot_texts(USER) == ["one", "two"]


async def test_unknown_chat_is_refused(telegram, telegram_bot):
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await telegram_bot.send_message(424242, "anyone?")


async def test_edits_apply_and_identical_edits_are_refused(telegram, telegram_bot):
    message = await telegram_bot.send_message(USER, "first", reply_markup=keyboard())
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await telegram_bot.edit_message_text("first", chat_id=USER, message_id=message.message_id,
                                    reply_markup=keyboard())
    edited = await telegram_bot.edit_message_text("second", chat_id=USER, message_id=message.message_id,
                                         reply_markup=keyboard())
    assert edited.edit_date and edited.text == "second"
    await telegram_bot.edit_message_text("second", chat_id=USER, message_id=message.message_id)
    [stored] = telegram.bot_messages(USER)
    assert (stored.text, stored.buttons, stored.edits) == ("second", [], 2), "no markup: keyboard removed"
    await telegram_bot.edit_message_reply_markup(
        chat_id=USER, message_id=message.message_id, reply_markup=keyboard("x"))
    assert [b["callback_data"] for b in telegram.bot_messages(USER)[0].buttons] == ["x"]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await telegram_bot.edit_message_text("nope", chat_id=USER, message_id=999)


async def test_delete_message(telegram, telegram_bot):
    message = await telegram_bot.send_message(USER, "bye")
    assert await telegram_bot.delete_message(USER, message.message_id)
    assert telegram.bot_messages(USER) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await telegram_bot.delete_message(USER, message.message_id)


async def test_reply_parameters(telegram, telegram_bot):
    question = telegram.private_message("question")
    answer = await telegram_bot.send_message(
        USER, "answer", reply_parameters=ReplyParameters(message_id=question["message_id"]))
    assert answer.reply_to_message.text == "question"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await telegram_bot.send_message(USER, "x", reply_parameters=ReplyParameters(message_id=500))
    await telegram_bot.send_message(
        USER, "x", reply_parameters=ReplyParameters(message_id=500, allow_sending_without_reply=True))


async def test_callback_data_over_64_bytes_is_refused(telegram, telegram_bot):
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await telegram_bot.send_message(USER, "x", reply_markup=keyboard("x" * 65))


# -- text rules -----------------------------------------------------------------------------

async def test_html_is_parsed_into_entities(telegram, telegram_bot):
    message = await telegram_bot.send_message(
        USER, '<b>bold</b> <i>it</i> <a href="https://e.org">link</a> &lt;tag&gt; '
              '<pre><code class="language-py">x = 1</code></pre>', parse_mode="HTML")
    assert message.text == "bold it link <tag> x = 1"
    kinds = [(e.type, e.offset, e.length, e.language) for e in message.entities]
    assert kinds == [("bold", 0, 4, None), ("italic", 5, 2, None), ("text_link", 8, 4, None),
                     ("pre", 19, 5, "py")]


@pytest.mark.parametrize("html, error", [
    ("<b>unclosed", "Can't find end tag corresponding to start tag \"b\""),
    ("<b>x</i>", "Can't find end tag corresponding to start tag \"b\""),
    ("<h1>title</h1>", "Unsupported start tag \"h1\""),
    ("1 < 2", "Unexpected end of name token"),
    ("x</b>", "Unexpected end tag"),
])
async def test_invalid_html_cannot_be_parsed(telegram, telegram_bot, html, error):
    with pytest.raises(TelegramBadRequest, match="can't parse entities") as caught:
        await telegram_bot.send_message(USER, html, parse_mode="HTML")
    assert error in caught.value.message


async def test_markdown_v2_reserved_characters_must_be_escaped(telegram, telegram_bot):
    with pytest.raises(TelegramBadRequest, match="Character '.' is reserved"):
        await telegram_bot.send_message(USER, "Done.", parse_mode="MarkdownV2")
    message = await telegram_bot.send_message(USER, r"*Done*\.", parse_mode="MarkdownV2")
    assert (message.text, message.entities[0].type) == ("Done.", "bold")


async def test_length_is_counted_in_utf16_units(telegram, telegram_bot):
    await telegram_bot.send_message(USER, "😀" * 2048)  # 4096 units: fits
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await telegram_bot.send_message(USER, "😀" * 2048 + "x")


async def test_empty_text_and_entities_out_of_range_are_refused(telegram, telegram_bot):
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await telegram_bot.send_message(USER, "   ")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await telegram_bot.send_message(USER, "😀ab", entities=[MessageEntity(type="bold", offset=2, length=3)])
    ok = await telegram_bot.send_message(USER, "😀ab", entities=[MessageEntity(type="bold", offset=2, length=2)])
    assert ok.entities[0].offset == 2


# -- drafts ---------------------------------------------------------------------------------

async def test_drafts_are_shown_until_a_message_is_sent(telegram, telegram_bot):
    assert await telegram_bot.send_message_draft(chat_id=USER, draft_id=7, text="partial", can_stop=True)
    assert telegram.drafts[(USER, None)]["text"] == "partial"
    assert await telegram_bot.send_message_draft(chat_id=USER, draft_id=7, text="")  # "Thinking…"
    await telegram_bot.send_message(USER, "final")
    assert telegram.drafts == {}


async def test_drafts_are_refused_outside_private_chats_and_on_request(telegram, telegram_bot):
    telegram.open_group()
    with pytest.raises(TelegramBadRequest, match="TEXTDRAFT_PEER_INVALID"):
        await telegram_bot.send_message_draft(chat_id=GROUP, draft_id=1, text="x")
    with pytest.raises(TelegramBadRequest, match="non-zero"):
        await telegram_bot.send_message_draft(chat_id=USER, draft_id=0, text="x")
    telegram.refuse_drafts()
    with pytest.raises(TelegramNotFound, match="Not Found"):
        await telegram_bot.send_message_draft(chat_id=USER, draft_id=1, text="x")
    telegram.refuse_drafts("peer_invalid")
    with pytest.raises(TelegramBadRequest, match="TEXTDRAFT_PEER_INVALID"):
        await telegram_bot.send_message_draft(chat_id=USER, draft_id=1, text="x")
    telegram.accept_drafts()
    assert await telegram_bot.send_message_draft(chat_id=USER, draft_id=1, text="x")


# -- injected faults ------------------------------------------------------------------------

async def test_injected_failures_use_real_status_codes(telegram, telegram_bot):
    telegram.fail("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await telegram_bot.send_message(USER, "x")
    assert caught.value.retry_after == 7
    telegram.fail("sendMessage", 403)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await telegram_bot.send_message(USER, "x")
    telegram.fail("sendChatAction", 502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await telegram_bot.send_chat_action(USER, "typing")
    assert await telegram_bot.send_chat_action(USER, "typing")
    assert [c.status for c in telegram.calls_of("sendChatAction")] == [502, 502, 200]
    assert telegram.bot_messages(USER) == [], "failed sends leave no message"


# -- files and commands ---------------------------------------------------------------------

async def test_uploaded_documents_keep_their_bytes_and_can_be_downloaded(telegram, telegram_bot):
    data = "很长的小说。".encode() * 1000
    message = await telegram_bot.send_document(USER, BufferedInputFile(data, "novel.txt"), caption="here")
    assert message.document.file_name == "novel.txt" and message.document.mime_type == "text/plain"
    assert telegram.calls_of("sendDocument")[0].files
    assert telegram.file_bytes(message.document.file_id) == data
    file = await telegram_bot.get_file(message.document.file_id)
    assert (await telegram_bot.download_file(file.file_path)).read() == data
    voice = await telegram_bot.send_voice(USER, BufferedInputFile(b"OggS", "v.ogg"))
    photo = await telegram_bot.send_photo(USER, message.document.file_id)
    assert voice.voice.file_id and photo.photo[0].file_id == message.document.file_id
    assert [m.kind for m in telegram.bot_messages(USER)] == ["document", "voice", "photo"]


async def test_files_from_users_are_downloaded_and_big_ones_refused(telegram, telegram_bot):
    file_id = telegram.add_file(b"chapter one", "book.txt", "text/plain")
    file = await telegram_bot.get_file(file_id)
    assert (await telegram_bot.download_file(file.file_path)).read() == b"chapter one"
    big = telegram.add_file(b"x" * (20 * 1024 * 1024 + 1), "big.txt", "text/plain")
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await telegram_bot.get_file(big)
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await telegram_bot.get_file("nonsense")


async def test_commands_are_stored_per_language(telegram, telegram_bot):
    await telegram_bot.set_my_commands([BotCommand(command="start", description="Start")])
    await telegram_bot.set_my_commands([BotCommand(command="start", description="开始")], language_code="zh")
    assert [c.description for c in await telegram_bot.get_my_commands(language_code="zh")] == ["开始"]
    await telegram_bot.delete_my_commands(language_code="zh")
    assert await telegram_bot.get_my_commands(language_code="zh") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await telegram_bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


# -- waiting helpers ------------------------------------------------------------------------

def test_wait_until_blocks_in_sync_code(telegram):
    threading.Timer(0.1, lambda: telegram.private_message("hello")).start()
    assert telegram.wait_until(lambda: telegram.pending_updates(), timeout=5)
    with pytest.raises(AssertionError, match="timed out"):
        telegram.wait_until(lambda: False, timeout=0.05)


async def test_wait_until_is_awaitable_in_async_code(telegram, telegram_bot):
    async def later():
        await asyncio.sleep(0.05)
        await telegram_bot.send_message(USER, "done")

    task = asyncio.create_task(later())
    messages = await telegram.wait_until(lambda: telegram.bot_messages(USER), timeout=5)
    await task
    assert messages[0].text == "done"
