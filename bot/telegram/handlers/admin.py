"""Operator commands for the bot's admins: /stats and /allow."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.render import render
from bot.texts import text
from memory.service import CompanionService


def make_router() -> Router:
    router = Router(name="admin")

    @router.message(Command("stats"))
    async def stats(message: Message, lang: str, is_admin: bool, service: CompanionService) -> None:
        await message.answer(render(service.stats(), lang) if is_admin else text("tg.admins_only", lang))

    @router.message(Command("allow"))
    async def allow(message: Message, command: CommandObject, lang: str, is_admin: bool,
                    service: CompanionService) -> None:
        value = (command.args or "").strip()
        if not is_admin:
            await message.answer(text("tg.admins_only", lang))
        elif not value.lstrip("-").isdigit():
            await message.answer(text("tg.allow_usage", lang))
        else:
            await message.answer(render(service.allow("tg", value), lang))

    return router
