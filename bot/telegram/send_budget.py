"""One send budget per bot: every call that posts into a chat or changes a message draws
from it before it is made, so the bot keeps within Telegram's flood limits instead of
learning them from 429s.

Telegram's limits (Bots FAQ, "My bot is hitting limits"): about 30 messages a second for
the whole bot, about one a second in one chat (short bursts are tolerated), at most 20 a
minute in a group. Each is a setting (`COMPANION_TELEGRAM_SENDS_PER_SECOND`,
`..._CHAT_SENDS_PER_SECOND`, `..._GROUP_SENDS_PER_MINUTE`). Here they are token buckets:

- the bot: `per_second` tokens a second, a burst of `global_burst`: one second's worth,
  as Telegram allows (and as the fake Bot API of the tests models it);
- a private chat: `chat_per_second`, a burst of 2; a group (negative chat id or
  `@username`): a burst of 3 and `(per_minute - 3) / 60` a second, so no 60-second window
  ever holds more than `per_minute` sends.

Calls on their way hold their token of the burst. Telegram counts a call when it arrives,
somewhere between our sending it and our reading its answer, and a call that arrives late
lands in a later second than we sent it in: a busy event loop or a slow network bunches
calls up, and a burst sent as 30 arrives as 30 plus whatever was sent after it (with the
whole burst and no such care, the 60-user burst of `load` drew one to two 429s a run).
So each bucket holds at most its burst less the calls now on their way (`departed` ...
`landed`, which the middleware reports around every call): whatever the delays, Telegram
never sees more than our bucket let out. This replaced a fixed margin (a burst of half a
second's worth), which cost every burst of final messages half a second, and held only
while the delays stayed shorter than it. The price: after a burst the budget
sends again only once the first answers are read (a round trip, or longer while the
event loop is busy). Short of knowing when Telegram counted a call, no budget can do
better without risking a 429: the worst case is a burst that arrives all at once, as
late as its answers allow. So the loop must read answers promptly when many replies end
together: the turn engine lets turn ends (store, format, send: a millisecond or two
each) through a slice of each loop turn (memory/engine.py `_LoopTurns`), where 60 of them
in one loop turn kept every answer unread for 100 ms and more.

What is counted: every method that posts or edits in a chat (`send*`, `edit*`, `copy*`,
`forward*` with a `chat_id`, drafts included). `sendChatAction` draws only from the bot's
bucket, and only when plenty is left. Reads, `getUpdates`, `answerCallbackQuery`, command
menus and deletions are not messages and pass; a 429 on any call still pauses the budget.

Priorities (`Priority`), highest first:
- FINAL: a reply's final message and every ordinary call of a handler. These wait in one
  queue, by priority, then in arrival order; a waiter whose chat is still empty does not
  hold back the others.
- FIRST: the first preview of a reply (its first draft, or the message a group's preview
  edits); PREVIEW: later draft updates and preview edits; TYPING: chat actions. These are
  never queued: `try_acquire` answers at once, and refuses while anything waits, while
  the chat is down to its last token (kept for the final message, so a final is never
  late because of its own previews), or while taking one would leave the bot's bucket
  below the priority's reserve: 80% of the burst for FIRST, 90% for PREVIEW, 95% for
  TYPING, so a first preview goes before later ones and typing last. Previews thus live
  on the rate the finals leave unused and never draw the burst down: when many replies
  end at once, their finals find the bucket (nearly) full. Later previews and chat
  actions also keep one token for each reply still streaming (`finals_due`, up to the
  whole burst): with more replies streaming than the burst holds, they go only while the
  bucket is full, one at a time. The first preview is exempt from that (it comes as a
  reply begins, when its final is seldom near), and is not made to wait: at 21 replies a
  second, one waiting first preview each would already need 42 of the 30 sends a second,
  and every final would queue behind them. Previews after the first also share at most
  half the bot's rate (`preview_share`).
  The streaming code asks for a slot first and renders the newest text only once it has
  one, so a preview never waits with stale text: a newer preview replaces a queued older
  one by construction. A refused preview is skipped; the reply tries again within its
  interval, at a random point, so that replies refused together spread out.

A 429 that still arrives (another client on the same token, a stricter limit than ours)
pauses that chat for `retry_after`; 429s in two different chats within a second are taken
as a flood of the whole bot and pause everything (Telegram's answer does not say which it
is). The paused bucket then allows one call and refills at half its rate for
`slow_seconds` (60). A 429 on a call about no chat (a command menu) concerns that method
only: it is counted, and left to `TelegramRetry`. The caller still sees
the `TelegramRetryAfter` and retries as before (the reply's final send, `TelegramRetry`).

Across workers (not built yet: it waits for the PostgreSQL-and-workers issue): everything
above sits behind `SendBudget` (acquire / try_acquire / flooded / departed / landed /
finals_due). `LocalSendBudget` holds the buckets in this process, which is right for one
bot process. When the bot runs as several workers on one token, they must share one
budget, or N workers send N times the limit: the shared implementation keeps each bucket
as a row `(key, tokens, in_flight, stamp, paused_until, slow_until)` and takes a token
with one `UPDATE ... SET tokens = least(capacity - in_flight, tokens + rate * (now() -
stamp)) - 1 ... WHERE tokens + ... >= need RETURNING`, retrying after the time the row
says the next token is due; `departed`/`landed` move `in_flight`, `finals_due` a counter
row; priorities map onto the thresholds (`need`) the same way `try_acquire` applies them
here. Nothing outside this module knows which one it talks to.

Wiring: `install(bot, budget)` registers `SendBudgetMiddleware` on the bot's HTTP session
(innermost of the session middlewares, so each retry draws again) and remembers the
budget for `budget_of(bot)`. The streaming reply tells the middleware what a call is with
`sending(...)`, and learns how long it waited through `BudgetWaits`, which the turn log
reports as `budget_wait_ms`.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import math
import time
import weakref
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)

ChatKey = int | str


class Priority(IntEnum):
    FINAL = 0
    FIRST = 1
    PREVIEW = 2
    TYPING = 3


# the share of the bot's burst that must be left after a now-or-never send: the rest is
# what previews may dip into, so a burst of final messages finds the bucket (nearly) full
_RESERVE = {Priority.FIRST: 0.8, Priority.PREVIEW: 0.9, Priority.TYPING: 0.95}


@runtime_checkable
class SendBudget(Protocol):
    """What the bot's calls draw from; one per bot token, shared by all its workers."""

    async def acquire(self, chat_id: ChatKey, priority: Priority = Priority.FINAL) -> float:
        """Wait for a send to `chat_id`; returns the seconds waited."""

    async def try_acquire(self, chat_id: ChatKey, priority: Priority) -> bool:
        """A send now or never (previews, typing): True when it may be made now."""

    async def flooded(self, chat_id: ChatKey | None, retry_after: float) -> None:
        """Telegram answered 429 for `chat_id` (None: a call about no chat)."""

    def departed(self, chat_id: ChatKey, priority: Priority) -> None:
        """A granted call is now on its way (Telegram may count it at any moment)."""

    def landed(self, chat_id: ChatKey, priority: Priority) -> None:
        """Its answer came (or it failed): Telegram has counted it, if ever."""

    def finals_due(self, change: int) -> None:
        """A reply began streaming (+1) or was delivered or given up (-1): a final message
        is due for each reply streaming, and later previews leave room for them."""


