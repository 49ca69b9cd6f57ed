"""The send budget: the bot keeps within Telegram's flood limits instead of hitting them.

Whole-bot tests run the real bot (BotHarness) against a fake Bot API that enforces the
published limits (tests/fakes/telegram_limits.py) and assert on what it received; the
budget's own rules are checked on `LocalSendBudget` with a hand-moved clock.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiogram.methods import SendChatAction

from bot.telegram.send_budget import (
    BudgetLimits,
    LocalSendBudget,
    Priority,
    SendBudget,
    SendSkipped,
    budget_of,
    install,
)
from bot.telegram.streaming import StreamSettings, TelegramReply
from tests.fakes.openai_server import Reply
from tests.fakes.telegram_limits import FloodLimits
from tests.harness import BotHarness

REPLY_BODY = ("I kept the letter you mentioned, folded twice, in the book about rivers. " * 9).strip()  # ~650 chars
POSTS = ("sendMessage", "sendMessageDraft", "editMessageText")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def streamed_reply(body: dict, seconds: float = 1.5) -> Reply:
    """A reply naming the user's message, streamed in about `seconds`."""
    text = f"re {body['messages'][-1]['content'].rsplit(chr(10), 1)[-1]}: {REPLY_BODY}"
    chunks = len(text) // 20 + 1
    return Reply(text, chunk_size=20, delay=0.1, chunk_delay=seconds / chunks)


def posts(telegram, chat_id=None, *, ok=None):
    return [c for c in telegram.calls if c.method in POSTS and (ok is None or c.ok == ok)
            and (chat_id is None or c.params.get("chat_id") == chat_id)]


@pytest.fixture
def enforcing(telegram):
    telegram.flood.limits = FloodLimits()
    return telegram


async def start_bot(tmp_path, telegram, fake_openai, seconds: float = 1.5) -> BotHarness:
    fake_openai.default_reply = lambda body: streamed_reply(body, seconds)
    return await BotHarness(tmp_path, telegram, fake_openai, open_to_all=True,  # Telegram's own limits
                            telegram_chat_sends_per_second=1.0, telegram_group_sends_per_minute=20.0).start()


def write_at_once(telegram, count: int, first_id: int = 7000) -> list[int]:
    users = [telegram.user(first_id + i, first_name=f"U{i}") for i in range(count)]
    for user in users:
        telegram.private_message(f"hello from {user['id']}", user=user)
    return [user["id"] for user in users]


def expected(user_id: int) -> str:
    return f"re hello from {user_id}: {REPLY_BODY}"


# -- the whole bot against an enforcing Bot API ------------------------------------------------
async def test_a_burst_of_60_chats_gets_every_reply_in_full_without_a_429(tmp_path, enforcing, fake_openai, caplog):
    caplog.set_level(logging.INFO, logger="bot.telegram.turns")
    harness = await start_bot(tmp_path, enforcing, fake_openai)
    users = write_at_once(enforcing, 60)
    for user in users:
        await enforcing.wait_until(lambda u=user: enforcing.bot_texts(u), 60)
    await harness.stop()

    assert {u: enforcing.bot_texts(u) for u in users} == {u: [expected(u)] for u in users}
    assert enforcing.flood.refusals == [], "no call was refused with 429"
    drafts = {c.params["chat_id"] for c in enforcing.calls_of("sendMessageDraft", ok=True)}
    assert drafts <= set(users) and drafts, "replies were previewed while written, as the budget allowed"
    turns = [r.turn for r in caplog.records if hasattr(r, "turn")]
    assert len(turns) == 60 and all("budget_wait_ms" in t and "previews_skipped" in t for t in turns)
    assert sum(t["previews_skipped"] for t in turns) > 0, "previews gave way when the budget was short"


