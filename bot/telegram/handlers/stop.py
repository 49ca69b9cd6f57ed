"""Stopping a reply mid-stream: the Stop button under an edited preview, or Telegram's own
stop button on a draft (a `stopped_message_generation` update). The partial text is kept."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, MessageGenerationStopped

from bot.telegram.streaming import ActiveReplies, StopReply

def make_router() -> Router:
    router = Router(name="stop")

    @router.callback_query(StopReply.filter())
    async def stop_button(callback: CallbackQuery, callback_data: StopReply, replies: ActiveReplies) -> None:
        replies.stop(callback.message.chat.id, callback_data.reply_id)
        await callback.answer()

    @router.stopped_message_generation()
    async def stopped_draft(event: MessageGenerationStopped, replies: ActiveReplies) -> None:
        replies.stop(event.chat.id, event.draft_id)

    return router
