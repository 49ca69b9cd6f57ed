"""Streaming a reply into Telegram: aiogram's real session against the fake Bot API server."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram import Dispatcher, Router
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, MessageGenerationStopped, Update

from bot.telegram.formatting import format_reply
from bot.telegram.streaming import ActiveReplies, ReplySink, StopReply, StreamSettings, TelegramReply
from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID

FAST = StreamSettings(draft_interval=0.05, edit_interval=0.2, group_edit_interval=0.2,
                      typing_interval=0.1, server_error_backoff=0.05)
USER = DEFAULT_USER_ID
GROUP = DEFAULT_GROUP_ID


def private_reply(telegram_bot, **kwargs) -> TelegramReply:
    return TelegramReply(telegram_bot, USER, private=True, settings=kwargs.pop("settings", FAST), **kwargs)


def group_reply(telegram_bot, **kwargs) -> TelegramReply:
    return TelegramReply(telegram_bot, GROUP, private=False, settings=kwargs.pop("settings", FAST), **kwargs)


async def stream(reply: TelegramReply, pieces: list[str], pause: float = 0.01) -> None:
    for piece in pieces:
        await reply.delta(piece)
        await asyncio.sleep(pause)


def words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def test_the_reply_is_a_reply_sink(telegram_bot):
    assert isinstance(private_reply(telegram_bot), ReplySink)


async def test_private_reply_streams_by_drafts_then_sends_the_message(telegram, telegram_bot):
    reply = private_reply(telegram_bot)
    await reply.start()
    await stream(reply, words("Hello **world**, this is a streamed reply."))
    await telegram.wait_until(lambda: telegram.calls_of("sendMessageDraft", ok=True))
    ids = await reply.finish("Hello **world**, this is a streamed reply.")

    drafts = telegram.calls_of("sendMessageDraft")
    assert drafts and all(c.ok for c in drafts)
    assert {c.params["draft_id"] for c in drafts} == {reply.reply_id}
    assert all(c.params["can_stop"] is True for c in drafts)
    final_text = "Hello world, this is a streamed reply."
    assert all(final_text.startswith(c.params.get("text", "").strip()) for c in drafts)
    assert not telegram.calls_of("editMessageText")

    [message] = telegram.bot_messages(USER)
    assert ids == [message.message_id]
    assert message.text == final_text
    assert [(e["type"], e["offset"], e["length"]) for e in message.entities] == [("bold", 6, 5)]
    assert message.buttons == []
    assert telegram.drafts == {}, "sending the message ends the draft"


async def test_refused_drafts_fall_back_to_one_edited_message_at_most_once_per_interval(telegram, telegram_bot):
    telegram.refuse_drafts()  # a Bot API server without sendMessageDraft: 404 Not Found
    settings = StreamSettings(draft_interval=0.01, edit_interval=0.25, typing_interval=0.1)
    reply = private_reply(telegram_bot, settings=settings)
    await reply.start()
    began = time.monotonic()
    text = " ".join(f"word{i}" for i in range(60))
    await stream(reply, words(text), pause=0.02)
    await telegram.wait_until(lambda: telegram.calls_of("editMessageText"))
    streaming_time = time.monotonic() - began
    previews = len(telegram.calls_of("sendMessage")) + len(telegram.calls_of("editMessageText"))
    await reply.finish(text)

    assert len(telegram.calls_of("sendMessageDraft")) == 1, "one refusal is enough"
    # Updates start at least one interval apart, so their number is bounded by elapsed time.
    assert previews <= streaming_time / settings.edit_interval + 2
    [message] = telegram.bot_messages(USER)
    assert message.text == text
    assert message.buttons == [], "the stop button goes away with the final text"
    first_send = telegram.calls_of("sendMessage")[0]
    button = first_send.params["reply_markup"]["inline_keyboard"][0][0]
    assert StopReply.unpack(button["callback_data"]).reply_id == reply.reply_id


async def test_a_draft_failing_mid_reply_switches_to_edits_for_the_rest(telegram, telegram_bot):
    reply = private_reply(telegram_bot)
    await reply.start()
    await reply.delta("First part. ")
    await telegram.wait_until(lambda: telegram.calls_of("sendMessageDraft", ok=True))
    telegram.fail("sendMessageDraft", 400, "Bad Request: TEXTDRAFT_PEER_INVALID")
    await stream(reply, ["Second part. ", "Third part."])
    await telegram.wait_until(lambda: telegram.calls_of("sendMessage", ok=True))
    drafts_before = len(telegram.calls_of("sendMessageDraft"))
    await reply.delta(" Fourth.")
    await telegram.wait_until(lambda: telegram.calls_of("editMessageText"))
    await reply.finish("First part. Second part. Third part. Fourth.")

    assert len(telegram.calls_of("sendMessageDraft")) == drafts_before
    assert telegram.bot_texts(USER) == ["First part. Second part. Third part. Fourth."]


async def test_group_chat_streams_by_editing_one_message_in_reply_to_the_user(telegram, telegram_bot):
    question = telegram.group_message("what is up?", mention="username")
    reply = group_reply(telegram_bot, reply_to_message_id=question["message_id"])
    await reply.start()
    await stream(reply, words("Not much, just answering in a group."), pause=0.03)
    await telegram.wait_until(lambda: telegram.calls_of("editMessageText"))
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="👍", callback_data="rate:1")]])
    ids = await reply.finish("Not much, just answering in a group.", reply_markup=keyboard)

    assert not telegram.calls_of("sendMessageDraft"), "drafts are for private chats only"
    [send] = telegram.calls_of("sendMessage")
    assert send.params["reply_parameters"]["message_id"] == question["message_id"]
    [message] = telegram.bot_messages(GROUP)
    assert ids == [message.message_id]
    assert message.text == "Not much, just answering in a group."
    assert message.payload["reply_to_message"]["message_id"] == question["message_id"]
    assert [b["callback_data"] for b in message.buttons] == ["rate:1"]


async def test_flood_wait_during_streaming_pauses_previews_then_they_resume(telegram, telegram_bot):
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("One.")
    await telegram.wait_until(lambda: telegram.calls_of("sendMessage", ok=True))
    telegram.fail("editMessageText", 429, retry_after=1)
    await reply.delta(" Two.")
    await telegram.wait_until(lambda: telegram.calls_of("editMessageText"))
    await stream(reply, [" Three.", " Four.", " Five."], pause=0.1)
    await telegram.wait_until(lambda: telegram.calls_of("editMessageText", ok=True), timeout=10)
    ids = await reply.finish("One. Two. Three. Four. Five.")

    refused, *later = telegram.calls_of("editMessageText")
    assert refused.status == 429
    assert later and all(c.ok for c in later)
    assert later[0].at - refused.at >= 1.0, "nothing was sent before retry_after had passed"
    assert telegram.bot_texts(GROUP) == ["One. Two. Three. Four. Five."]
    assert ids == [telegram.bot_messages(GROUP)[0].message_id]


async def test_final_send_waits_out_a_flood_limit_and_retries(telegram, telegram_bot):
    telegram.fail("sendMessage", 429, retry_after=1)
    reply = private_reply(telegram_bot)
    ids = await reply.finish("Delivered after waiting.")
    refused, delivered = telegram.calls_of("sendMessage")
    assert (refused.status, delivered.status) == (429, 200)
    assert delivered.at - refused.at >= 1.0
    assert ids == [telegram.bot_messages(USER)[0].message_id]
    assert telegram.bot_texts(USER) == ["Delivered after waiting."]


async def test_final_send_gives_up_after_the_configured_attempts(telegram, telegram_bot):
    telegram.fail("sendMessage", 429, retry_after=1, times=10)
    reply = private_reply(telegram_bot, settings=StreamSettings(final_attempts=2))
    with pytest.raises(TelegramRetryAfter):
        await reply.finish("never arrives")
    assert len(telegram.calls_of("sendMessage")) == 2


async def test_rejected_formatting_is_resent_as_plain_text(telegram, telegram_bot):
    telegram.fail("sendMessage", 400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0")
    reply = private_reply(telegram_bot)
    await reply.finish("Some **bold** and `code`.")
    formatted, plain = telegram.calls_of("sendMessage")
    assert formatted.status == 400 and formatted.params["entities"]
    assert plain.ok and "entities" not in plain.params
    [message] = telegram.bot_messages(USER)
    assert (message.text, message.entities) == ("Some bold and code.", [])


async def test_rejected_formatting_in_a_preview_switches_previews_to_plain(telegram, telegram_bot):
    telegram.fail("sendMessage", 400, "Bad Request: can't parse entities: entity beyond the end of text")
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("A **bold** start")
    await telegram.wait_until(lambda: telegram.calls_of("sendMessage", ok=True))
    await reply.finish("A **bold** start, finished.")
    first, second = telegram.calls_of("sendMessage")[:2]
    assert first.status == 400 and second.ok and "entities" not in second.params
    [message] = telegram.bot_messages(GROUP)
    assert message.text == "A bold start, finished."
    assert [e["type"] for e in message.entities] == ["bold"], "the final text is formatted again"


async def test_ten_thousand_character_reply_arrives_as_several_messages_in_order(telegram, telegram_bot):
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet. " * 12 for i in range(30))
    assert len(text) > 10_000
    expected = [piece.text for piece in format_reply(text)]
    reply = private_reply(telegram_bot)
    ids = await reply.finish(text)
    assert len(ids) == len(expected) >= 3
    assert ids == sorted(ids)
    assert telegram.bot_texts(USER) == expected


async def test_long_reply_streamed_by_drafts_shows_the_part_being_written(telegram, telegram_bot):
    text = "\n\n".join(f"Chapter {i}. " + "Words and more words. " * 25 for i in range(20))
    reply = private_reply(telegram_bot)
    await reply.start()
    await stream(reply, [text[i:i + 1500] for i in range(0, len(text), 1500)], pause=0.08)
    await telegram.wait_until(lambda: telegram.calls_of("sendMessageDraft"))
    await reply.finish(text)
    drafts = telegram.calls_of("sendMessageDraft")
    assert all(c.ok for c in drafts), "no draft is ever longer than a message"
    assert drafts[-1].params["text"].startswith("Chapter "), "drafts show the current message"
    assert telegram.bot_texts(USER) == [piece.text for piece in format_reply(text)]


async def test_long_reply_streamed_by_edits_reuses_previews_and_puts_markup_last(telegram, telegram_bot):
    text = "\n\n".join(f"Section {i}. " + "Some more words to read. " * 20 for i in range(20))
    expected = [piece.text for piece in format_reply(text)]
    reply = group_reply(telegram_bot)
    await reply.start()
    chunks = [text[i:i + 2500] for i in range(0, len(text), 2500)]
    await stream(reply, chunks, pause=0.25)
    await telegram.wait_until(lambda: len(telegram.bot_messages(GROUP)) >= 2)
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="again", callback_data="again")]])
    ids = await reply.finish(text, reply_markup=keyboard)

    messages = telegram.bot_messages(GROUP)
    assert [m.text for m in messages] == expected
    assert ids == [m.message_id for m in messages]
    assert [m.buttons for m in messages[:-1]] == [[]] * (len(messages) - 1)
    assert [b["text"] for b in messages[-1].buttons] == ["again"]


async def test_restart_drops_the_shown_text_in_edit_mode(telegram, telegram_bot):
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("A wrong beginning that will be thrown away")
    await telegram.wait_until(lambda: telegram.bot_texts(GROUP))
    await reply.restart()
    await telegram.wait_until(lambda: telegram.bot_texts(GROUP) == ["…"])
    assert reply.text == ""
    await reply.delta("The right answer.")
    await reply.finish("The right answer.")
    assert telegram.bot_texts(GROUP) == ["The right answer."]


async def test_restart_drops_the_shown_text_in_a_draft(telegram, telegram_bot):
    reply = private_reply(telegram_bot)
    await reply.start()
    await reply.delta("A wrong beginning")
    await telegram.wait_until(lambda: telegram.drafts.get((USER, None), {}).get("text"))
    await reply.restart()
    await telegram.wait_until(lambda: telegram.drafts.get((USER, None), {}).get("text") == "")
    await reply.delta("Right.")
    await reply.finish("Right.")
    assert telegram.bot_texts(USER) == ["Right."]


async def test_typing_repeats_until_text_arrives_and_its_failures_are_ignored(telegram, telegram_bot):
    telegram.fail("sendChatAction", 403, "Forbidden: bot was blocked by the user", times=2)
    reply = private_reply(telegram_bot)
    await reply.start()
    await telegram.wait_until(lambda: len(telegram.calls_of("sendChatAction")) >= 3)
    await reply.delta("Here it is.")
    await reply.finish("Here it is.")
    typing = telegram.calls_of("sendChatAction")
    await asyncio.sleep(0.3)
    assert len(telegram.calls_of("sendChatAction")) == len(typing), "no typing after the text came"
    assert [c.status for c in typing[:2]] == [403, 403]
    assert all(c.params["action"] == "typing" for c in typing)
    assert telegram.bot_texts(USER) == ["Here it is."]


async def test_preview_failures_never_stop_the_final_reply(telegram, telegram_bot):
    telegram.fail("sendMessage", 502, times=3)  # every preview attempt fails
    settings = StreamSettings(group_edit_interval=0.05, typing_interval=0.1, preview_failure_limit=3)
    reply = group_reply(telegram_bot, settings=settings)
    await reply.start()
    await reply.delta("Still")
    await telegram.wait_until(lambda: len(telegram.calls_of("sendMessage")) >= 3)
    await reply.delta(" arrives.")
    await reply.finish("Still arrives.")
    assert telegram.bot_texts(GROUP) == ["Still arrives."]


async def test_a_preview_the_user_deleted_is_replaced_by_a_new_message(telegram, telegram_bot):
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("Draft text")
    await telegram.wait_until(lambda: telegram.bot_messages(GROUP))
    preview = telegram.bot_messages(GROUP)[0]
    telegram.delete_message(GROUP, preview.message_id)
    ids = await reply.finish("Final text")
    assert telegram.bot_texts(GROUP) == ["Final text"]
    assert ids[0] != preview.message_id


async def test_fail_replaces_the_preview_with_the_error_text(telegram, telegram_bot):
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("Half an ans")
    await telegram.wait_until(lambda: telegram.bot_messages(GROUP))
    await reply.fail("The model did not answer. Send your message again to retry.")
    [message] = telegram.bot_messages(GROUP)
    assert message.text == "The model did not answer. Send your message again to retry."
    assert message.buttons == []


async def test_blank_final_text_removes_previews(telegram, telegram_bot):
    reply = group_reply(telegram_bot)
    await reply.start()
    await reply.delta("something")
    await telegram.wait_until(lambda: telegram.bot_messages(GROUP))
    assert await reply.finish("   ") == []
    assert telegram.bot_messages(GROUP) == []


async def test_stop_button_and_stopped_generation_reach_the_reply_through_handlers(telegram, telegram_bot):
    replies = ActiveReplies()
    router = Router()

    @router.callback_query(StopReply.filter())
    async def on_stop_button(query: CallbackQuery, callback_data: StopReply) -> None:
        stopped = replies.stop(query.message.chat.id, callback_data.reply_id)
        await query.answer("Stopped." if stopped else "Already finished.")

    @router.stopped_message_generation()
    async def on_stopped_generation(event: MessageGenerationStopped) -> None:
        replies.stop(event.chat.id, event.draft_id)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)

    async def deliver(update: dict) -> None:
        await dispatcher.feed_update(telegram_bot, Update.model_validate(update, context={"bot": telegram_bot}))

    in_group = group_reply(telegram_bot, registry=replies)
    await in_group.start()
    await in_group.delta("Going on and on")
    await telegram.wait_until(lambda: telegram.bot_messages(GROUP))
    preview = telegram.bot_messages(GROUP)[0]
    query = telegram.callback_query(preview.message_id, preview.buttons[0]["callback_data"], chat_id=GROUP)
    await deliver({"update_id": 1, "callback_query": query})
    assert in_group.stopped.is_set()
    assert telegram.calls_of("answerCallbackQuery", ok=True)
    edits = len(telegram.calls_of("editMessageText"))
    await in_group.delta(" and on")  # ignored: the user asked to stop
    await asyncio.sleep(0.3)
    assert len(telegram.calls_of("editMessageText")) == edits
    await in_group.finish("Going on and on")
    assert len(replies) == 0

    in_private = private_reply(telegram_bot, registry=replies)
    await in_private.start()
    await in_private.delta("Drafting")
    await telegram.wait_until(lambda: telegram.calls_of("sendMessageDraft", ok=True))
    await deliver(telegram.stopped_generation(USER, in_private.reply_id))
    assert in_private.stopped.is_set()
    await in_private.finish("Drafting")
    assert len(replies) == 0
    assert replies.stop(USER, in_private.reply_id) is False, "a finished reply cannot be stopped"


async def test_a_reply_is_finished_only_once(telegram, telegram_bot):
    reply = private_reply(telegram_bot)
    await reply.finish("Once.")
    with pytest.raises(RuntimeError, match="already finished"):
        await reply.fail("Twice?")
    assert telegram.bot_texts(USER) == ["Once."]


async def test_a_bot_wide_default_parse_mode_does_not_apply_to_replies(telegram):
    from aiogram.client.default import DefaultBotProperties

    html_bot = telegram.make_bot(default=DefaultBotProperties(parse_mode="HTML"))
    try:
        await private_reply(html_bot).finish("if a < b and **c** > d & e")
    finally:
        await html_bot.session.close()
    [message] = telegram.bot_messages(USER)
    assert message.text == "if a < b and c > d & e"
    assert [e["type"] for e in message.entities] == ["bold"]
    assert "parse_mode" not in telegram.calls_of("sendMessage")[0].params
