"""Voice in Telegram: voice notes, audio files and round video notes are downloaded and
transcribed (memory/audio.py), then answered like text; users who turned voice replies
on (/voice, private chats) also get each reply as a voice note (sendVoice, Ogg Opus).

Everything that can go wrong with a voice message (no transcription model, a file over
Telegram's download limit, a failed download or transcription, silence) ends in one
short message saying so, and no turn. A voice reply that cannot be made is reported in
one line; the text reply has already arrived.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile, Message
from aiohttp import ClientError

from bot.telegram.context import ChatContext
from bot.texts import text
from memory.audio import AudioClient, AudioError, speakable, spoken, upload_name
from memory.user_choices import UserChoices

log = logging.getLogger(__name__)
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile limit for bots


class VoiceDesk:
    def __init__(self, audio: AudioClient | None, choices: UserChoices) -> None:
        self.audio = audio
        self.choices = choices

    @property
    def listens(self) -> bool:
        return self.audio is not None and self.audio.listens

    @property
    def speaks(self) -> bool:
        return self.audio is not None and self.audio.speaks

    async def hear(self, bot: Bot, message: Message, lang: str) -> str | None:
        """The message's words, marked as spoken; None once the user was told why not."""
        media = message.voice or message.audio or message.video_note
        if media is None:
            await message.reply(text("tg.video_unsupported", lang))
            return None
        if not self.listens:
            await message.reply(text("tg.voice_unsupported", lang))
            return None
        if (media.file_size or 0) > DOWNLOAD_LIMIT:
            await message.reply(text("tg.voice_too_long", lang))
            return None
        await _quietly(bot.send_chat_action(message.chat.id, "typing", message_thread_id=message.message_thread_id))
        try:
            file = await bot.get_file(media.file_id)
            data = (await bot.download_file(file.file_path)).read()
        except (TelegramAPIError, ClientError, OSError) as exc:  # OSError: timeouts, local Bot API files
            log.warning("could not download voice message %s: %s", message.message_id, exc)
            await message.reply(text("tg.voice_download_failed", lang))
            return None
        name = upload_name(file.file_path, getattr(media, "file_name", None), getattr(media, "mime_type", None))
        try:
            words = await self.audio.transcribe(data, name)
        except AudioError as exc:
            log.warning("transcription failed for message %s: %s", message.message_id, exc)
            await message.reply(text("tg.voice_transcription_failed", lang))
            return None
        if not words:
            await message.reply(text("tg.voice_silent", lang))
            return None
        return spoken(words)

    def wants_voice(self, ctx: ChatContext) -> bool:
        return self.speaks and ctx.private and self.choices.of(ctx.user.id).voice_replies

    async def say(self, bot: Bot, ctx: ChatContext, reply_text: str) -> None:
        """Send the reply as a voice note too, if this user asked for that."""
        words = speakable(reply_text)
        if not words or not self.wants_voice(ctx):
            return
        await _quietly(bot.send_chat_action(ctx.chat_id, "record_voice", message_thread_id=ctx.thread_id))
        try:
            note = await self.audio.speak(words)
            await bot.send_voice(ctx.chat_id, BufferedInputFile(note.data, filename="reply.ogg"),
                                 duration=note.seconds, message_thread_id=ctx.thread_id)
        except (AudioError, TelegramAPIError) as exc:
            log.warning("voice reply failed in chat %s: %s", ctx.chat_id, exc)
            await _quietly(bot.send_message(ctx.chat_id, text("tg.voice_reply_failed", ctx.lang),
                                            message_thread_id=ctx.thread_id))


async def _quietly(call) -> None:
    try:
        await call
    except TelegramAPIError as exc:  # a chat action or a notice is not essential
        log.info("non-essential Telegram call failed: %s", exc)
