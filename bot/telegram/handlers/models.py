"""/model: the user picks the model that answers them from the operator's menu
(COMPANION_MODELS), in private chats; a persona that names its own model keeps it.
`/model default` goes back to the operator's default (see memory/routing.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.render import render
from bot.telegram.callbacks import ChooseModel
from bot.texts import text
from memory.routing import ModelMenu
from memory.service import CompanionService, Place


def model_keyboard(menu: ModelMenu, current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=("● " if option.name == current else "") + f"{option.name} · {option.window // 1000}k",
        callback_data=ChooseModel(index=index).pack())] for index, option in enumerate(menu.options)])


def make_router() -> Router:
    router = Router(name="models")

    @router.message(Command("model"))
    async def model(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        wanted = (command.args or "").strip()
        refusal = service.model_menu(place)
        if wanted or refusal is not None:
            await message.answer(render(refusal or service.choose_model(place, wanted), place.lang))
            return
        current = service.current_model(place)
        await message.answer(text("tg.model_menu", place.lang, current=current),
                             reply_markup=model_keyboard(service.models, current))

    @router.callback_query(ChooseModel.filter())
    async def model_chosen(callback: CallbackQuery, callback_data: ChooseModel, place: Place,
                           service: CompanionService) -> None:
        await callback.answer()
        if callback_data.index >= len(service.models.options) or service.model_menu(place) is not None:
            return
        note = service.choose_model(place, callback_data.index)
        await callback.message.edit_text(render(note, place.lang), reply_markup=model_keyboard(
            service.models, service.models.options[callback_data.index].name))

    return router
