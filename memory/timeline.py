"""Time awareness, cache-stable: the model knows when things were said, and what time it is.

Two places carry time, chosen so that neither disturbs the cached prefix:

* **Time stamps inside the history.** A user message is sent with a line such as
  `[Tue 2024-03-05 14:02]` in front of it when it opens a session (it comes at least
  `session_gap` after the message before it), when it is the conversation's first, and
  when it is the first of the user's messages in a new quarter of an hour of the user's
  clock (the one before it was written in another quarter). The line is a pure function
  of stored data (the message's own timestamp, those of the visible message and of the
  user message just before it, and the user's time zone), so a message looks the same in
  every request, whatever the window's start; it is not stored, so the stored text stays
  what the user wrote. The newest user message is stamped by the same rule, so the
  current time (to within a quarter of an hour) is always in the request, and a stamp
  once sent is resent byte for byte: the time costs no uncached tokens turn after turn,
  where a "current time" line in the tail would cost its own tokens and the previous
  reply's on every turn. Only user messages carry one, so the model never learns to start
  its replies with a date.
* **The tail** (never cached): when a new session opens, this provider adds when the
  previous message was sent and when the conversation began, with how long ago, so
  "three days ago" needs no arithmetic from the model. Within a session it adds nothing.
  A request whose final message is not a stored user message (a check-in, "continue")
  gets the engine's current-time line instead.

Weekday and month names are fixed English, independent of the process locale.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from memory.assembly import TailPart
from memory.engine import ContextProvider, TurnContext, _zone
from memory.records import HistoryRow, from_text, to_text, utc_now
from memory.store import Store
from memory.tokens import count_tokens

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_SESSION_GAP = timedelta(hours=3)


def stamp(moment: datetime, zone: ZoneInfo) -> str:
    """`Tue 2024-03-05 14:02` in the given zone."""
    local = moment.astimezone(zone)
    return f"{WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M}"


def short_stamp(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def ago(then: datetime, now: datetime) -> str:
    """How long ago, in words a model reads without arithmetic."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 3600:
        value, unit = max(1, seconds // 60), "minute"
    elif seconds < 86_400:
        value, unit = seconds // 3600, "hour"
    elif seconds < 60 * 86_400:
        value, unit = seconds // 86_400, "day"
    elif seconds < 730 * 86_400:
        value, unit = seconds // (30 * 86_400), "month"
    else:
        value, unit = seconds // (365 * 86_400), "year"
    return f"{value} {unit}{'s' if value != 1 else ''} ago"


CLOCK_QUARTER_MINUTES = 15


def _quarter(created_at: str) -> str:
    """The quarter of an hour a stored UTC timestamp falls in. Every time zone's offset is a
    multiple of 15 minutes, so two moments share a quarter of the user's clock exactly when
    they share one in UTC: no zone conversion per row (this runs over the whole window)."""
    if not created_at.endswith("+00:00"):
        created_at = to_text(from_text(created_at))
    return f"{created_at[:14]}{int(created_at[14:16]) // CLOCK_QUARTER_MINUTES}"


@lru_cache(maxsize=8192)
def _line_tokens(line: str) -> int:
    # the same rows are decorated on every turn: their stamps are counted once
    return count_tokens(line)


def with_date_lines(rows: Sequence[HistoryRow], previous_at: str | None, zone: ZoneInfo,
                    gap: timedelta = DEFAULT_SESSION_GAP, previous_user_at: str | None = None,
                    *, first: bool | None = None) -> list[HistoryRow]:
    """The rows with a time stamp in front of each user message that opens a session, is
    the conversation's first, or is the user's first in a new quarter of an hour.

    `previous_at` is the timestamp of the visible message just before `rows[0]` and
    `previous_user_at` that of the visible user message before `rows[0]` (None when there
    is none). `first`: whether `rows[0]` is the conversation's first message (by default,
    when `previous_at` is None). A session opened by an assistant message (a greeting)
    gets its line on the next user message.
    """
    result: list[HistoryRow] = []
    last = from_text(previous_at) if previous_at else None
    last_user_quarter = _quarter(previous_user_at) if previous_user_at else None
    opened = (previous_at is None) if first is None else first
    for row in rows:
        at = from_text(row.created_at)
        if last is not None and at - last >= gap:
            opened = True
        if row.role == "user":
            quarter = _quarter(row.created_at)
            if opened or quarter != last_user_quarter:
                line = f"[{stamp(at, zone)}]\n"
                # counted apart from the content: the join can only merge tokens, so the
                # sum never under-counts
                row = replace(row, content=line + row.content, tokens=row.tokens + _line_tokens(line),
                              lead=row.lead + len(line))
            opened = False
            last_user_quarter = quarter
        last = at
        result.append(row)
    return result


class TimelineProvider(ContextProvider):
    """Time stamps in the history (sessions, quarters of an hour); conversation age in the tail."""

    tells_time = True  # the newest user message carries the time: the engine adds no time line

    def __init__(self, store: Store, *, default_timezone: str = "UTC",
                 session_gap: timedelta = DEFAULT_SESSION_GAP, clock=utc_now):
        self.store = store
        self.default_timezone = default_timezone
        self.session_gap = session_gap
        self.clock = clock

    def zone(self, context: TurnContext) -> ZoneInfo:
        return _zone(context.user.timezone if context.user else None, self.default_timezone)

    def decorate_history(self, context: TurnContext, rows: Sequence[HistoryRow]) -> Sequence[HistoryRow]:
        if not rows:
            return rows
        conversation_id, first_id = context.conversation.id, rows[0].id
        previous = self.store.conversations.visible_before(conversation_id, first_id)
        previous_user = self.store.conversations.visible_before(conversation_id, first_id, role="user")
        return with_date_lines(rows, previous, self.zone(context), self.session_gap, previous_user)

    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        conversation_id = context.conversation.id
        first = self.store.conversations.first_visible_at(conversation_id)
        if first is None:
            return ()
        # the newest message that is not part of the turn being answered
        previous = self.store.conversations.last_settled_at(conversation_id)
        now, zone = self.clock(), self.zone(context)
        if previous is None or now - from_text(previous) < self.session_gap:
            return ()  # the middle of a session: the current time says enough
        began, last = from_text(first), from_text(previous)
        text = f"The previous message was sent {stamp(last, zone)} ({ago(last, now)})."
        if last - began >= timedelta(days=1):
            text += f" This conversation began {stamp(began, zone)} ({ago(began, now)})."
        return [TailPart("time", text)]
