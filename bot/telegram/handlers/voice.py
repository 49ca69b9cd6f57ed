"""/voice: the user's replies also come as voice notes (private chats, when the operator
set a speech model). Voice messages themselves are handled with the chat (handlers/chat.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.telegram.voice import VoiceDesk
from bot.texts import text
from memory.store import User

router = Router(name="voice")


@router.message(Command("voice"))
async def voice_replies(message: Message, command: CommandObject, user: User, lang: str, voice: VoiceDesk) -> None:
    if not voice.speaks:
        await message.answer(text("tg.voice_not_available", lang))
        return
    if message.chat.type != "private":
        await message.answer(text("tg.voice_private_only", lang))
        return
    choice = (command.args or "").strip().lower()
    if choice in ("on", "off", "开", "关"):
        voice.choices.set_voice_replies(user.id, choice in ("on", "开"))
        await message.answer(text("tg.voice_on" if choice in ("on", "开") else "tg.voice_off", lang))
        return
    state = text("tg.voice_state_on" if voice.choices.of(user.id).voice_replies else "tg.voice_state_off", lang)
    listening = "" if voice.listens else text("tg.voice_not_listening", lang)
    await message.answer(text("tg.voice_status", lang, state=state, listening=listening))
