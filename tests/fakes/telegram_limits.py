"""Telegram's flood limits, as the fake Bot API enforces them when asked to.

    fake = FakeTelegram(flood_limits=FloodLimits())   # enforce the published limits
    fake.flood.flood_chat(chat_id, 3)                  # this chat is refused for 3 s
    fake.flood.flood_all(2)                            # the whole bot is refused for 2 s

The limits (Bots FAQ, "My bot is hitting limits"): about 30 messages a second for the
whole bot, about one a second in one chat ("we may allow short bursts"), no more than 20
a minute in a group. Modelled as token buckets for the bot (30 a second, a burst of 30)
and for each chat (1 a second, a burst of 3), and, in groups, a sliding window: at most 20
in any 60 seconds. What counts is what posts or edits: `send*` (drafts too), `edit*`,
`copy*`, `forward*` with a chat id; not `sendChatAction`, deletions, reads or getUpdates.

A refused call is answered as Telegram does: 429, "Too Many Requests: retry after N" and
`parameters.retry_after = N` (whole seconds, at least 1: the time until the call would
have passed). A refused call does not count against the limits. Every refusal is kept in
`refusals`, with the chat and whether an injected flood caused it.

Without limits (the default) nothing is enforced, but the injected floods still apply.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class FloodLimits:
    per_second: float = 30.0
    burst: float = 30.0
    chat_per_second: float = 1.0
    chat_burst: float = 3.0
    group_per_minute: int = 20


@dataclass
class Refusal:
    method: str
    chat_id: Any
    retry_after: int
    at: float
    injected: bool
    scope: str = "injected"  # which limit: "bot", "chat", "group", or an injected flood


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class FloodControl:
    limits: FloodLimits | None = None
    clock: Callable[[], float] = time.monotonic
    refusals: list[Refusal] = field(default_factory=list)
    admitted: int = 0  # counted calls let through

    def __post_init__(self) -> None:
        self._bot: _Bucket | None = None
        self._chats: dict[Any, _Bucket] = {}
        self._group_sends: dict[Any, deque[float]] = {}
        self._chat_floods: dict[Any, float] = {}  # chat -> refused until
        self._all_flooded_until = 0.0

    # -- scripting ------------------------------------------------------------------------
    def flood_chat(self, chat_id: Any, seconds: float) -> None:
        """Every counted call in this chat is refused for `seconds`, whatever the limits."""
        self._chat_floods[chat_id] = self.clock() + seconds

    def flood_all(self, seconds: float) -> None:
        """Every counted call of the bot is refused for `seconds`."""
        self._all_flooded_until = self.clock() + seconds

    # -- the server's hook ----------------------------------------------------------------
    def admit(self, method: str, params: dict[str, Any]) -> int | None:
        """None when the call may go through (it is counted), else its retry_after."""
        chat_id = params.get("chat_id")
        if chat_id is None or not counted(method):
            return None
        now = self.clock()
        injected = max(self._all_flooded_until, self._chat_floods.get(chat_id, 0.0)) - now
        if injected > 0:
            return self._refuse(method, chat_id, injected, now, injected=True)
        if self.limits is None:
            self.admitted += 1
            return None
        bot, chat = self._buckets(chat_id, now)
        waits = {"bot": bot.wait(now), "chat": chat.wait(now)}
        window = self._group_sends.get(chat_id)
        if window is not None:
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= self.limits.group_per_minute:
                waits["group"] = window[0] + 60.0 - now
        scope, wait = max(waits.items(), key=lambda item: item[1])
        if wait > 0:
            return self._refuse(method, chat_id, wait, now, injected=False, scope=scope)
        bot.tokens -= 1
        chat.tokens -= 1
        if window is not None:
            window.append(now)
        self.admitted += 1
        return None

    # -- internals ------------------------------------------------------------------------
    def _buckets(self, chat_id: Any, now: float) -> tuple[_Bucket, _Bucket]:
        limits = self.limits
        assert limits is not None
        if self._bot is None:
            self._bot = _Bucket(limits.per_second, limits.burst, limits.burst, now)
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Bucket(limits.chat_per_second, limits.chat_burst, limits.chat_burst, now)
            if isinstance(chat_id, str) or chat_id < 0:
                self._group_sends[chat_id] = deque()
        return self._bot, chat

    def _refuse(self, method: str, chat_id: Any, wait: float, now: float, *, injected: bool,
                scope: str = "injected") -> int:
        retry_after = max(1, math.ceil(wait))
        self.refusals.append(Refusal(method, chat_id, retry_after, now, injected, scope))
        return retry_after


def counted(method: str) -> bool:
    """Posts and edits count; chat actions, deletions and reads do not."""
    return method != "sendChatAction" and method.startswith(("send", "edit", "copy", "forward"))