@dataclass(frozen=True)
class BudgetLimits:
    per_second: float = 30.0  # the whole bot
    chat_per_second: float = 1.0  # one private chat
    group_per_minute: float = 20.0  # one group
    global_burst: float | None = None  # default: one second's rate, as Telegram allows
    chat_burst: float = 2.0
    group_burst: float = 3.0
    preview_share: float = 0.5  # of the bot's rate that previews may use
    slow_factor: float = 0.5  # the rate after a 429 ...
    slow_seconds: float = 60.0  # ... for this long
    global_flood_window: float = 1.0  # 429s in two chats this close together: the whole bot is flooded

    @classmethod
    def from_settings(cls, settings: Any) -> "BudgetLimits":
        return cls(per_second=settings.telegram_sends_per_second,
                   chat_per_second=settings.telegram_chat_sends_per_second,
                   group_per_minute=settings.telegram_group_sends_per_minute)


class TokenBucket:
    """`rate` tokens a second up to `capacity`; can be paused, and slowed for a while.

    Calls on their way hold a token of the capacity (`departed` ... `landed`): Telegram
    counts a call when it arrives, some time between our sending it and its answer, and
    its bucket does not fill past full meanwhile, so ours may not either (see the module
    docstring). A call never answered is let go after `IN_FLIGHT_SECONDS`."""

    IN_FLIGHT_SECONDS = 120.0  # longer than any one HTTP attempt (aiogram's timeout is 60 s)

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.stamp = now
        self.paused_until = 0.0
        self.slow_until = 0.0
        self.slow_factor = 1.0
        self.in_flight: deque[float] = deque()  # when each call now on its way was sent

    def current_rate(self, now: float) -> float:
        return self.rate * (self.slow_factor if now < self.slow_until else 1.0)

    def cap(self) -> float:
        """What the bucket can hold now: full, less the calls on their way."""
        return self.capacity - len(self.in_flight)

    def refill(self, now: float) -> float:
        if now > self.stamp:
            start = max(self.stamp, self.paused_until)
            if now > start:
                self.tokens = min(self.cap(), self.tokens + (now - start) * self.current_rate(now))
            self.stamp = now
        while self.in_flight and now - self.in_flight[0] > self.IN_FLIGHT_SECONDS:
            self.in_flight.popleft()
        return self.tokens

    def ready_in(self, need: float, now: float) -> float:
        """Seconds until `need` tokens are there (0 when they are; inf while only answers
        to calls on their way can make room)."""
        self.refill(now)
        pause = max(0.0, self.paused_until - now)
        missing = need - self.tokens
        if missing <= 0:
            return pause
        if need > self.cap():
            return math.inf
        return pause + missing / max(self.current_rate(now), 1e-9)

    def take(self, amount: float = 1.0) -> None:
        self.tokens -= amount

    def departed(self, now: float) -> None:
        self.refill(now)
        self.in_flight.append(now)
        self.tokens = min(self.tokens, self.cap())

    def landed(self, now: float) -> None:
        self.refill(now)
        if self.in_flight:
            self.in_flight.popleft()

    def pause(self, until: float, slow_factor: float, slow_seconds: float) -> None:
        self.paused_until = max(self.paused_until, until)
        self.tokens = min(self.tokens, 1.0)  # after the pause: one call, then the slowed rate
        self.slow_factor = slow_factor
        self.slow_until = max(self.slow_until, until + slow_seconds)

    def idle(self, now: float) -> bool:
        return (self.refill(now) >= self.capacity and not self.in_flight and now >= self.slow_until
                and now >= self.paused_until)


