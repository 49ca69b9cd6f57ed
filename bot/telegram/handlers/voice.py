"""/voice: the user's replies also come as voice notes (private chats, when the operator
set a speech model). Voice messages themselves are handled with the chat (handlers/chat.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.render import render
from memory.service import CompanionService, Place


def make_router() -> Router:
    router = Router(name="voice")

    @router.message(Command("voice"))
    async def voice_replies(message: Message, command: CommandObject, place: Place,
                            service: CompanionService) -> None:
        await message.answer(render(service.voice_replies(place, command.args or ""), place.lang))

    return router
