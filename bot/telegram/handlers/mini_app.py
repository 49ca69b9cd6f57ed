"""/app: a button that opens the Mini App (bot/web), when the operator set COMPANION_WEB_URL.
The bot's menu button opens it too (set at start-up, `app.set_menu_button`)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, WebAppInfo

from bot.settings import Settings
from bot.texts import text
from memory.service import Place


def make_router() -> Router:
    router = Router(name="mini_app")

    @router.message(Command("app"))
    async def open_app(message: Message, place: Place, settings: Settings) -> None:
        if not settings.web_url:
            await message.answer(text("tg.app_not_set", place.lang))
        elif not place.private:  # Telegram allows web_app buttons in private chats only
            await message.answer(text("tg.app_private_only", place.lang))
        else:
            button = InlineKeyboardButton(text=text("tg.app_button", place.lang),
                                          web_app=WebAppInfo(url=settings.web_url))
            await message.answer(text("tg.app_open", place.lang),
                                 reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))

    return router
