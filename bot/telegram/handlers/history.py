"""Looking back: /history (resume an older conversation), /search, /export."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.render import render, search_text
from bot.telegram.callbacks import ResumeConversation
from bot.telegram.context import ChatContext
from bot.telegram.views import history_keyboard
from bot.texts import text
from memory.service import CompanionService, Place


def make_router() -> Router:
    router = Router(name="history")

    @router.message(Command("history"))
    async def history(message: Message, place: Place, service: CompanionService) -> None:
        view, items = service.conversations(place)
        keyboard = history_keyboard(items)
        await message.answer(text("tg.history_title", place.lang, persona=view.persona.name) if keyboard
                             else text("tg.history_empty", place.lang), reply_markup=keyboard)

    @router.callback_query(ResumeConversation.filter())
    async def resume(callback: CallbackQuery, callback_data: ResumeConversation, place: Place,
                     service: CompanionService) -> None:
        await callback.answer()
        notice = service.resume(place, callback_data.conversation_id)
        if notice is not None:
            await callback.message.answer(render(notice, place.lang))

    @router.message(Command("search"))
    async def search(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        if not command.args:
            await message.answer(text("tg.search_usage", place.lang))
            return
        await message.answer(search_text(service.search(place, command.args), place.lang))

    @router.message(Command("export"))
    async def export(message: Message, bot: Bot, ctx: ChatContext, place: Place, service: CompanionService) -> None:
        exported = service.export(place)
        for file in exported.files:
            await bot.send_document(ctx.chat_id, BufferedInputFile(file.data, filename=file.name),
                                    message_thread_id=ctx.thread_id,
                                    caption=text("tg.export_caption", place.lang, count=exported.messages))

    return router
