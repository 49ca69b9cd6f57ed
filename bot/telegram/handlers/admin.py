"""Operator commands for the bot's admins: /stats and /allow."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.texts import text
from memory.store import Store, to_text

router = Router(name="admin")


@router.message(Command("stats"))
async def stats(message: Message, lang: str, is_admin: bool, store: Store) -> None:
    if not is_admin:
        await message.answer(text("tg.admins_only", lang))
        return
    day = store.usage_totals(since=to_text(store.clock() - timedelta(days=1)))
    share = day["cached_tokens"] / day["prompt_tokens"] if day["prompt_tokens"] else 0.0
    await message.answer(text("tg.stats", lang, **store.counts(), requests=day["requests"],
                              prompt=day["prompt_tokens"], cached_share=f"{share:.0%}",
                              completion=day["completion_tokens"]))


@router.message(Command("allow"))
async def allow(message: Message, command: CommandObject, lang: str, is_admin: bool, store: Store) -> None:
    if not is_admin:
        await message.answer(text("tg.admins_only", lang))
        return
    value = (command.args or "").strip()
    if not value.lstrip("-").isdigit():
        await message.answer(text("tg.allow_usage", lang))
        return
    user = store.ensure_user("tg", value)
    store.update_user(user.id, allowed=1, refused_at=None)
    await message.answer(text("tg.allowed", lang, user_id=value))
