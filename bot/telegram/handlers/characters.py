"""Characters of an attached novel: /characters, the pick buttons, card export, /asof N."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.telegram.callbacks import ExportCard, PickCharacter
from bot.telegram.context import ChatContext
from bot.telegram.novels import NovelDesk
from bot.texts import text

def make_router() -> Router:
    router = Router(name="characters")

    @router.message(Command("characters"))
    async def characters(message: Message, bot: Bot, ctx: ChatContext, novel_desk: NovelDesk) -> None:
        if not ctx.private:
            await message.answer(text("doc.private_only", ctx.lang))
            return
        await novel_desk.list_characters(bot, ctx)

    @router.callback_query(PickCharacter.filter())
    async def pick(callback: CallbackQuery, callback_data: PickCharacter, bot: Bot, ctx: ChatContext,
                   novel_desk: NovelDesk) -> None:
        await callback.answer()
        await novel_desk.pick(bot, ctx, callback_data)

    @router.callback_query(ExportCard.filter())
    async def card(callback: CallbackQuery, callback_data: ExportCard, bot: Bot, ctx: ChatContext,
                   novel_desk: NovelDesk) -> None:
        await callback.answer()
        await novel_desk.send_card(bot, ctx, callback_data.persona_id)

    @router.message(Command("asof"))
    async def asof(message: Message, command: CommandObject, bot: Bot, ctx: ChatContext,
                   novel_desk: NovelDesk) -> None:
        await novel_desk.set_timeline(bot, ctx, command.args)

    return router
