"""Turns in a Telegram chat: the service layer's turn, streamed and shown in Telegram.

The policy (screening, the daily budget, the edit-too-old rule, what crash replay
does) is the service layer's (memory/service); this module only shows its outcome.
Each turn streams into a `TelegramReply` (drafts or edits, see streaming.py), then
sends the final text, tells the service which Telegram message holds the reply, and
adds buttons: paging through alternatives after /retry, or Retry after a failure.
The notices of the outcome (a screening warning, what was cut from a long message,
which fallback model answered) follow as short messages. Users who asked for voice
replies get the reply as a voice note too.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Awaitable, Callable, Sequence

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import RetryTurn, ShowAlternative, UseAlternative
from bot.telegram.context import ChatContext
from bot.telegram.send_budget import BudgetWaits
from bot.telegram.streaming import ActiveReplies, StreamSettings, TelegramReply
from bot.telegram.voice import VoiceDesk
from bot.texts import render, text
from memory.service import Alternatives, CompanionService, ReplayKind, TurnOutcome, TurnStatus
from memory.vision import ImageInput

log = logging.getLogger(__name__)
NO_REPLY = (TurnStatus.INPUT_REFUSED, TurnStatus.OVER_BUDGET, TurnStatus.NOTHING_TO_RETRY,
            TurnStatus.NOTHING_TO_CONTINUE, TurnStatus.EDIT_TOO_OLD)


class TurnRunner:
    def __init__(self, service: CompanionService, replies: ActiveReplies, *,
                 stream_settings: StreamSettings | None = None, voice: VoiceDesk | None = None) -> None:
        self.service = service
        self.replies = replies
        self.stream_settings = stream_settings or StreamSettings()
        self.voice = voice

    # -- operations -------------------------------------------------------------------
    async def answer(self, bot: Bot, ctx: ChatContext, content: str, *, message_id: int | None = None,
                     speaker_name: str | None = None, received_at: float | None = None,
                     images: Sequence[ImageInput] = ()) -> TurnOutcome:
        return await self._run(bot, ctx, message_id, received_at=received_at, operation=lambda reply: self.service.say(
            ctx.place, content, sink=reply, stop=reply.stopped, platform_message_id=message_id,
            speaker_name=speaker_name, images=images))

    async def answer_edit(self, bot: Bot, ctx: ChatContext, message_id: int, content: str, *,
                          speaker_name: str | None = None) -> TurnOutcome:
        return await self._run(bot, ctx, message_id, operation=lambda reply: self.service.edit(
            ctx.place, message_id, content, speaker_name=speaker_name, sink=reply, stop=reply.stopped))

    async def regenerate(self, bot: Bot, ctx: ChatContext, conversation_id: int | None = None) -> TurnOutcome:
        return await self._run(bot, ctx, None, operation=lambda reply: self.service.retry(
            ctx.place, conversation_id=conversation_id, sink=reply, stop=reply.stopped))

    async def continue_reply(self, bot: Bot, ctx: ChatContext) -> TurnOutcome:
        return await self._run(bot, ctx, None, continued=True, operation=lambda reply: self.service.continue_reply(
            ctx.place, sink=reply, stop=reply.stopped))

    async def already_handled(self, bot: Bot, ctx: ChatContext, message_id: int) -> bool:
        """For an update replayed after a crash: True when its message is already stored
        (then whatever the crash cut short is finished now: see `CompanionService.replay`)."""
        replay = self.service.replay(ctx.place, message_id)
        if replay.kind is ReplayKind.NEW:
            return False
        if replay.kind is ReplayKind.ANSWER_AGAIN:
            await self.regenerate(bot, ctx)
        elif replay.kind is ReplayKind.RESEND:
            view = TelegramReply(bot, ctx.chat_id, private=ctx.private, thread_id=ctx.thread_id,
                                 reply_to_message_id=None if ctx.private else message_id,
                                 settings=self.stream_settings)
            markup = self._retry_markup(ctx, replay.reply.conversation_id) if replay.failed \
                else self.alternatives_markup(replay.alternatives, ctx.lang)
            ids = await view.finish(replay.reply.content, markup)
            if ids:
                self.service.delivered(replay.reply.id, ids[0])
        return True

    # -- shared path ------------------------------------------------------------------
    async def _run(self, bot: Bot, ctx: ChatContext, message_id: int | None, *,
                   operation: Callable[[TelegramReply], Awaitable[TurnOutcome]],
                   continued: bool = False, received_at: float | None = None) -> TurnOutcome:
        reply = TelegramReply(bot, ctx.chat_id, private=ctx.private, thread_id=ctx.thread_id,
                              reply_to_message_id=None if ctx.private else message_id,
                              settings=self.stream_settings, registry=self.replies)
        started = time.monotonic()
        async with reply:
            outcome = await operation(reply)
            for notice in outcome.before:
                await self._say(bot, ctx, render(notice, ctx.lang))
            shown = await self._deliver(bot, ctx, reply, outcome, continued)
        if shown and self.voice is not None:
            await self.voice.say(bot, ctx, shown)
        if outcome.result is not None:
            self._log(ctx, outcome, received_at or started, started, reply.waits)
        return outcome

    async def _deliver(self, bot: Bot, ctx: ChatContext, reply: TelegramReply, outcome: TurnOutcome,
                       continued: bool) -> str | None:
        """Show the outcome; returns the reply text shown, if any."""
        if outcome.status is TurnStatus.MERGED:
            return None
        if outcome.status in NO_REPLY:
            await self._say(bot, ctx, render(outcome.error, ctx.lang))
            return None
        retry = self._retry_markup(ctx, outcome.conversation_id)
        if outcome.status in (TurnStatus.FAILED, TurnStatus.REPLY_REFUSED):
            await reply.fail(render(outcome.error, ctx.lang), retry)
            return None
        answered_by = [n for n in outcome.notices if n.key == "tg.answered_by"]
        footer = "".join("\n\n" + render(n, ctx.lang) for n in answered_by)
        ids = await reply.finish(outcome.shown + footer, self.alternatives_markup(outcome.alternatives, ctx.lang))
        if ids and not continued:
            self.service.delivered(outcome.reply.id, ids[0])
        for notice in outcome.notices:
            if notice not in answered_by:
                await self._say(bot, ctx, render(notice, ctx.lang))
        if outcome.status is TurnStatus.PARTIAL:  # say what happened, offer a retry
            await bot.send_message(ctx.chat_id, render(outcome.error, ctx.lang), reply_markup=retry,
                                   message_thread_id=ctx.thread_id)
        return outcome.shown

    @staticmethod
    async def _say(bot: Bot, ctx: ChatContext, line: str) -> None:
        await bot.send_message(ctx.chat_id, line, message_thread_id=ctx.thread_id)

    @staticmethod
    def _log(ctx: ChatContext, outcome: TurnOutcome, received_at: float, started: float, waits: BudgetWaits) -> None:
        """One structured line per turn: where the time went, the bot's own share apart, and
        how long its messages waited for the send budget (previews skipped for it)."""
        result = outcome.result
        turn_id = secrets.token_hex(4)
        total = (time.monotonic() - received_at) * 1000
        model = result.completion.latency_ms if result.completion else 0
        log.info("turn %s done", turn_id, extra={"turn": {
            "turn_id": turn_id, "chat_id": ctx.chat_id, "status": result.status,
            "queued_ms": round((started - received_at) * 1000, 1), "model_ms": model,
            "total_ms": round(total, 1), "overhead_ms": round(total - model, 1),
            "budget_wait_ms": round(waits.seconds * 1000, 1), "previews_skipped": waits.skipped_previews,
            "error": str(result.error.kind) if result.error else None}})

    @staticmethod
    def _retry_markup(ctx: ChatContext, conversation_id: int | None) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=text("tg.button_retry", ctx.lang),
            callback_data=RetryTurn(conversation_id=conversation_id or 0).pack())]])

    @staticmethod
    def alternatives_markup(alternatives: Alternatives | None, lang: str) -> InlineKeyboardMarkup | None:
        """◀ i/n ▶ under a reply that has alternatives, and ✓ when the shown one is not in use."""
        if alternatives is None:
            return None
        rows = [[
            InlineKeyboardButton(text="◀", callback_data=ShowAlternative(reply_id=alternatives.previous_id).pack()),
            InlineKeyboardButton(text=f"{alternatives.index + 1}/{alternatives.count}",
                                 callback_data=ShowAlternative(reply_id=alternatives.shown_id).pack()),
            InlineKeyboardButton(text="▶", callback_data=ShowAlternative(reply_id=alternatives.next_id).pack()),
        ]]
        if not alternatives.in_use:
            rows.append([InlineKeyboardButton(text=text("tg.button_use", lang),
                                              callback_data=UseAlternative(reply_id=alternatives.shown_id).pack())])
        return InlineKeyboardMarkup(inline_keyboard=rows)