@dataclass(order=True)
class _Waiter:
    priority: int
    order: int
    chat: ChatKey = field(compare=False)
    future: asyncio.Future = field(compare=False)


class LocalSendBudget:
    """The send budget of one process (see the module docstring)."""

    def __init__(self, limits: BudgetLimits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits = limits or BudgetLimits()
        self.clock = clock
        now = clock()
        burst = limits.global_burst if limits.global_burst is not None else max(1.0, limits.per_second)
        self._bot = TokenBucket(limits.per_second, burst, now)
        self._previews = TokenBucket(limits.per_second * limits.preview_share, max(1.0, burst / 4), now)
        self._chats: dict[ChatKey, TokenBucket] = {}
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._recent_floods: dict[ChatKey, float] = {}  # chat -> when its last 429 arrived
        self._finals_due = 0  # replies streaming, each owing a final message
        self.waits = 0  # sends that had to wait, and for how long in all
        self.waited_s = 0.0
        self.skipped = 0  # previews and chat actions refused
        self.floods = 0  # 429s seen

    # -- SendBudget ---------------------------------------------------------------------
    async def acquire(self, chat_id: ChatKey, priority: Priority = Priority.FINAL) -> float:
        now = self.clock()
        if not self._waiters and self._ready(chat_id, now) == 0:
            self._take(chat_id)
            return 0.0
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, _Waiter(int(priority), next(self._order), chat_id, future))
        self._schedule(0.0)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                pass  # granted and then cancelled: the token is spent, as a sent call's is
            else:
                self._waiters = [w for w in self._waiters if w.future is not future]
                heapq.heapify(self._waiters)
            raise
        waited = self.clock() - now
        self.waits += 1
        self.waited_s += waited
        return waited

    async def try_acquire(self, chat_id: ChatKey, priority: Priority) -> bool:
        now = self.clock()
        chat = self._chat(chat_id, now)
        if priority == Priority.FINAL:
            allowed = not self._waiters and self._ready(chat_id, now) == 0
        else:
            allowed = not self._waiters and self._bot.ready_in(self._preview_need(priority), now) == 0
            if priority != Priority.TYPING:  # chat actions are not messages
                allowed = allowed and chat.ready_in(min(2.0, chat.capacity), now) == 0
            if priority == Priority.PREVIEW:
                allowed = allowed and self._previews.ready_in(1.0, now) == 0
        if not allowed:
            self.skipped += 1
            return False
        self._bot.take()
        if priority != Priority.TYPING:
            chat.take()
        if priority == Priority.PREVIEW:
            self._previews.take()
        return True

    async def flooded(self, chat_id: ChatKey | None, retry_after: float) -> None:
        now = self.clock()
        self.floods += 1
        until = now + max(0.0, float(retry_after))
        limits = self.limits
        others = [c for c, at in self._recent_floods.items() if c != chat_id and now - at <= limits.global_flood_window]
        if chat_id is None:
            return
        if others:
            log.warning("Telegram flood limit for the whole bot: pausing all sends for %.0f s", retry_after)
            for bucket in (self._bot, self._previews):
                bucket.pause(until, limits.slow_factor, limits.slow_seconds)
        else:
            log.info("Telegram flood limit in chat %s: pausing it for %.0f s", chat_id, retry_after)
        self._chat(chat_id, now).pause(until, limits.slow_factor, limits.slow_seconds)
        self._recent_floods = {c: at for c, at in self._recent_floods.items()
                               if now - at <= limits.global_flood_window}
        self._recent_floods[chat_id] = now
        self._schedule(0.0)

    def departed(self, chat_id: ChatKey, priority: Priority) -> None:
        now = self.clock()
        self._bot.departed(now)
        if priority != Priority.TYPING:
            self._chat(chat_id, now).departed(now)

    def landed(self, chat_id: ChatKey, priority: Priority) -> None:
        now = self.clock()
        self._bot.landed(now)
        if priority != Priority.TYPING:
            self._chat(chat_id, now).landed(now)
        if self._waiters:
            self._schedule(0.0)  # a waiter may have been held only by calls on their way

    def finals_due(self, change: int) -> None:
        self._finals_due = max(0, self._finals_due + change)

    # -- internals ----------------------------------------------------------------------
    def _preview_need(self, priority: Priority) -> float:
        """The tokens the bot's bucket must hold for a now-or-never send of `priority`: its
        reserve plus the one taken; for later previews and chat actions also one for each
        reply streaming (its final is due), up to the whole burst. A first preview is
        exempt from that: it comes as a reply begins, its final is seldom near."""
        capacity = self._bot.capacity
        need = min(capacity, math.floor(capacity * _RESERVE[priority]) + 1.0)
        if priority != Priority.FIRST:
            need = max(need, min(capacity, self._finals_due + 1.0))
        return need

    def _chat(self, chat_id: ChatKey, now: float) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= 10_000:  # forget chats back to full, so the table stays small
                self._chats = {k: b for k, b in self._chats.items() if not b.idle(now)}
            limits = self.limits
            if is_group(chat_id):
                burst = min(limits.group_burst, limits.group_per_minute)
                bucket = TokenBucket(max(limits.group_per_minute - burst, 1.0) / 60.0, burst, now)
            else:
                bucket = TokenBucket(limits.chat_per_second, limits.chat_burst, now)
            self._chats[chat_id] = bucket
        return bucket

    def _ready(self, chat_id: ChatKey, now: float) -> float:
        return max(self._bot.ready_in(1.0, now), self._chat(chat_id, now).ready_in(1.0, now))

    def _take(self, chat_id: ChatKey) -> None:
        self._bot.take()
        self._chats[chat_id].take()

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._grant)

    def _grant(self) -> None:
        """Hand tokens to the waiters in priority order; wake again when the next is due."""
        self._timer = None
        now = self.clock()
        next_due = float("inf")
        kept: list[_Waiter] = []
        for waiter in sorted(self._waiters):
            if waiter.future.done():
                continue
            bot_wait = self._bot.ready_in(1.0, now)
            chat_wait = self._chat(waiter.chat, now).ready_in(1.0, now)
            if bot_wait == 0 and chat_wait == 0:
                self._take(waiter.chat)
                waiter.future.set_result(None)
                continue
            next_due = min(next_due, max(bot_wait, chat_wait))
            kept.append(waiter)
        heapq.heapify(kept)
        self._waiters = kept
        if kept and next_due < math.inf:  # else the next landed() call wakes it
            self._schedule(max(next_due, 0.001))


