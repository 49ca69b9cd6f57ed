"""The fake Bot API's flood limits (tests/fakes/telegram_limits.py): Telegram's published
limits, answered with 429 and retry_after as Telegram answers."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramRetryAfter

from tests.fakes.telegram_limits import FloodControl, FloodLimits


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def control() -> tuple[FloodControl, Clock]:
    clock = Clock()
    return FloodControl(FloodLimits(), clock=clock), clock


def test_the_whole_bot_gets_30_messages_a_second():
    flood, clock = control()
    assert [flood.admit("sendMessage", {"chat_id": 1000 + i}) for i in range(30)] == [None] * 30
    assert flood.admit("sendMessage", {"chat_id": 2000}) == 1
    clock.now += 0.04  # a thirtieth of a second, and a little
    assert flood.admit("sendMessage", {"chat_id": 2000}) is None
    assert flood.admitted == 31 and len(flood.refusals) == 1


def test_one_chat_gets_a_short_burst_then_one_a_second():
    flood, clock = control()
    assert [flood.admit("editMessageText", {"chat_id": 7}) for _ in range(4)] == [None, None, None, 1]
    clock.now += 1.0
    assert flood.admit("sendMessageDraft", {"chat_id": 7}) is None
    assert flood.admit("sendMessage", {"chat_id": 7}) == 1


def test_a_group_gets_20_messages_a_minute():
    flood, clock = control()
    for _ in range(20):
        assert flood.admit("sendMessage", {"chat_id": -100}) is None
        clock.now += 1.5
    retry_after = flood.admit("sendMessage", {"chat_id": -100})
    assert retry_after == 30  # until the first of the 20 leaves the minute
    clock.now += 30
    assert flood.admit("sendMessage", {"chat_id": -100}) is None


def test_chat_actions_deletions_and_reads_are_not_counted():
    flood, _ = control()
    for _ in range(50):
        for method in ("sendChatAction", "deleteMessage", "getChat", "answerCallbackQuery"):
            assert flood.admit(method, {"chat_id": 7}) is None
    assert flood.admitted == 0


def test_injected_floods_refuse_one_chat_or_all():
    flood = FloodControl()  # no limits enforced, floods still injected
    flood.flood_chat(7, 3)
    assert flood.admit("sendMessage", {"chat_id": 7}) == 3
    assert flood.admit("sendMessage", {"chat_id": 8}) is None
    flood.flood_all(2)
    assert flood.admit("sendMessage", {"chat_id": 8}) == 2
    assert [r.injected for r in flood.refusals] == [True, True]


async def test_the_fake_answers_429_with_retry_after_as_telegram_does(telegram, telegram_bot):
    telegram.flood.limits = FloodLimits()
    for _ in range(3):
        await telegram_bot.send_message(telegram.open_private_chat()["id"], "hi")
    with pytest.raises(TelegramRetryAfter) as refused:
        await telegram_bot.send_message(telegram.open_private_chat()["id"], "once more")
    assert refused.value.retry_after == 1
    call = telegram.calls_of("sendMessage")[-1]
    assert (call.status, call.description) == (429, "Too Many Requests: retry after 1")
    assert len(telegram.bot_messages(telegram.open_private_chat()["id"])) == 3
