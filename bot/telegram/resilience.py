"""Bot API calls that ride out Telegram's transient failures: a middleware of the bot's
HTTP session, so every call of every handler is covered without each handler knowing.

aiogram raises on the first failure and never retries. Here, the failures that mean
"try again" are retried a few times, within `max_wait` seconds in all: 429 (flood
control: wait the `retry_after` Telegram asks for), 5xx (a short backoff), and network
errors for calls that can safely run twice (reads, edits, deletions, answers to button
presses; a `send*` that timed out may have been delivered, so it is not sent again).

Calls that pace themselves are left to themselves: getUpdates (aiogram's polling backs
off on its own) and the calls a streaming reply makes (`TelegramReply` skips previews
while Telegram is flooded and retries its final message itself); they run inside
`own_retries()`.

answerCallbackQuery only stops a button's spinner: if Telegram refuses it ("query is
too old", a flood that outlasts the retries), that is logged and the button's action goes
on, instead of the whole handler failing before it did what the user asked.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import AnswerCallbackQuery, GetUpdates, TelegramMethod

log = logging.getLogger(__name__)
_own_retries: contextvars.ContextVar[bool] = contextvars.ContextVar("telegram_own_retries", default=False)


@contextmanager
def own_retries() -> Iterator[None]:
    """Calls made inside handle Telegram's failures themselves: the middleware passes them on."""
    token = _own_retries.set(True)
    try:
        yield
    finally:
        _own_retries.reset(token)


def mark_own_retries() -> None:
    """The same for the rest of the current task (a streaming reply's background tasks)."""
    _own_retries.set(True)


class TelegramRetry(BaseRequestMiddleware):
    def __init__(self, *, attempts: int = 4, max_wait: float = 60.0, backoff: float = 0.5) -> None:
        self.attempts = attempts
        self.max_wait = max_wait
        self.backoff = backoff

    async def __call__(self, make_request: NextRequestMiddlewareType, bot: Any, method: TelegramMethod) -> Any:
        if isinstance(method, GetUpdates) or _own_retries.get():
            return await make_request(bot, method)
        deadline = time.monotonic() + self.max_wait
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramAPIError as error:
                wait = self._wait(error, method, attempt)
                if wait is None or attempt == self.attempts or time.monotonic() + wait > deadline:
                    if isinstance(method, AnswerCallbackQuery):
                        log.info("answering a button press failed (%s); its action goes on", error)
                        return True
                    raise
                log.info("Telegram %s failed (%s); retrying in %.1f s", method.__api_method__, error, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, error: TelegramAPIError, method: TelegramMethod, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when trying again cannot help."""
        if isinstance(error, TelegramRetryAfter):
            return float(error.retry_after)
        if isinstance(error, TelegramServerError):
            return self.backoff * 2 ** (attempt - 1)
        if isinstance(error, TelegramNetworkError) and not method.__api_method__.startswith("send"):
            return self.backoff * 2 ** (attempt - 1)
        return None