def is_group(chat_id: ChatKey) -> bool:
    """Private chats have the user's (positive) id; groups and channels negative ids or @names."""
    return isinstance(chat_id, str) or chat_id < 0


# -- what a call is, as the streaming code tells the middleware ----------------------------
class BudgetWaits:
    """How long one reply's calls waited for the budget, and how many previews were skipped."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.skipped_previews = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class _Sending:
    priority: Priority
    waits: BudgetWaits | None
    prepaid: int = 0  # calls already granted (a preview slot taken before the text was rendered)


_sending: contextvars.ContextVar[_Sending | None] = contextvars.ContextVar("telegram_sending", default=None)


@contextmanager
def sending(priority: Priority, waits: BudgetWaits | None = None, *, prepaid: int = 0) -> Iterator[None]:
    """Calls made inside are of this priority (waiting ones wait in that place of the queue),
    their waits are added to `waits`, and the first `prepaid` of them were granted already."""
    token = _sending.set(_Sending(priority, waits, prepaid))
    try:
        yield
    finally:
        _sending.reset(token)


class SendSkipped(TelegramAPIError):
    """A chat action the budget refused: non-essential, so it is skipped, not delayed."""

    def __init__(self, method: TelegramMethod) -> None:
        super().__init__(method=method, message="skipped: the send budget is short")


def counted(method: TelegramMethod) -> Priority | None:
    """The priority this call draws at by default, or None when it is not a send."""
    if getattr(method, "chat_id", None) is None:
        return None
    name = method.__api_method__
    if name == "sendChatAction":
        return Priority.TYPING
    if name.startswith(("send", "edit", "copy", "forward")):
        return Priority.FINAL
    return None


class SendBudgetMiddleware(BaseRequestMiddleware):
    def __init__(self, budget: SendBudget) -> None:
        self.budget = budget

    async def __call__(self, make_request: NextRequestMiddlewareType, bot: Any, method: TelegramMethod) -> Any:
        default = counted(method)
        chat_id = getattr(method, "chat_id", None)
        if default is None:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                await self.budget.flooded(chat_id, exc.retry_after)
                raise
        context = _sending.get()
        priority = context.priority if context is not None else Priority.FINAL
        if context is not None and context.prepaid > 0:
            context.prepaid -= 1
        elif default == Priority.TYPING:
            priority = Priority.TYPING
            if not await self.budget.try_acquire(chat_id, Priority.TYPING):
                raise SendSkipped(method)
        else:
            waited = await self.budget.acquire(chat_id, priority)
            if context is not None and context.waits is not None:
                context.waits.add(waited)
        self.budget.departed(chat_id, priority)
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            await self.budget.flooded(chat_id, exc.retry_after)
            raise
        finally:
            self.budget.landed(chat_id, priority)


_installed: "weakref.WeakKeyDictionary[Any, SendBudget]" = weakref.WeakKeyDictionary()


def install(bot: Any, budget: SendBudget) -> SendBudget:
    """Make every call of `bot` draw from `budget`. Register after `TelegramRetry`."""
    bot.session.middleware(SendBudgetMiddleware(budget))
    _installed[bot.session] = budget
    return budget


def budget_of(bot: Any) -> SendBudget | None:
    """The budget `install` gave this bot, if any (a bare test bot has none)."""
    session = getattr(bot, "session", None)
    return _installed.get(session) if session is not None else None
