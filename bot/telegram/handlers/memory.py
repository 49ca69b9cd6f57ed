"""/memory: the pinned facts the character keeps about you (and this chat), which you can
read, add to, correct and delete. Changes apply from your next message on.

    /memory                  list them, each with a delete button
    /memory add TEXT         add one
    /memory edit N TEXT      replace fact number N
    /memory delete N         delete fact number N
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.chat_commands import memory_change
from bot.render import facts_text, render
from bot.telegram.callbacks import DeleteFact
from bot.texts import text
from memory.service import CompanionService, Place


def facts_view(service: CompanionService, place: Place) -> tuple[str, InlineKeyboardMarkup | None]:
    view = service.facts(place)
    if not view.facts:
        return facts_text(view, place.lang), None
    buttons = [InlineKeyboardButton(text=f"🗑 {n}", callback_data=DeleteFact(fact_id=fact.id).pack())
               for n, fact in enumerate(view.facts, 1)]
    rows = [buttons[i:i + 5] for i in range(0, len(buttons), 5)]
    return facts_text(view, place.lang), InlineKeyboardMarkup(inline_keyboard=rows)


def make_router() -> Router:
    router = Router(name="memory")

    @router.message(Command("memory"))
    async def memory_command(message: Message, command: CommandObject, place: Place,
                             service: CompanionService) -> None:
        if command.args:
            await message.answer(render(memory_change(service, place, command.args), place.lang))
            return
        body, keyboard = facts_view(service, place)
        await message.answer(body, reply_markup=keyboard)

    @router.callback_query(DeleteFact.filter())
    async def delete_button(callback: CallbackQuery, callback_data: DeleteFact, place: Place,
                            service: CompanionService) -> None:
        deleted = service.delete_fact_id(place, callback_data.fact_id)
        await callback.answer(text("tg.memory_deleted_short", place.lang) if deleted else None)
        body, keyboard = facts_view(service, place)
        await callback.message.edit_text(body, reply_markup=keyboard)

    return router
