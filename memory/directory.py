"""Users and groups: who talks to the bot, and the persona each of them talks to now.

`Directory` owns the `users` and `groups` tables (their migrations are the core set's,
memory/migrations.py). A user is created on first sight (`ensure_user`) and refreshed
from what the platform says of them; a group exists once it is named.
"""

from __future__ import annotations

from memory.records import Group, Owner, User
from memory.sql_table import Table

_USER_COLUMNS = ("id, platform, external_id, display_name, language, timezone, persona_id, "
                 "language_override, me_name, me_description, status, allowed, refused_at")
_USER_FIELDS = {"display_name", "language", "timezone", "persona_id", "language_override", "me_name",
                "me_description", "status", "allowed", "refused_at"}


def _user(row: tuple) -> User:
    return User(*row[:11], bool(row[11]), row[12])


class Directory(Table):
    """The users and groups tables; callers never write their SQL."""

    def ensure_user(self, platform: str, external_id: str | int, *, display_name: str | None = None,
                    language: str | None = None) -> User:
        """The user with this platform id, created on first sight; name and language refreshed."""
        external_id = str(external_id)
        with self.db.atomic():
            existing = self.find_user(platform, external_id)
            if existing is None:
                # Another worker may create the same user at the same moment (PostgreSQL):
                # then its row is the one, and ours is refreshed from it below.
                created = self.db.execute(
                    "INSERT INTO users (platform, external_id, display_name, language, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, external_id) DO NOTHING RETURNING id",
                    [platform, external_id, display_name, language, self.now()],
                ).fetchone()
                if created:
                    return self.user(created[0])
                existing = self.find_user(platform, external_id)
            changes = {}
            if display_name and display_name != existing.display_name:
                changes["display_name"] = display_name
            if language and existing.language is None:
                changes["language"] = language
            if changes:
                self.update_user(existing.id, **changes)
                return self.user(existing.id)
            return existing

    def find_user(self, platform: str, external_id: str | int) -> User | None:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE platform = ? AND external_id = ?",
                        [platform, str(external_id)])
        return _user(row) if row else None

    def user(self, user_id: int) -> User:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", [user_id])
        if row is None:
            raise KeyError(f"no user {user_id}")
        return _user(row)

    def users(self, platform: str | None = None) -> list[User]:
        where, params = ("WHERE platform = ?", [platform]) if platform else ("", [])
        return [_user(row) for row in self._rows(f"SELECT {_USER_COLUMNS} FROM users {where} ORDER BY id", params)]

    def ensure_group(self, group_key: str, title: str | None = None) -> Group:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO groups (group_key, title, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (group_key) DO UPDATE SET title = coalesce(excluded.title, groups.title)",
                [group_key, title, self.now()])
        return Group(*self._one("SELECT group_key, title, persona_id FROM groups WHERE group_key = ?", [group_key]))

    def persona_of(self, owner: Owner) -> str | None:
        """The persona this user or group talks to now (None: the default)."""
        if owner.user_id is not None:
            row = self._one("SELECT persona_id FROM users WHERE id = ?", [owner.user_id])
        else:
            row = self._one("SELECT persona_id FROM groups WHERE group_key = ?", [owner.group_key])
        return row[0] if row else None

    def set_persona_of(self, owner: Owner, persona_id: str) -> None:
        with self.db.atomic():
            if owner.user_id is not None:
                self.db.execute("UPDATE users SET persona_id = ? WHERE id = ?", [persona_id, owner.user_id])
            else:
                self.ensure_group(owner.group_key)
                self.db.execute("UPDATE groups SET persona_id = ? WHERE group_key = ?",
                                [persona_id, owner.group_key])

    def update_user(self, user_id: int, **fields: str | int | None) -> None:
        unknown = set(fields) - _USER_FIELDS
        if unknown:
            raise ValueError(f"cannot update user fields {sorted(unknown)}")
        if not fields:
            return
        names = sorted(fields)
        values = [int(fields[name]) if isinstance(fields[name], bool) else fields[name] for name in names]
        with self.db.atomic():
            self.db.execute(f"UPDATE users SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ?",
                            [*values, user_id])

    def count_users(self) -> int:
        return self._one("SELECT count(*) FROM users")[0]

    def forget_user(self, user_id: int) -> None:
        """The forget's last step: the user row itself."""
        self.db.execute("DELETE FROM users WHERE id = ?", [user_id])
