"""Characters of an attached novel: /characters, the pick buttons, card export, /asof N."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.telegram.callbacks import ExportCard, PickCharacter
from bot.telegram.context import ChatContext
from bot.telegram.handlers.commands import callback_context
from bot.telegram.novels import NovelDesk
from bot.texts import text
from memory.store import User

router = Router(name="characters")


@router.message(Command("characters"))
async def characters(message: Message, bot: Bot, user: User, lang: str, novel_desk: NovelDesk) -> None:
    if message.chat.type != "private":
        await message.answer(text("doc.private_only", lang))
        return
    await novel_desk.list_characters(bot, ChatContext.of(message, user, lang))


@router.callback_query(PickCharacter.filter())
async def pick(callback: CallbackQuery, callback_data: PickCharacter, bot: Bot, user: User, lang: str,
               novel_desk: NovelDesk) -> None:
    await callback.answer()
    await novel_desk.pick(bot, callback_context(callback, user, lang), callback_data)


@router.callback_query(ExportCard.filter())
async def card(callback: CallbackQuery, callback_data: ExportCard, bot: Bot, user: User, lang: str,
               novel_desk: NovelDesk) -> None:
    await callback.answer()
    await novel_desk.send_card(bot, callback_context(callback, user, lang), callback_data.persona_id)


@router.message(Command("asof"))
async def asof(message: Message, command: CommandObject, bot: Bot, user: User, lang: str,
               novel_desk: NovelDesk) -> None:
    await novel_desk.set_timeline(bot, ChatContext.of(message, user, lang), command.args)
