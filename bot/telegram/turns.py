"""Running engine turns in a Telegram chat: the glue between handlers and the engine.

Each operation streams into a `TelegramReply` (drafts or edits, see streaming.py), then
sends the final text, stores the Telegram message id with the reply, and adds buttons:
paging through alternatives after /retry, or Retry after a failure. A user over their
daily token budget is told so without a model call.

With the safety hook on (memory/moderation.py), what the user wrote is screened before it
is stored, and the reply before it is shown; a reply that a refuse policy may withhold is
not previewed while it is written. A reply from the fallback endpoint says which model
answered. Users who asked for voice replies get the reply as a voice note too.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, time as clock_time
from typing import Awaitable, Callable, Sequence
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import RetryTurn, ShowAlternative, UseAlternative
from bot.telegram.context import ChatContext
from bot.telegram.send_budget import BudgetWaits
from bot.telegram.streaming import ActiveReplies, StreamSettings, TelegramReply
from bot.telegram.voice import VoiceDesk
from bot.texts import error_text, text
from memory.engine import Engine, TurnResult
from memory.moderation import SafetyGate, Screening
from memory.store import Message, to_text
from memory.vision import ImageInput

log = logging.getLogger(__name__)


class TurnRunner:
    def __init__(self, engine: Engine, replies: ActiveReplies, *, stream_settings: StreamSettings | None = None,
                 daily_tokens: int | None = None, cached_token_weight: float = 0.1,
                 default_timezone: str = "UTC", admins: list[int] | None = None,
                 safety: SafetyGate | None = None, voice: VoiceDesk | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.replies = replies
        self.stream_settings = stream_settings or StreamSettings()
        self.daily_tokens = daily_tokens
        self.cached_token_weight = cached_token_weight
        self.default_timezone = default_timezone
        self.admins = set(admins or [])
        self.safety = safety
        self.voice = voice

    # -- operations -------------------------------------------------------------------
    async def answer(self, bot: Bot, ctx: ChatContext, content: str, *, message_id: int | None = None,
                     speaker_name: str | None = None, received_at: float | None = None,
                     images: Sequence[ImageInput] = ()) -> TurnResult | None:
        conversation = ctx.conversation(self.engine)
        if not await self._admitted(bot, ctx, content, conversation.id):
            return None
        return await self._run(bot, ctx, message_id, received_at=received_at, operation=lambda reply: self.engine.submit(
            conversation.id, content, user=ctx.user, speaker_name=speaker_name,
            platform_message_id=message_id, sink=reply, stop=reply.stopped, images=images))

    async def answer_edit(self, bot: Bot, ctx: ChatContext, message_id: int, content: str, *,
                          speaker_name: str | None = None) -> TurnResult | None:
        conversation = ctx.conversation(self.engine)
        edited = self.store.find_by_platform_id(conversation.id, message_id, role="user")
        users, _ = self.store.last_exchange(conversation.id)
        if edited is None or edited.id not in {m.id for m in users}:
            await bot.send_message(ctx.chat_id, text("tg.edit_too_old", ctx.lang), message_thread_id=ctx.thread_id)
            return None
        if not await self._admitted(bot, ctx, content, conversation.id):
            return None
        return await self._run(bot, ctx, message_id, operation=lambda reply: self.engine.answer_edit(
            conversation.id, message_id, content, user=ctx.user, speaker_name=speaker_name,
            sink=reply, stop=reply.stopped))

    async def regenerate(self, bot: Bot, ctx: ChatContext, conversation_id: int | None = None) -> TurnResult | None:
        conversation_id = conversation_id or ctx.conversation(self.engine).id
        users, _ = self.store.last_exchange(conversation_id)
        if not users:
            await bot.send_message(ctx.chat_id, text("tg.nothing_to_retry", ctx.lang), message_thread_id=ctx.thread_id)
            return None
        return await self._run(bot, ctx, None, operation=lambda reply: self.engine.regenerate(
            conversation_id, user=ctx.user, sink=reply, stop=reply.stopped))

    async def continue_reply(self, bot: Bot, ctx: ChatContext) -> TurnResult | None:
        conversation = ctx.conversation(self.engine)
        if self.store.last_exchange(conversation.id)[1] is None:
            await bot.send_message(ctx.chat_id, text("tg.nothing_to_continue", ctx.lang),
                                   message_thread_id=ctx.thread_id)
            return None
        return await self._run(bot, ctx, None, operation=lambda reply: self.engine.continue_reply(
            conversation.id, user=ctx.user, sink=reply, stop=reply.stopped), continued=True)

    async def already_handled(self, bot: Bot, ctx: ChatContext, message_id: int) -> bool:
        """For an update replayed after a crash: True when its message is already stored.
        If it is in the latest exchange, the crash may have cut that exchange short: a
        message never answered is answered now, and a reply stored but never sent (it has
        no Telegram message id yet) is sent now."""
        conversation = ctx.conversation(self.engine)
        stored = self.store.find_by_platform_id(conversation.id, message_id, role="user")
        if stored is None:
            return False
        users, reply = self.store.last_exchange(conversation.id)
        if stored.id not in {m.id for m in users}:
            return True
        if reply is None:
            await self.regenerate(bot, ctx, conversation.id)
        elif reply.platform_message_id is None:
            await self._send_stored(bot, ctx, reply, failed=any(m.status == "failed" for m in users),
                                    message_id=message_id)
        return True

    async def _send_stored(self, bot: Bot, ctx: ChatContext, reply: Message, *, failed: bool,
                           message_id: int) -> None:
        """Send a reply the engine stored before a crash stopped its delivery; a reply cut
        short (its messages failed) gets the Retry button."""
        view = TelegramReply(bot, ctx.chat_id, private=ctx.private, thread_id=ctx.thread_id,
                             reply_to_message_id=None if ctx.private else message_id, settings=self.stream_settings)
        markup = self._retry_markup(ctx, TurnResult("failed")) if failed else self.alternatives_markup(reply, ctx.lang)
        ids = await view.finish(reply.content, markup)
        if ids:
            self.store.set_platform_message_id(reply.id, ids[0])

    # -- shared path ------------------------------------------------------------------
    async def _run(self, bot: Bot, ctx: ChatContext, message_id: int | None, *,
                   operation: Callable[[TelegramReply], Awaitable[TurnResult]],
                   continued: bool = False, received_at: float | None = None) -> TurnResult | None:
        if self.over_budget(ctx):
            await bot.send_message(ctx.chat_id, text("tg.budget_exhausted", ctx.lang, limit=self.daily_tokens),
                                   message_thread_id=ctx.thread_id)
            return None
        reply = TelegramReply(bot, ctx.chat_id, private=ctx.private, thread_id=ctx.thread_id,
                              reply_to_message_id=None if ctx.private else message_id,
                              settings=self.stream_settings, registry=self.replies)
        started = time.monotonic()
        turn_id = secrets.token_hex(4)
        held_back = self.safety is not None and self.safety.holds_replies_back
        async with reply:
            result = await operation(_Unshown(reply) if held_back else reply)
            screening = await self.screen_reply(ctx, result)
            shown = await self._deliver(bot, ctx, reply, result, continued, screening)
        if shown and self.voice is not None:
            await self.voice.say(bot, ctx, shown)
        self._log(turn_id, ctx, result, received_at or started, started, reply.waits)
        return result

    async def _admitted(self, bot: Bot, ctx: ChatContext, content: str, conversation_id: int) -> bool:
        """The safety hook on what the user wrote: refused input is neither stored nor answered."""
        if self.safety is None:
            return True
        screening = await self.safety.screen_input(content, user_id=ctx.user.id, conversation_id=conversation_id)
        if screening.refused or screening.warned:
            key = "tg.input_refused" if screening.refused else "tg.input_warned"
            await bot.send_message(ctx.chat_id, text(key, ctx.lang), message_thread_id=ctx.thread_id)
        return not screening.refused

    async def screen_reply(self, ctx: ChatContext, result: TurnResult) -> Screening | None:
        if self.safety is None or result.reply is None or result.status == "merged":
            return None
        return await self.safety.screen_output(result.reply.content, user_id=ctx.user.id,
                                               conversation_id=result.reply.conversation_id,
                                               message_id=result.reply.id)

    @staticmethod
    def _log(turn_id: str, ctx: ChatContext, result: TurnResult, received_at: float, started: float,
             waits: BudgetWaits) -> None:
        """One structured line per turn: where the time went, the bot's own share apart, and
        how long its messages waited for the send budget (previews skipped for it)."""
        total = (time.monotonic() - received_at) * 1000
        model = result.completion.latency_ms if result.completion else 0
        log.info("turn %s done", turn_id, extra={"turn": {
            "turn_id": turn_id, "chat_id": ctx.chat_id, "status": result.status,
            "queued_ms": round((started - received_at) * 1000, 1), "model_ms": model,
            "total_ms": round(total, 1), "overhead_ms": round(total - model, 1),
            "budget_wait_ms": round(waits.seconds * 1000, 1), "previews_skipped": waits.skipped_previews,
            "error": str(result.error.kind) if result.error else None}})

    async def _deliver(self, bot: Bot, ctx: ChatContext, reply: TelegramReply, result: TurnResult,
                       continued: bool, screening: Screening | None = None) -> str | None:
        """Show the outcome; returns the reply text shown, if any."""
        if result.status == "merged":
            return None
        retry = self._retry_markup(ctx, result)
        if result.reply is None:
            kind = str(result.error.kind) if result.error else "server"
            await reply.fail(error_text(kind, ctx.lang, getattr(result.error, "detail", "")), retry)
            return None
        if screening is not None and screening.refused:
            await reply.fail(text("tg.reply_refused", ctx.lang), retry)
            return None
        shown = result.completion.text if continued and result.completion else result.reply.content
        markup = None if result.error else self.alternatives_markup(result.reply, ctx.lang)
        ids = await reply.finish(shown + answered_by(result, ctx.lang), markup)
        if ids and not continued:
            self.store.set_platform_message_id(result.reply.id, ids[0])
        if screening is not None and screening.warned:
            await bot.send_message(ctx.chat_id, text("tg.reply_warned", ctx.lang), message_thread_id=ctx.thread_id)
        if result.error is not None:  # a partial reply: say what happened, offer a retry
            kind = str(result.error.kind)
            await bot.send_message(ctx.chat_id, error_text(kind, ctx.lang, result.error.detail),
                                   reply_markup=retry, message_thread_id=ctx.thread_id)
        return shown

    def _retry_markup(self, ctx: ChatContext, result: TurnResult) -> InlineKeyboardMarkup:
        conversation_id = (result.user_messages[0].conversation_id if result.user_messages
                           else ctx.conversation(self.engine).id)
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=text("tg.button_retry", ctx.lang), callback_data=RetryTurn(conversation_id=conversation_id).pack())]])

    def alternatives_markup(self, shown: Message, lang: str) -> InlineKeyboardMarkup | None:
        """◀ i/n ▶ under a reply that has alternatives, and ✓ when the shown one is not in use."""
        alternatives = self.engine.alternatives(shown.id)
        if len(alternatives) < 2:
            return None
        index = next(i for i, a in enumerate(alternatives) if a.id == shown.id)
        previous = alternatives[index - 1]
        following = alternatives[(index + 1) % len(alternatives)]
        row = [
            InlineKeyboardButton(text="◀", callback_data=ShowAlternative(reply_id=previous.id).pack()),
            InlineKeyboardButton(text=f"{index + 1}/{len(alternatives)}",
                                 callback_data=ShowAlternative(reply_id=shown.id).pack()),
            InlineKeyboardButton(text="▶", callback_data=ShowAlternative(reply_id=following.id).pack()),
        ]
        rows = [row]
        if self.store.message(shown.id).status == "hidden":
            rows.append([InlineKeyboardButton(text=text("tg.button_use", lang),
                                              callback_data=UseAlternative(reply_id=shown.id).pack())])
        return InlineKeyboardMarkup(inline_keyboard=rows)

    # -- budget -----------------------------------------------------------------------
    def tokens_today(self, ctx: ChatContext) -> int:
        zone = ZoneInfo(ctx.user.timezone or self.default_timezone)
        now = self.store.clock().astimezone(zone)
        midnight = datetime.combine(now.date(), clock_time(0), tzinfo=zone)
        totals = self.store.usage_totals(user_id=ctx.user.id, since=to_text(midnight))
        uncached = totals["prompt_tokens"] - totals["cached_tokens"]
        return int(uncached + totals["cached_tokens"] * self.cached_token_weight + totals["completion_tokens"])

    def over_budget(self, ctx: ChatContext) -> bool:
        if not self.daily_tokens or int(ctx.user.external_id) in self.admins:
            return False
        return self.tokens_today(ctx) >= self.daily_tokens


def answered_by(result: TurnResult, lang: str) -> str:
    """A line under a reply the fallback endpoint wrote, naming its model."""
    completion = result.completion
    if completion is None or not completion.fallback_from:
        return ""
    return "\n\n" + text("tg.answered_by", lang, model=completion.model)


class _Unshown:
    """A reply sink that shows nothing while the model writes (the reply may be refused);
    the typing indicator runs until the reply is sent."""

    def __init__(self, reply: TelegramReply) -> None:
        self.stopped = reply.stopped

    async def delta(self, text: str) -> None:
        return None

    async def restart(self) -> None:
        return None
