"""The user's own settings and data: /usage, /tz, /lang, /forget."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.settings import Settings
from bot.telegram.callbacks import ForgetMe
from bot.telegram.views import forget_keyboard, usage_text
from bot.texts import text
from memory.store import Store, User, to_text

router = Router(name="account")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?00)?$", re.IGNORECASE)


def parse_zone(value: str) -> str | None:
    """An IANA zone name, or a whole-hour offset like +8 / UTC-5 (as Etc/GMT∓N)."""
    value = value.strip()
    if match := _OFFSET.match(value):
        sign, hours = match.groups()
        if int(hours) > 14:
            return None
        return "UTC" if int(hours) == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{int(hours)}"
    try:
        return ZoneInfo(value).key
    except (ZoneInfoNotFoundError, ValueError):
        return None


@router.message(Command("usage"))
async def usage(message: Message, user: User, lang: str, store: Store, settings: Settings) -> None:
    zone = ZoneInfo(user.timezone or settings.timezone)
    midnight = datetime.combine(store.clock().astimezone(zone).date(), time(0), tzinfo=zone)
    await message.answer(usage_text(store, settings, user, lang, to_text(midnight)))


@router.message(Command("tz"))
async def timezone_(message: Message, command: CommandObject, user: User, lang: str, store: Store,
                    settings: Settings) -> None:
    if not command.args:
        await message.answer(text("tg.tz_current", lang, zone=user.timezone or settings.timezone))
        return
    zone = parse_zone(command.args)
    if zone is None:
        await message.answer(text("tg.tz_invalid", lang, value=command.args.strip()))
        return
    store.update_user(user.id, timezone=zone)
    now = store.clock().astimezone(ZoneInfo(zone))
    await message.answer(text("tg.tz_set", lang, zone=zone, time=f"{now:%Y-%m-%d %H:%M}"))


@router.message(Command("lang"))
async def language(message: Message, command: CommandObject, user: User, lang: str, store: Store) -> None:
    choice = (command.args or "").strip().lower()
    if choice not in ("en", "zh", "auto"):
        await message.answer(text("tg.lang_usage", lang))
        return
    store.update_user(user.id, language_override=None if choice == "auto" else choice)
    await message.answer(text("tg.lang_set", choice if choice != "auto" else user.language))


@router.message(Command("forget"))
async def forget(message: Message, lang: str) -> None:
    await message.answer(text("tg.forget_confirm", lang), reply_markup=forget_keyboard(lang))


@router.callback_query(ForgetMe.filter())
async def forget_confirmed(callback: CallbackQuery, callback_data: ForgetMe, user: User, lang: str,
                           store: Store) -> None:
    await callback.answer()
    if not callback_data.confirmed:
        await callback.message.edit_text(text("tg.forget_cancelled", lang))
        return
    store.forget_user(user.id)
    await callback.message.edit_text(text("tg.forgotten", lang))
