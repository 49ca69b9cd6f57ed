"""The user's own settings and data: /usage, /tz, /lang, /forget (confirmed with buttons)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.render import render, usage_text
from bot.telegram.callbacks import ForgetMe
from bot.telegram.views import forget_keyboard
from bot.texts import text
from memory.service import CompanionService, Place


def make_router() -> Router:
    router = Router(name="account")

    @router.message(Command("usage"))
    async def usage(message: Message, place: Place, service: CompanionService) -> None:
        await message.answer(usage_text(service.usage(place), place.lang))

    @router.message(Command("tz"))
    async def timezone_(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        await message.answer(render(service.timezone(place, command.args), place.lang))

    @router.message(Command("lang"))
    async def language(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        await message.answer(render(service.set_language(place, command.args or ""), place.lang))

    @router.message(Command("forget"))
    async def forget(message: Message, lang: str) -> None:
        await message.answer(text("tg.forget_confirm", lang), reply_markup=forget_keyboard(lang))

    @router.callback_query(ForgetMe.filter())
    async def forget_confirmed(callback: CallbackQuery, callback_data: ForgetMe, place: Place,
                               service: CompanionService) -> None:
        await callback.answer()
        if not callback_data.confirmed:
            await callback.message.edit_text(text("tg.forget_cancelled", place.lang))
            return
        await callback.message.edit_text(render(service.forget(place), place.lang))

    return router