async def test_a_429_for_one_chat_pauses_only_that_chat(tmp_path, enforcing, fake_openai):
    harness = await start_bot(tmp_path, enforcing, fake_openai, seconds=0.5)
    flooded, *others = [7100, 7101, 7102, 7103]
    enforcing.flood.flood_chat(flooded, 6)
    flood_ends = time.monotonic() + 6
    write_at_once(enforcing, 4, first_id=7100)
    for user in others:
        await enforcing.wait_until(lambda u=user: enforcing.bot_texts(u), 10)
    others_done = time.monotonic()
    await enforcing.wait_until(lambda: enforcing.bot_texts(flooded), 20)
    await harness.stop()

    assert others_done < flood_ends, "the other chats were answered while that chat was paused"
    assert enforcing.bot_texts(flooded) == [expected(flooded)]
    refused = [r for r in enforcing.flood.refusals]
    assert {r.chat_id for r in refused} == {flooded}
    assert len(refused) <= 2, "the flooded chat was paused, not hammered"
    [final] = [c for c in enforcing.calls_of("sendMessage", ok=True) if c.params["chat_id"] == flooded]
    assert final.at >= refused[0].at + refused[0].retry_after - 0.05


async def test_a_global_429_pauses_the_whole_bot(tmp_path, enforcing, fake_openai):
    harness = await start_bot(tmp_path, enforcing, fake_openai, seconds=2.5)
    users = write_at_once(enforcing, 6, first_id=7200)
    await enforcing.wait_until(lambda: len({c.params["chat_id"] for c in posts(enforcing, ok=True)}) >= 2, 10)
    enforcing.flood.flood_all(2)  # while the replies are being shown
    for user in users:
        await enforcing.wait_until(lambda u=user: enforcing.bot_texts(u), 20)
    await harness.stop()

    assert {u: enforcing.bot_texts(u) for u in users} == {u: [expected(u)] for u in users}
    refused = enforcing.flood.refusals
    assert len({r.chat_id for r in refused}) >= 2
    second = sorted(refused, key=lambda r: r.at)[1]
    paused_until = second.at + second.retry_after
    during = [c for c in posts(enforcing) if second.at + 0.3 < c.at < paused_until - 0.05]
    assert during == [], "after 429s in two chats nothing was sent until retry_after had passed"
    assert len(refused) <= len(users) + 2


async def stream_then_finish(telegram, limits: BudgetLimits, chats: list[int], *, draft_interval: float,
                             pause: float) -> tuple[LocalSendBudget, list[TelegramReply], float, float]:
    """Replies in `chats` stream 40 words each, `pause` apart, then all finish at once.
    Returns the budget, the replies, when the finals were asked for, and the tokens the
    bot's bucket held at that moment."""
    bot = telegram.make_bot()
    budget = install(bot, LocalSendBudget(limits))
    settings = StreamSettings(draft_interval=draft_interval, typing_interval=5)
    replies = []
    for chat in chats:
        telegram.open_private_chat(chat)
        replies.append(TelegramReply(bot, chat, private=True, settings=settings))
    try:
        for reply in replies:
            await reply.start()
        for _ in range(40):
            for reply in replies:
                await reply.delta("word ")
            await asyncio.sleep(pause)
        finals_requested = time.monotonic()
        left = budget._bot.refill(finals_requested)
        await asyncio.gather(*(reply.finish(f"the whole reply for {reply.chat_id}") for reply in replies))
    finally:
        await bot.session.close()
    assert all(telegram.bot_texts(chat) == [f"the whole reply for {chat}"] for chat in chats)
    assert telegram.flood.refusals == []
    return budget, replies, finals_requested, left


async def test_previews_are_dropped_before_a_final_message_waits(enforcing):
    # every reply streams faster than the budget allows
    budget, replies, finals_requested, _ = await stream_then_finish(
        enforcing, BudgetLimits(per_second=4, global_burst=2), [8000 + i for i in range(8)],
        draft_interval=0.02, pause=0.02)

    assert sum(reply.waits.skipped_previews for reply in replies) > 0
    finals = enforcing.calls_of("sendMessage", ok=True)
    late_previews = [c for c in enforcing.calls_of("sendMessageDraft")
                     if finals_requested + 0.2 < c.at < max(f.at for f in finals)]
    assert late_previews == [], "no preview was sent while final messages waited"
    assert budget.waits > 0, "the final messages did wait: the budget was short"


