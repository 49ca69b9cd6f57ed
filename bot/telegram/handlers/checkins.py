"""/checkin: the user lets the character write first (on, a rhythm, quiet hours, off).
The rules live in the service layer (`CompanionService.checkin`, memory/checkins.py); the
loop that sends them in bot/telegram/checkin_loop.py."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.render import render
from memory.service import CompanionService, Place


def make_router() -> Router:
    router = Router(name="checkins")

    @router.message(Command("checkin"))
    async def checkin(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        await message.answer(render(service.checkin(place, command.args or ""), place.lang))

    return router
