"""Progress and cancellation for long jobs (reading a book, finding its characters).

A job reports `(stage, percent)` through a plain callback, from whatever thread it runs
in; the face decides how to show it (Telegram edits one status message, the CLI draws a
bar). `Stages` turns "stage X is 40% done" into one overall percentage that never goes
backwards. A `CancelToken` is a thread-safe flag the face sets and the job checks
between steps; `check()` raises `Cancelled`, and the job cleans up after itself.
"""

from __future__ import annotations

import threading
from typing import Callable

Progress = Callable[[str, int], None]  # (stage, overall percent 0..100)


class Cancelled(Exception):
    """The job was cancelled by the user; nothing it started is kept."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class Stages:
    """Maps progress within named stages, each with a weight, onto 0..100 overall."""

    def __init__(self, progress: Progress | None, weights: dict[str, float]):
        self.progress = progress
        total = sum(weights.values())
        self._spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for stage, weight in weights.items():
            self._spans[stage] = (start, weight / total)
            start += weight / total
        self._last = -1

    def report(self, stage: str, fraction: float = 0.0) -> None:
        if self.progress is None:
            return
        start, width = self._spans[stage]
        percent = int(100 * (start + width * min(max(fraction, 0.0), 1.0)))
        percent = max(percent, self._last)
        self._last = percent
        self.progress(stage, percent)

    def done(self, stage: str) -> None:
        self.report(stage, 1.0)
