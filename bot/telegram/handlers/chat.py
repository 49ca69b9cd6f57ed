"""Messages: what the user writes, sends or says becomes a turn; edits re-answer the last one.

Voice notes, audio files and video notes are transcribed (bot/telegram/voice.py) and
answered like text, stored with a mark that they were spoken.

In groups the bot answers when addressed (mention, reply to it, or a command); other
messages it can see (privacy mode off) are kept as context of who said what, without a
model call. A message replayed after a crash is handled by ChatPreamble first.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.types import User as TelegramUser

from bot.telegram.context import ChatContext
from bot.telegram.describe import addressed_to_bot, describe
from bot.telegram.turns import TurnRunner
from bot.telegram.voice import VoiceDesk
from bot.texts import text
from memory.service import CompanionService, Place

SPOKEN = F.voice | F.audio | F.video | F.video_note


def speaker(message: Message, ctx: ChatContext) -> str | None:
    """Who said it, in a group (the /me name first); None in a private chat."""
    return None if ctx.private else (ctx.user.me_name or message.from_user.full_name)


def _content(message: Message, place: Place, service: CompanionService, me: TelegramUser) -> str | None:
    last_reply = service.last_reply(place)
    return describe(message, bot_username=me.username, bot_id=me.id,
                    last_bot_message_id=last_reply.platform_message_id if last_reply else None)


def make_router() -> Router:
    router = Router(name="chat")

    @router.message(SPOKEN)
    async def spoken(message: Message, bot: Bot, ctx: ChatContext, turns: TurnRunner, me: TelegramUser,
                     voice: VoiceDesk, received_at: float | None = None) -> None:
        if not ctx.private and not addressed_to_bot(message, me.username, me.id):
            return
        words = await voice.hear(bot, message, ctx.lang)
        if words is not None:
            await turns.answer(bot, ctx, words, message_id=message.message_id, speaker_name=speaker(message, ctx),
                               received_at=received_at)

    @router.message(F.chat.type == "private")
    async def private_message(message: Message, bot: Bot, ctx: ChatContext, place: Place,
                              service: CompanionService, turns: TurnRunner, me: TelegramUser,
                              received_at: float | None = None) -> None:
        content = _content(message, place, service, me)
        if content is None:
            await message.answer(text("tg.file_unsupported", ctx.lang))
            return
        await turns.answer(bot, ctx, content, message_id=message.message_id, received_at=received_at)

    @router.message(F.chat.type.in_({"group", "supergroup"}))
    async def group_message(message: Message, bot: Bot, ctx: ChatContext, place: Place,
                            service: CompanionService, turns: TurnRunner, me: TelegramUser, allowed: bool = True,
                            received_at: float | None = None) -> None:
        content = _content(message, place, service, me)
        if content is None:
            return
        if allowed and addressed_to_bot(message, me.username, me.id):
            await turns.answer(bot, ctx, content, message_id=message.message_id, speaker_name=speaker(message, ctx),
                               received_at=received_at)
        else:
            await service.remember(place, content, speaker_name=speaker(message, ctx),
                                   platform_message_id=message.message_id)

    @router.edited_message(F.text)
    async def edited_message(message: Message, bot: Bot, ctx: ChatContext, turns: TurnRunner,
                             me: TelegramUser) -> None:
        if ctx.private or addressed_to_bot(message, me.username, me.id):
            content = describe(message, bot_username=me.username, bot_id=me.id) or message.text
            await turns.answer_edit(bot, ctx, message.message_id, content, speaker_name=speaker(message, ctx))

    return router
