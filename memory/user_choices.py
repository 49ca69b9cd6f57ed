"""What a user chose for their companion: a model (/model), voice replies (/voice), and
their age confirmation on bots that ask for one. One row per user in `user_choices`,
created on the first choice; a user without a row has chosen nothing."""

from __future__ import annotations

from dataclasses import dataclass

from memory.store import Store


@dataclass(frozen=True)
class Choices:
    model: str | None = None  # None: the operator's default
    voice_replies: bool = False
    age_confirmed_at: str | None = None


class UserChoices:
    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, user_id: int) -> Choices:
        row = self.store.db.execute(
            "SELECT model, voice_replies, age_confirmed_at FROM user_choices WHERE user_id = ?",
            [user_id]).fetchone()
        return Choices(row[0], bool(row[1]), row[2]) if row else Choices()

    def set_model(self, user_id: int, model: str | None) -> None:
        self._set(user_id, "model", model)

    def set_voice_replies(self, user_id: int, on: bool) -> None:
        self._set(user_id, "voice_replies", int(on))

    def confirm_age(self, user_id: int) -> None:
        self._set(user_id, "age_confirmed_at", self.store.now())

    def _set(self, user_id: int, column: str, value: object) -> None:
        now = self.store.now()
        with self.store.db.atomic():
            self.store.db.execute(
                f"INSERT INTO user_choices (user_id, {column}, updated_at) VALUES (?, ?, ?) "
                f"ON CONFLICT (user_id) DO UPDATE SET {column} = excluded.{column}, "
                "updated_at = excluded.updated_at",
                [user_id, value, now])
