"""Sending check-ins in Telegram: a loop that wakes every COMPANION_CHECKIN_POLL_SECONDS,
claims the check-ins that are due (memory/checkins.py decides when, and makes a claim
atomic), has the engine write each one in its conversation, screens it like any reply,
sends it to the user's private chat (and as a voice note to users who asked for voice),
and records it as sent.

The loop starts and stops with the dispatcher (its startup and shutdown events), so
polling and webhook mode both run it. `run_once` is the whole of one pass; tests call it
directly with a controllable clock. A user over their daily token budget, or one who
blocked the bot, gets no check-in.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError

from bot.telegram.context import ChatContext
from bot.telegram.streaming import StreamSettings, TelegramReply
from bot.telegram.voice import VoiceDesk
from bot.texts import language_of
from memory.checkins import Claim
from memory.service import CompanionService, TurnStatus
from memory.records import Owner

log = logging.getLogger(__name__)


class CheckinLoop:
    def __init__(self, service: CompanionService, voice: VoiceDesk | None = None, *, poll_seconds: float = 60.0,
                 stream_settings: StreamSettings | None = None) -> None:
        self.service = service
        self.voice = voice
        self.poll_seconds = poll_seconds
        self.stream_settings = stream_settings or StreamSettings()
        self._pass = asyncio.Lock()
        self._task: asyncio.Task | None = None

    async def start(self, bot: Bot) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(bot), name="check-ins")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, bot: Bot) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.run_once(bot)
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("check-in pass failed")

    async def run_once(self, bot: Bot) -> int:
        """Send every check-in that is due now; returns how many were sent."""
        async with self._pass:
            sent = 0
            for claim in self.service.due_checkins("tg"):
                sent += await self._send(bot, claim)
            return sent

    async def _send(self, bot: Bot, claim: Claim) -> bool:
        user = claim.user
        ctx = ChatContext(int(user.external_id), None, True, Owner.user(user.id), user, language_of(user.ui_language))
        outcome = await self.service.write_checkin(claim)
        if outcome.status is not TurnStatus.ANSWERED:
            return False
        try:
            ids = await TelegramReply(bot, ctx.chat_id, private=True, settings=self.stream_settings).finish(
                outcome.shown)
        except TelegramForbiddenError:
            self.service.checkin_sent(claim, delivered=False, blocked=True)
            return False
        except TelegramAPIError as exc:
            log.warning("check-in for user %s not delivered: %s", user.id, exc)
            self.service.checkin_sent(claim, delivered=False)
            return False
        self.service.checkin_sent(claim, outcome.reply.id, ids[0] if ids else None)
        if self.voice is not None:
            await self.voice.say(bot, ctx, outcome.shown)
        return True
