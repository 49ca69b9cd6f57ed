"""Fixtures shared by test modules.

`telegram` is a fresh fake Bot API server with the default user's private chat and the
default group open; `telegram_bot` is an aiogram Bot whose real HTTP session talks to it.
"""

from __future__ import annotations

import pytest

from tests.fakes.telegram_server import FakeTelegram


@pytest.fixture
def telegram():
    server = FakeTelegram().start()
    server.open_private_chat()
    server.open_group()
    yield server
    server.stop()


@pytest.fixture
async def telegram_bot(telegram):
    bot = telegram.make_bot()
    yield bot
    await bot.session.close()
