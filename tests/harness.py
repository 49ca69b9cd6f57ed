"""The whole bot, running as in production, against the fake Telegram and model servers.

`BotHarness` builds the services from real Settings (a real SQLite file), prepares the
dispatcher exactly as `companion run` does, and long-polls the fake Bot API in a task.
`restart()` closes everything and starts again on the same database file. `clock=` gives
the store and the engine a controllable time source (tests/fakes/clock.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiogram import Bot, Dispatcher

from bot.services import Services, build_services
from bot.settings import Settings
from bot.telegram.app import prepare
from bot.telegram.streaming import StreamSettings
from memory.records import utc_now
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import DEFAULT_USER_ID, FakeTelegram

FAST_STREAM = StreamSettings(draft_interval=0.05, edit_interval=0.1, group_edit_interval=0.1,
                             typing_interval=0.5, server_error_backoff=0.05)
# The send budget's per-chat limits sped up as FAST_STREAM speeds up the previews (10x and
# 30x), so a test of another feature sees its previews; tests of the budget itself
# (test_send_budget.py) pass Telegram's own limits, against a fake that enforces them.
FAST_CHAT_LIMITS = dict(telegram_chat_sends_per_second=10.0, telegram_group_sends_per_minute=600.0)


class BotHarness:
    def __init__(self, tmp_path: Path, telegram: FakeTelegram, openai: FakeOpenAI, *, clock=utc_now,
                 service_options: dict | None = None, **overrides):
        self.clock = clock
        self.telegram = telegram
        self.openai = openai
        self.service_options = service_options or {}  # passed to build_services (link resolver, policy)
        values = dict(openai_base_url=openai.url, openai_api_key="sk-test", model="fake-model",
                      context_tokens=32_768, db=tmp_path / "bot.db", telegram_bot_token=telegram.token,
                      telegram_api_base=telegram.base_url, admins=[DEFAULT_USER_ID],
                      model_deadline_seconds=3, stream_stall_seconds=1, **FAST_CHAT_LIMITS,
                      model_slots=0)  # the fake serves every request at once (see tests/bot_process.py)
        values.update(overrides)
        self.settings = Settings(**values)
        self.services: Services | None = None
        self.bot: Bot | None = None
        self.dispatcher: Dispatcher | None = None
        self._polling: asyncio.Task | None = None

    @property
    def store(self):
        return self.services.store

    async def start(self) -> "BotHarness":
        self.services = build_services(self.settings, clock=self.clock, **self.service_options)
        self.bot = self.telegram.make_bot()
        self.dispatcher, _ = await prepare(self.services, self.bot, stream_settings=FAST_STREAM)
        self._polling = asyncio.create_task(self.dispatcher.start_polling(
            self.bot, handle_signals=False, close_bot_session=False, polling_timeout=1,
            allowed_updates=self.dispatcher.resolve_used_update_types()))
        for _ in range(500):  # until the dispatcher is polling, so stop() can stop it
            if self.dispatcher._running_lock.locked() or self._polling.done():
                break
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._polling is not None:
            await self.dispatcher.stop_polling()
            await asyncio.wait_for(self._polling, 15)
            self._polling = None
        await self.bot.session.close()
        await self.services.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def replies(self, chat_id: int, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until the bot has `count` messages in the chat; their texts, oldest first."""
        await self.telegram.wait_until(lambda: len(self.telegram.bot_texts(chat_id)) >= count, timeout)
        return self.telegram.bot_texts(chat_id)
