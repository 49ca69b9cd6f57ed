"""Who the bot serves: one rule for every face (the chat's `People` middleware, the Mini App).

Admins always; everyone when the bot is open; else the allowlist (`COMPANION_ALLOWED_USERS`)
and users an admin let in (`users.allowed`). With none of these only admins are served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memory.store import User


@dataclass(frozen=True)
class AccessRule:
    admins: frozenset[int] = field(default_factory=frozenset)
    allowed_users: frozenset[int] = field(default_factory=frozenset)
    open_to_all: bool = False

    @classmethod
    def of(cls, admins, allowed_users, open_to_all: bool) -> "AccessRule":
        return cls(frozenset(admins), frozenset(allowed_users), open_to_all)

    def is_admin(self, telegram_id: int) -> bool:
        return telegram_id in self.admins

    def admits(self, telegram_id: int, user: User) -> bool:
        return (self.is_admin(telegram_id) or self.open_to_all or telegram_id in self.allowed_users
                or user.allowed)
