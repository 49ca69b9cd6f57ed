"""Time awareness, cache-safe: the model knows when things were said.

Two places carry time, chosen so that neither disturbs the cached prefix:

* **Date lines inside the history.** A user message that opens a session (it comes at
  least `session_gap` after the message before it) is sent with a line such as
  `[Tue 2024-03-05 14:02]` in front of it. The line is a pure function of stored data
  (the two messages' UTC timestamps and the user's time zone), so a message looks the
  same in every request; it is not stored, so the stored text stays what the user wrote.
  Only user messages carry one, so the model never learns to start its replies with a
  date. The conversation's very first message has none (no session came before it); the
  tail says when the conversation began.
* **The tail** (never cached): the engine adds the current time in the user's zone; when
  a new session opens, this provider adds when the previous message was sent and when the
  conversation began, with how long ago, so "three days ago" needs no arithmetic from the
  model. Within a session it adds nothing (every tail token is paid in full each turn).

Weekday and month names are fixed English, independent of the process locale.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from memory.assembly import TailPart
from memory.engine import ContextProvider, TurnContext, _zone
from memory.store import HistoryRow, Store, from_text, utc_now
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


def with_date_lines(rows: Sequence[HistoryRow], previous_at: str | None, zone: ZoneInfo,
                    gap: timedelta = DEFAULT_SESSION_GAP) -> list[HistoryRow]:
    """The rows with a date line in front of each user message that opens a session.

    `previous_at` is the timestamp of the visible message just before `rows[0]` (None
    when `rows[0]` is the conversation's first). A session opened by an assistant
    message (a greeting) gets its line on the next user message.
    """
    result: list[HistoryRow] = []
    last = from_text(previous_at) if previous_at else None
    opened = False
    for row in rows:
        at = from_text(row.created_at)
        if last is not None and at - last >= gap:
            opened = True
        if opened and row.role == "user":
            line = f"[{stamp(at, zone)}]\n"
            # counted apart from the content: the join can only merge tokens, so the
            # sum never under-counts
            row = replace(row, content=line + row.content, tokens=row.tokens + count_tokens(line))
            opened = False
        last = at
        result.append(row)
    return result


class TimelineProvider(ContextProvider):
    """Date lines between sessions in the history; conversation age in the tail."""

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
        previous = self.store.db.execute(
            "SELECT created_at FROM messages WHERE conversation_id = ? AND id < ? AND status != 'hidden' "
            "ORDER BY id DESC LIMIT 1", [context.conversation.id, rows[0].id]).fetchone()
        return with_date_lines(rows, previous[0] if previous else None, self.zone(context), self.session_gap)

    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        conversation_id = context.conversation.id
        first = self.store.db.execute(
            "SELECT created_at FROM messages WHERE conversation_id = ? AND status != 'hidden' "
            "ORDER BY id LIMIT 1", [conversation_id]).fetchone()
        if first is None:
            return ()
        # the newest message that is not part of the turn being answered
        previous = self.store.db.execute(
            "SELECT created_at FROM messages WHERE conversation_id = ? AND status NOT IN ('hidden', 'pending') "
            "ORDER BY id DESC LIMIT 1", [conversation_id]).fetchone()
        now, zone = self.clock(), self.zone(context)
        if previous is None or now - from_text(previous[0]) < self.session_gap:
            return ()  # the middle of a session: the current time says enough
        began, last = from_text(first[0]), from_text(previous[0])
        text = f"The previous message was sent {stamp(last, zone)} ({ago(last, now)})."
        if last - began >= timedelta(days=1):
            text += f" This conversation began {stamp(began, zone)} ({ago(began, now)})."
        return [TailPart("time", text)]
