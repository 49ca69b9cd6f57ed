"""Who may talk, how much, and about what: access, the daily budget, and screening.

One place for the rules every face applies before and after a turn:

* **Access.** On a platform with an access list (Telegram), only admins are served
  unless the bot is open, plus users on the allowlist or let in with /allow. Everyone
  else is refused once, politely, and costs no model call. Local users (the terminal
  chat) are the operator at their own machine and always come in.
* **Budget.** With a daily token budget, a user who used it up today (midnight in
  their own time zone; cached prompt tokens weigh `cached_token_weight`) gets no
  model call until tomorrow. Admins have no budget.
* **Screening.** With the safety hook on (memory/moderation.py), what the user wrote
  is screened before it is stored, and the reply before it is shown; a refuse policy
  on replies means no preview while the reply is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time as clock_time
from zoneinfo import ZoneInfo

from memory.moderation import SafetyGate, Screening
from memory.service.results import Access
from memory.records import User, to_text
from memory.store import Store

ACCESS_LISTED_PLATFORMS = ("tg",)


@dataclass(frozen=True)
class Policy:
    """The operator's rules, from the settings (the composition root builds it)."""

    daily_tokens: int | None = None
    cached_token_weight: float = 0.1
    default_timezone: str = "UTC"
    admins: frozenset[str] = field(default_factory=frozenset)  # platform ids (Telegram user ids)
    allowed_users: frozenset[str] = field(default_factory=frozenset)
    open_to_all: bool = True
    price_input: float | None = None  # per million tokens
    price_cached_input: float | None = None
    price_output: float | None = None
    price_currency: str = "USD"

    @classmethod
    def of(cls, *, admins=(), allowed_users=(), **values) -> "Policy":
        return cls(admins=frozenset(str(a) for a in admins), allowed_users=frozenset(str(a) for a in allowed_users),
                   **values)


class Admission:
    def __init__(self, store: Store, policy: Policy, safety: SafetyGate | None = None) -> None:
        self.store = store
        self.policy = policy
        self.safety = safety

    # -- access ---------------------------------------------------------------------
    def is_admin(self, user: User) -> bool:
        return user.platform in ACCESS_LISTED_PLATFORMS and str(user.external_id) in self.policy.admins

    def allowed(self, user: User) -> bool:
        if user.platform not in ACCESS_LISTED_PLATFORMS:
            return True
        p = self.policy
        return self.is_admin(user) or p.open_to_all or str(user.external_id) in p.allowed_users or bool(user.allowed)

    def access(self, user: User) -> Access:
        """ALLOWED, or REFUSED the first time (recorded, so the refusal is said once)."""
        if self.allowed(user):
            return Access.ALLOWED
        if user.refused_at is not None:
            return Access.REFUSED_QUIETLY
        self.store.directory.update_user(user.id, refused_at=self.store.now())
        return Access.REFUSED

    def allow(self, platform: str, external_id: str) -> User:
        """An admin lets someone in (/allow)."""
        user = self.store.directory.ensure_user(platform, external_id)
        self.store.directory.update_user(user.id, allowed=1, refused_at=None)
        return self.store.directory.user(user.id)

    # -- budget ---------------------------------------------------------------------
    def midnight(self, user: User) -> datetime:
        zone = ZoneInfo(user.timezone or self.policy.default_timezone)
        now = self.store.clock().astimezone(zone)
        return datetime.combine(now.date(), clock_time(0), tzinfo=zone)

    def tokens_today(self, user: User) -> int:
        totals = self.store.usage.usage_totals(user_id=user.id, since=to_text(self.midnight(user)))
        uncached = totals["prompt_tokens"] - totals["cached_tokens"]
        return int(uncached + totals["cached_tokens"] * self.policy.cached_token_weight + totals["completion_tokens"])

    def over_budget(self, user: User) -> bool:
        if not self.policy.daily_tokens or self.is_admin(user):
            return False
        return self.tokens_today(user) >= self.policy.daily_tokens

    # -- screening ------------------------------------------------------------------
    @property
    def holds_replies_back(self) -> bool:
        return self.safety is not None and self.safety.holds_replies_back

    async def screen_input(self, user: User, content: str, conversation_id: int) -> Screening | None:
        if self.safety is None:
            return None
        return await self.safety.screen_input(content, user_id=user.id, conversation_id=conversation_id)

    async def screen_reply(self, user: User, content: str, conversation_id: int,
                           message_id: int) -> Screening | None:
        if self.safety is None:
            return None
        return await self.safety.screen_output(content, user_id=user.id, conversation_id=conversation_id,
                                               message_id=message_id)
