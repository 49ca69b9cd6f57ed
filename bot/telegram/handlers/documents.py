"""Documents: uploads, links in messages, pictures for vision models, /docs, Cancel.

Sits before the chat router. An upload (in a private chat, or addressed to the bot in
a group) is read and attached to the conversation; its caption, if any, is then
answered as a message. After a crash, a replayed update whose message is already in
the history is not handled again (ChatPreamble; a document read twice is found by its
hash anyway). Links are read first when COMPANION_FETCH_LINKS is on, then the
message is answered. Everything else falls through to the chat router.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.types import User as TelegramUser

from bot.settings import Settings
from bot.telegram.callbacks import CancelJob, ToggleDocument
from bot.telegram.context import ChatContext
from bot.telegram.describe import addressed_to_bot, describe
from bot.telegram.handlers.chat import speaker
from bot.telegram.jobs import ActiveJobs
from bot.telegram.reading import ReadingDesk, image_type, links_in, without_mention
from bot.telegram.turns import TurnRunner
from bot.texts import render, text
from memory.service import CompanionService, Place
from memory.records import User

def for_me(message: Message, me: TelegramUser) -> bool:
    return message.chat.type == "private" or addressed_to_bot(message, me.username, me.id)


def with_links(message: Message, settings: Settings) -> bool:
    return settings.fetch_links and bool(links_in(message.text))


def sees_pictures(message: Message, settings: Settings) -> bool:
    return settings.vision


def blind_picture(message: Message, settings: Settings) -> bool:
    """A photo with nothing to answer but the picture, and a model that can't see it. (A
    captioned photo still makes a turn: the words are answered, marked `[photo]`.)"""
    return not settings.vision and not message.caption


def make_router() -> Router:
    router = Router(name="documents")

    @router.message(F.document, for_me)
    async def upload(message: Message, bot: Bot, ctx: ChatContext, reading_desk: ReadingDesk, turns: TurnRunner,
                     settings: Settings, me: TelegramUser) -> None:
        if image_type(message) is not None:
            if not settings.vision:
                await message.reply(text("doc.image_without_vision", ctx.lang))
                return
            images = await reading_desk.images(bot, message)
            await turns.answer(bot, ctx, f"[image] {message.caption or ''}".strip(), message_id=message.message_id,
                               images=images)
            return
        result = await reading_desk.read_upload(bot, message, ctx)
        if result is not None and message.caption:
            await turns.answer(bot, ctx, without_mention(message.caption, me.username),
                               message_id=message.message_id, speaker_name=speaker(message, ctx))

    @router.message(F.text, with_links, for_me)
    async def links(message: Message, bot: Bot, ctx: ChatContext, reading_desk: ReadingDesk, turns: TurnRunner,
                    me: TelegramUser) -> None:
        await reading_desk.read_links(bot, ctx, links_in(message.text))
        content = describe(message, bot_username=me.username, bot_id=me.id) or message.text
        await turns.answer(bot, ctx, content, message_id=message.message_id, speaker_name=speaker(message, ctx))

    @router.message(F.photo, sees_pictures, for_me)
    async def photo(message: Message, bot: Bot, ctx: ChatContext, reading_desk: ReadingDesk, turns: TurnRunner,
                    me: TelegramUser) -> None:
        images = await reading_desk.images(bot, message)
        content = describe(message, bot_username=me.username, bot_id=me.id) or "[photo]"
        await turns.answer(bot, ctx, content, message_id=message.message_id, images=images,
                           speaker_name=speaker(message, ctx))

    @router.message(F.photo, blind_picture, for_me)
    async def photo_unseen(message: Message, lang: str) -> None:
        await message.reply(text("doc.image_without_vision", lang))

    @router.message(Command("docs"))
    async def docs(message: Message, ctx: ChatContext, reading_desk: ReadingDesk) -> None:
        content, keyboard = reading_desk.listing(ctx)
        await message.answer(content, reply_markup=keyboard)

    @router.callback_query(ToggleDocument.filter())
    async def toggle(callback: CallbackQuery, callback_data: ToggleDocument, ctx: ChatContext, place: Place,
                     service: CompanionService, reading_desk: ReadingDesk) -> None:
        note = service.toggle_document(place, callback_data.document_id)
        await callback.answer(render(note, place.lang) if note else "")
        if note is not None:
            _, keyboard = reading_desk.listing(ctx)
            await callback.message.edit_reply_markup(reply_markup=keyboard)

    @router.callback_query(CancelJob.filter())
    async def cancel(callback: CallbackQuery, callback_data: CancelJob, user: User, lang: str,
                     jobs: ActiveJobs) -> None:
        cancelled = jobs.cancel(callback_data.job_id, user.id)
        await callback.answer(text("doc.cancelling", lang) if cancelled else "")

    return router
