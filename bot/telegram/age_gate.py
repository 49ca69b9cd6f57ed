"""The age confirmation of an open bot (COMPANION_AGE_CONFIRMATION=true).

An outer middleware after `People`: a user who has not confirmed their age gets the
question with two buttons instead of an answer, and costs no model call; admins are never
asked. The answer is kept with the user's choices (`user_choices.age_confirmed_at`), so it
is asked once. In groups only messages addressed to the bot are held; chatter that is just
kept as context passes.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, TelegramObject, Update

from bot.telegram.callbacks import ConfirmAge
from bot.telegram.describe import addressed_to_bot
from bot.texts import text
from memory.user_choices import UserChoices

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def age_keyboard(lang: str, age: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=text("tg.age_yes", lang, age=age), callback_data=ConfirmAge(adult=True).pack()),
        InlineKeyboardButton(text=text("tg.age_no", lang, age=age), callback_data=ConfirmAge(adult=False).pack()),
    ]])


class AgeGate(BaseMiddleware):
    def __init__(self, choices: UserChoices, *, minimum_age: int) -> None:
        self.choices = choices
        self.minimum_age = minimum_age

    async def __call__(self, handler: Handler, update: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(update, Update)
        user, lang = data.get("user"), data.get("lang", "en")
        if user is None or data.get("is_admin"):
            return await handler(update, data)
        query = update.callback_query
        answer = _age_answer(query)
        if answer is not None:
            await self._answered(query, answer, user.id, lang)
            return None
        if self.choices.of(user.id).age_confirmed_at:
            return await handler(update, data)
        message = update.message
        if message is not None and message.chat.type != "private" and not addressed_to_bot(
                message, data["me"].username, data["me"].id):
            return await handler(update, data)  # group chatter, kept as context only
        if message is not None:
            await _quietly(message.answer(text("tg.age_prompt", lang, age=self.minimum_age),
                                          reply_markup=age_keyboard(lang, self.minimum_age)))
        elif query is not None:
            await _quietly(query.answer(text("tg.age_prompt", lang, age=self.minimum_age), show_alert=True))
        return None

    async def _answered(self, query: CallbackQuery, answer: ConfirmAge, user_id: int, lang: str) -> None:
        if answer.adult:
            self.choices.confirm_age(user_id)
        await _quietly(query.answer())
        if query.message is not None:
            await _quietly(query.message.edit_text(text("tg.age_confirmed" if answer.adult else "tg.age_declined",
                                                        lang)))


def _age_answer(query: CallbackQuery | None) -> ConfirmAge | None:
    if query is None or not query.data:
        return None
    try:
        return ConfirmAge.unpack(query.data)
    except (TypeError, ValueError):
        return None


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except TelegramAPIError as exc:
        log.info("age gate: Telegram call failed: %s", exc)
