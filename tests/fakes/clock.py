"""A clock tests move by hand: pass it as `clock=` to the Store, the engine or
`build_services`, then `advance()` it instead of waiting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class ManualClock:
    def __init__(self, start: datetime | str = "2026-03-02T10:00:00+00:00") -> None:
        self.now = datetime.fromisoformat(start) if isinstance(start, str) else start
        if self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: str) -> datetime:
        self.now = datetime.fromisoformat(moment)
        return self.now
