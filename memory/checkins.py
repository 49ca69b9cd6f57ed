"""Check-ins: the character writes first, now and then, to users who asked for it.

A user opts in (`switch_on`) with a rhythm (at most one check-in per `every`) and quiet
hours in their own time zone. Nobody else is ever written to first.

When a check-in is due (`due_time`): `every` after the later of the user's last message,
the last check-in, and the moment they opted in, moved out of their quiet hours. So a
conversation in full swing gets none, and someone who just talked gets none for a while.
After `unanswered_limit` check-ins in a row without an answer, the character stops
writing until the user writes again.

Durability: the plan's next due time lives in the database, so a restart loses nothing.
`claim_due` takes each due check-in with one conditional UPDATE that moves the due time
on (only one process, or one pass, can win it) and records the claim in the `checkins`
ledger in the same transaction. The check-in is then written by the engine (`write`),
sent by the transport, and marked `sent`. A claim a crash left unfinished is marked
`abandoned` at start-up (`recover`) and its stored text hidden: it is never sent late,
and never twice.

The message itself is an ordinary reply of the conversation: the model sees the whole
history and memory, and an unstored instruction after it (`Engine.reach_out`), so it can
pick up an open thread, a promised event or a date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memory.engine import Engine, TurnResult
from memory.records import Owner, User, from_text, to_text

DAY_MINUTES = 24 * 60
DEFAULT_EVERY = timedelta(days=1)

CHECKIN_INSTRUCTION = (
    "[Not written by {user}: {user} has not written for {silence}. You decide to write to them first, "
    "as {char} would: a short message (one to three sentences), warm and natural, like a text from someone "
    "who thinks of them. If the conversation left something open (a question, a plan, a promised or "
    "upcoming event, a date that matters), pick that up; otherwise say hello in your own way. "
    "Do not mention this note.]"
)


@dataclass(frozen=True)
class QuietHours:
    """A daily span of local time, in minutes after midnight; it may wrap past midnight.
    Equal ends mean no quiet hours."""

    start: int
    end: int

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """`moment`, or the end of the quiet hours it falls in (UTC)."""
        local = moment.astimezone(zone)
        if not self.contains(local):
            return moment
        end = time(self.end // 60, self.end % 60)
        candidate = datetime.combine(local.date(), end, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
        return candidate.astimezone(timezone.utc)

    def __str__(self) -> str:
        if self.start == self.end:
            return "-"
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d}"


_QUIET = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(?:-|–|~|to|到|至)\s*(\d{1,2})(?:[:.](\d{2}))?$", re.IGNORECASE)
_EVERY = re.compile(r"^(\d{1,3})\s*(h|hrs?|hours?|小时|d|days?|天|w|weeks?|周)$", re.IGNORECASE)
_EVERY_WORDS = {"daily": 1, "day": 1, "每天": 1, "天天": 1, "weekly": 7, "week": 7, "每周": 7}
NO_QUIET_WORDS = {"off", "none", "no", "关", "无", "不要"}


def parse_quiet(text: str) -> QuietHours | None:
    """'22-8', '22:30-07:00', '23到7'; 'off' for none. None when it is not a time span."""
    value = text.strip()
    if value.lower() in NO_QUIET_WORDS:
        return QuietHours(0, 0)
    match = _QUIET.match(value)
    if not match:
        return None
    start_hour, start_minute, end_hour, end_minute = (int(g or 0) for g in match.groups())
    if start_hour > 24 or end_hour > 24 or start_minute > 59 or end_minute > 59:
        return None
    return QuietHours((start_hour * 60 + start_minute) % DAY_MINUTES, (end_hour * 60 + end_minute) % DAY_MINUTES)


def parse_every(text: str) -> timedelta | None:
    """'12h', '2d', '1w', 'daily', 'weekly', '每天'. None when it is not a rhythm."""
    value = text.strip().lower()
    if value in _EVERY_WORDS:
        return timedelta(days=_EVERY_WORDS[value])
    match = _EVERY.match(value)
    if not match or int(match.group(1)) == 0:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if unit.startswith("h") or unit == "小时":
        return timedelta(hours=count)
    if unit.startswith("w") or unit == "周":
        return timedelta(weeks=count)
    return timedelta(days=count)


def zone_of(user: User, default: str) -> ZoneInfo:
    for name in (user.timezone, default):
        try:
            return ZoneInfo(name) if name else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def silence_text(elapsed: timedelta) -> str:
    """How long the user has been quiet, in words for the model."""
    hours = elapsed.total_seconds() / 3600
    if hours < 1.5:
        return "about an hour"
    if hours < 36:
        return f"about {round(hours)} hours"
    return f"about {round(hours / 24)} days"


@dataclass(frozen=True)
class CheckinPlan:
    user_id: int
    enabled: bool
    every: timedelta
    quiet: QuietHours
    enabled_at: datetime | None
    due_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """A check-in taken for sending: its ledger row, whom it is for, where it goes."""

    id: int
    user: User
    conversation_id: int
    instruction: str


_PLAN_COLUMNS = "user_id, enabled, every_minutes, quiet_start, quiet_end, enabled_at, due_at"


def _plan(row: tuple) -> CheckinPlan:
    user_id, enabled, every, quiet_start, quiet_end, enabled_at, due_at = row
    return CheckinPlan(user_id, bool(enabled), timedelta(minutes=every), QuietHours(quiet_start, quiet_end),
                       from_text(enabled_at) if enabled_at else None, from_text(due_at) if due_at else None)


class Checkins:
    def __init__(self, engine: Engine, *, default_every: timedelta = DEFAULT_EVERY,
                 default_quiet: QuietHours = QuietHours(22 * 60, 9 * 60), min_every: timedelta = timedelta(hours=4),
                 max_every: timedelta = timedelta(days=30), unanswered_limit: int = 2) -> None:
        self.engine = engine
        self.store = engine.store
        self.default_every = default_every
        self.default_quiet = default_quiet
        self.min_every = min_every
        self.max_every = max_every
        self.unanswered_limit = unanswered_limit

    # -- the user's plan ------------------------------------------------------------------
    def plan(self, user_id: int) -> CheckinPlan | None:
        row = self.store.db.execute(f"SELECT {_PLAN_COLUMNS} FROM checkin_plans WHERE user_id = ?",
                                    [user_id]).fetchone()
        return _plan(row) if row else None

    def allowed_every(self, every: timedelta) -> bool:
        return self.min_every <= every <= self.max_every

    def switch_on(self, user: User, every: timedelta | None = None) -> CheckinPlan:
        current = self.plan(user.id)
        every = every or (current.every if current else self.default_every)
        if not self.allowed_every(every):
            raise ValueError(f"a check-in rhythm must be between {self.min_every} and {self.max_every}")
        quiet = current.quiet if current else self.default_quiet
        now = self.store.clock()
        self._save(user.id, True, every, quiet, enabled_at=now,
                   due_at=quiet.after(now + every, zone_of(user, self.engine.default_timezone)))
        return self.plan(user.id)

    def switch_off(self, user: User) -> None:
        current = self.plan(user.id)
        if current is not None:
            self._save(user.id, False, current.every, current.quiet, enabled_at=None, due_at=None)

    def set_quiet(self, user: User, quiet: QuietHours) -> CheckinPlan:
        current = self.plan(user.id)
        if current is None or not current.enabled:
            self._save(user.id, False, current.every if current else self.default_every, quiet,
                       enabled_at=None, due_at=None)
        else:
            due = quiet.after(current.due_at or self.store.clock() + current.every,
                              zone_of(user, self.engine.default_timezone))
            self._save(user.id, True, current.every, quiet, enabled_at=current.enabled_at, due_at=due)
        return self.plan(user.id)

    def _save(self, user_id: int, enabled: bool, every: timedelta, quiet: QuietHours, *,
              enabled_at: datetime | None, due_at: datetime | None) -> None:
        with self.store.db.atomic():
            self.store.db.execute(
                f"INSERT INTO checkin_plans ({_PLAN_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET enabled = excluded.enabled, every_minutes = "
                "excluded.every_minutes, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, "
                "enabled_at = excluded.enabled_at, due_at = excluded.due_at, updated_at = excluded.updated_at",
                [user_id, int(enabled), int(every.total_seconds() // 60), quiet.start, quiet.end,
                 to_text(enabled_at) if enabled_at else None, to_text(due_at) if due_at else None,
                 self.store.now()])

    # -- when --------------------------------------------------------------------------------
    def due_time(self, plan: CheckinPlan, user: User) -> datetime:
        """The earliest moment the next check-in may go out, from the stored activity."""
        moments = [m for m in (self._last_user_message_at(user.id), self._last_sent_at(user.id), plan.enabled_at)
                   if m is not None]
        since = max(moments) if moments else self.store.clock()
        return plan.quiet.after(since + plan.every, zone_of(user, self.engine.default_timezone))

    def unanswered(self, user_id: int) -> int:
        """Check-ins sent since the user last wrote."""
        last = self._last_user_message_at(user_id)
        row = self.store.db.execute(
            "SELECT count(*) FROM checkins WHERE user_id = ? AND status = 'sent' AND claimed_at > ?",
            [user_id, to_text(last) if last else ""]).fetchone()
        return row[0]

    def _last_user_message_at(self, user_id: int) -> datetime | None:
        row = self.store.db.execute(
            "SELECT max(created_at) FROM messages WHERE role = 'user' AND conversation_id IN "
            "(SELECT id FROM conversations WHERE user_id = ?)", [user_id]).fetchone()
        return from_text(row[0]) if row and row[0] else None

    def _last_sent_at(self, user_id: int) -> datetime | None:
        row = self.store.db.execute("SELECT max(claimed_at) FROM checkins WHERE user_id = ? AND status = 'sent'",
                                    [user_id]).fetchone()
        return from_text(row[0]) if row and row[0] else None

    # -- claiming and writing ------------------------------------------------------------------
    def claim_due(self, platform: str = "tg") -> list[Claim]:
        """Take every check-in that is due now. Plans that turn out not to be due (the user
        wrote since, quiet hours, too many unanswered) are moved to their next due time."""
        now = self.store.clock()
        rows = self.store.db.execute(
            f"SELECT {', '.join('p.' + c.strip() for c in _PLAN_COLUMNS.split(','))} FROM checkin_plans p "
            "JOIN users u ON u.id = p.user_id WHERE p.enabled = 1 AND p.due_at <= ? AND u.platform = ? "
            "ORDER BY p.due_at", [to_text(now), platform]).fetchall()
        claims = []
        for plan in map(_plan, rows):
            claim = self._claim_if_due(plan, now)
            if claim is not None:
                claims.append(claim)
        return claims

    def _claim_if_due(self, plan: CheckinPlan, now: datetime) -> Claim | None:
        user = self.store.directory.user(plan.user_id)
        zone = zone_of(user, self.engine.default_timezone)
        due = self.due_time(plan, user)
        if due > now:
            self._move(plan, due)
            return None
        if user.status != "active" or self.unanswered(user.id) >= self.unanswered_limit:
            self._move(plan, plan.quiet.after(now + plan.every, zone))
            return None
        if plan.quiet.contains(now.astimezone(zone)):
            self._move(plan, plan.quiet.after(now, zone))
            return None
        owner = Owner.user(user.id)
        conversation = self.engine.conversation_for(owner, self.store.directory.persona_of(owner), user=user)
        with self.store.db.atomic():
            moved = self.store.db.execute(
                "UPDATE checkin_plans SET due_at = ?, updated_at = ? WHERE user_id = ? AND enabled = 1 AND due_at = ?",
                [to_text(plan.quiet.after(now + plan.every, zone)), to_text(now), user.id, to_text(plan.due_at)])
            if moved.rowcount != 1:
                return None  # another pass took it, or the user changed the plan meanwhile
            claimed = self.store.db.execute(
                "INSERT INTO checkins (user_id, due_at, claimed_at, status, conversation_id) "
                "VALUES (?, ?, ?, 'claimed', ?) ON CONFLICT (user_id, due_at) DO NOTHING RETURNING id",
                [user.id, to_text(plan.due_at), to_text(now), conversation.id]).fetchone()
            if claimed is None:
                return None
        silence = now - (self._last_user_message_at(user.id) or plan.enabled_at or now)
        persona = self.engine.persona(conversation.persona_id)
        instruction = CHECKIN_INSTRUCTION.format(user=user.name, char=persona.name, silence=silence_text(silence))
        return Claim(claimed[0], user, conversation.id, instruction)

    def _move(self, plan: CheckinPlan, due: datetime) -> None:
        with self.store.db.atomic():
            self.store.db.execute("UPDATE checkin_plans SET due_at = ? WHERE user_id = ? AND due_at = ?",
                                  [to_text(due), plan.user_id, to_text(plan.due_at)])

    async def write(self, claim: Claim) -> TurnResult:
        """The check-in message, written by the model in the conversation and stored."""
        result = await self.engine.reach_out(claim.conversation_id, claim.instruction, user=claim.user)
        if result.reply is None:
            self.finish(claim, "failed")
        else:
            with self.store.db.atomic():
                self.store.db.execute("UPDATE checkins SET message_id = ? WHERE id = ?", [result.reply.id, claim.id])
        return result

    def finish(self, claim: Claim, status: str) -> None:
        """`sent`; or `failed`/`skipped`/`withheld`, which hide any stored text the user never saw."""
        with self.store.db.atomic():
            self.store.db.execute("UPDATE checkins SET status = ?, finished_at = ? WHERE id = ?",
                                  [status, self.store.now(), claim.id])
            if status != "sent":
                self._hide_messages("id = ?", [claim.id])

    def recover(self) -> int:
        """After a restart: claims left unfinished are abandoned, never sent late or twice."""
        with self.store.db.atomic():
            self._hide_messages("status = 'claimed'", [])
            return self.store.db.execute(
                "UPDATE checkins SET status = 'abandoned', finished_at = ? WHERE status = 'claimed'",
                [self.store.now()]).rowcount

    def _hide_messages(self, where: str, params: list) -> None:
        self.store.db.execute(
            f"UPDATE messages SET status = 'hidden' WHERE id IN (SELECT message_id FROM checkins WHERE {where} "
            "AND message_id IS NOT NULL)", params)

    def ledger(self, user_id: int) -> list[tuple[str, str]]:
        """(due_at, status) of a user's check-ins, oldest first."""
        return [tuple(row) for row in self.store.db.execute(
            "SELECT due_at, status FROM checkins WHERE user_id = ? ORDER BY id", [user_id]).fetchall()]