async def test_final_messages_find_the_burst_full_when_more_replies_stream_than_it_holds(enforcing):
    """12 replies stream for about a second against a burst of 10: previews live on what
    the finals leave, so when all 12 end at once the burst is there for their finals."""
    chats = [8100 + i for i in range(12)]
    budget, replies, _, left = await stream_then_finish(enforcing, BudgetLimits(per_second=10), chats,
                                                        draft_interval=0.05, pause=0.025)

    burst = budget._bot.capacity
    assert enforcing.calls_of("sendMessageDraft", ok=True), "replies were previewed while they streamed"
    assert sum(reply.waits.skipped_previews for reply in replies) > 0, "and previews gave way"
    assert left >= burst - 2, "previews left the burst (all but a preview on its way) to the finals"
    assert budget.waits <= len(chats) - (burst - 2), "so nearly a burst of finals went without waiting"


# -- the budget's rules -----------------------------------------------------------------------
async def test_final_messages_are_served_before_waiting_previews():
    budget = LocalSendBudget(BudgetLimits(per_second=20, global_burst=1))
    assert await budget.acquire(1, Priority.FINAL) == 0  # takes the only token
    served: list[str] = []

    async def send(name: str, chat: int, priority: Priority) -> None:
        await budget.acquire(chat, priority)
        served.append(name)

    preview = asyncio.create_task(send("preview", 2, Priority.PREVIEW))
    await asyncio.sleep(0)
    final = asyncio.create_task(send("final", 3, Priority.FINAL))
    await asyncio.gather(preview, final)
    assert served == ["final", "preview"]


async def test_a_preview_never_takes_a_chats_last_token_or_jumps_a_waiting_final():
    clock = Clock()
    budget = LocalSendBudget(BudgetLimits(), clock=clock)
    assert await budget.try_acquire(5, Priority.PREVIEW)  # 2 tokens: one is left for the final
    assert not await budget.try_acquire(5, Priority.PREVIEW)
    assert await budget.try_acquire(5, Priority.FINAL)
    clock.now += 2.0
    waiting = asyncio.create_task(budget.acquire(6, Priority.FINAL))
    await asyncio.sleep(0)
    assert waiting.done()  # chat 6 had tokens: no queue
    blocked = LocalSendBudget(BudgetLimits(per_second=1, global_burst=1))
    await blocked.acquire(1)
    queued = asyncio.create_task(blocked.acquire(2))
    await asyncio.sleep(0)
    assert not await blocked.try_acquire(3, Priority.PREVIEW), "a final waits: previews give way"
    assert not await blocked.try_acquire(3, Priority.TYPING)
    await queued


async def test_a_flooded_chat_waits_out_retry_after_while_other_chats_go_on():
    budget = LocalSendBudget()
    await budget.flooded(11, 0.4)
    began = time.monotonic()
    assert await budget.acquire(12) == 0
    waited = await budget.acquire(11)
    assert waited >= 0.35 and time.monotonic() - began >= 0.35
    assert budget._chats[11].current_rate(time.monotonic()) == pytest.approx(0.5), "slowed for a while"


async def test_429s_in_two_chats_pause_the_whole_bot():
    budget = LocalSendBudget()
    await budget.flooded(21, 0.4)
    await budget.flooded(22, 0.4)
    waited = await budget.acquire(23)
    assert waited >= 0.35
    assert not await budget.try_acquire(24, Priority.PREVIEW)


async def test_a_group_never_gets_more_than_20_sends_in_any_minute():
    clock = Clock()
    budget = LocalSendBudget(clock=clock)
    sent: list[float] = []
    for _ in range(1800):  # ten minutes, trying every third of a second
        if await budget.try_acquire(-100, Priority.FINAL):
            sent.append(clock.now)
        clock.now += 1 / 3
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) <= 20
    assert len(sent) >= 10 * 17, "and close to that rate over time"


async def test_every_post_of_a_bot_draws_from_its_budget_and_chat_actions_are_skipped_when_short(telegram):
    bot = telegram.make_bot()
    budget = install(bot, LocalSendBudget(BudgetLimits(per_second=2, global_burst=2)))
    try:
        assert budget_of(bot) is budget and isinstance(budget, SendBudget)
        await bot.send_message(telegram.open_private_chat()["id"], "one")
        await bot.send_message(telegram.open_group()["id"], "two")
        with pytest.raises(SendSkipped):  # the bot's bucket is empty: typing is the first to go
            await bot(SendChatAction(chat_id=telegram.open_private_chat()["id"], action="typing"))
        began = time.monotonic()
        await bot.send_message(telegram.open_group()["id"], "three")  # waits for the bot's next token
        assert time.monotonic() - began >= 0.3
        assert budget.waits == 1
        assert [c.params["text"] for c in telegram.calls_of("sendMessage")] == ["one", "two", "three"]
        assert telegram.calls_of("sendChatAction") == [], "a skipped action is not sent"
    finally:
        await bot.session.close()


async def test_a_group_is_answered_in_full_within_its_20_a_minute(tmp_path, enforcing, fake_openai):
    harness = await start_bot(tmp_path, enforcing, fake_openai, seconds=0.3)
    group = -1001234567890
    for number in range(3):
        enforcing.group_message(f"question {number}", chat_id=group, mention="username")
    await enforcing.wait_until(lambda: len(enforcing.bot_texts(group)) >= 3, 30)
    await harness.stop()

    texts = enforcing.bot_texts(group)
    assert len(texts) == 3 and all(f"question {n}" in texts[n] for n in range(3))
    assert all(text.endswith(REPLY_BODY) for text in enforcing.bot_texts(group))
    assert enforcing.flood.refusals == [], "the group's 20 a minute (and burst) were kept"


async def test_a_call_on_its_way_holds_its_token_until_its_answer_is_read():
    """Telegram counts a call when it arrives, which may be as late as its answer: until
    then the token stays spent, however long ago the call was sent."""
    clock = Clock()
    budget = LocalSendBudget(BudgetLimits(per_second=20, global_burst=2), clock=clock)
    for chat in (31, 32):
        assert await budget.try_acquire(chat, Priority.FINAL)
        budget.departed(chat, Priority.FINAL)
    clock.now += 10  # long enough to refill twice over
    assert not await budget.try_acquire(33, Priority.FINAL), "both calls may still arrive now"
    budget.landed(31, Priority.FINAL)
    assert not await budget.try_acquire(33, Priority.FINAL), "the answered one may have arrived just now"
    clock.now += 0.06  # a token's worth of refill (1/20 s), from the answer on
    assert await budget.try_acquire(33, Priority.FINAL)
    budget.landed(32, Priority.FINAL)


async def test_a_final_held_only_by_calls_on_their_way_goes_when_an_answer_comes():
    budget = LocalSendBudget(BudgetLimits(per_second=100, global_burst=1))
    await budget.acquire(41)
    budget.departed(41, Priority.FINAL)
    waiting = asyncio.create_task(budget.acquire(42))
    await asyncio.sleep(0.1)  # ten times the refill time: only the answer frees the token
    assert not waiting.done()
    budget.landed(41, Priority.FINAL)
    assert await asyncio.wait_for(waiting, 1) > 0


async def test_later_previews_leave_a_token_for_each_reply_streaming():
    clock = Clock()
    budget = LocalSendBudget(BudgetLimits(), clock=clock)  # a burst of 30
    budget.finals_due(+40)  # more replies streaming than the burst holds
    assert await budget.try_acquire(1, Priority.PREVIEW), "a full bucket: one preview"
    assert not await budget.try_acquire(2, Priority.PREVIEW), "then none until it is full again"
    assert not await budget.try_acquire(2, Priority.TYPING)
    assert await budget.try_acquire(2, Priority.FIRST), "a first preview may dip into the burst"
    for chat in range(3, 7):
        assert await budget.try_acquire(chat, Priority.FIRST)
    assert not await budget.try_acquire(7, Priority.FIRST), "down to 80% of it, not further"
    clock.now += 1.0
    budget.finals_due(-35)  # most replies delivered: 5 still streaming
    assert await budget.try_acquire(9, Priority.PREVIEW)
    assert await budget.try_acquire(10, Priority.PREVIEW), "90% of the burst is the floor again"
