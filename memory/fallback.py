"""A second endpoint for when the first one is down.

`FallbackClient` looks like a `ModelClient` to the engine. A request goes to the main
endpoint; when that fails in a way another endpoint could fix (429, 5xx, timeouts,
connection errors, after the main client's own retries; or a stream that broke before
any text arrived), the same request goes to the fallback endpoint and model. The
completion then names the fallback model (`Completion.model`, which the engine records in
`usage.model`) and the model that failed (`fallback_from`), so the user can be told who
answered.

Errors another endpoint would not fix (a bad request, a refused key, a context that is too
long for the model) go back to the engine unchanged; so does a stream that broke after
text arrived, whose partial text the engine keeps.

After a fallback, the main endpoint rests for `cooldown_seconds`: the turns in that time
go straight to the fallback instead of each waiting for the main endpoint's retries to
run out. That also lets the engine's shrink-and-retry on a context-length error reach the
fallback model again when its window is the smaller one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Callable

from memory.model_client import RETRYABLE, Completion, ErrorKind, ModelClient, ModelError

log = logging.getLogger(__name__)


def worth_falling_back(error: ModelError) -> bool:
    return error.kind in RETRYABLE or (error.kind is ErrorKind.STREAM and not error.partial.strip())


class FallbackClient:
    def __init__(self, primary: ModelClient, fallback: ModelClient, *, fallback_model: str | None = None,
                 cooldown_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`fallback_model`: the model to ask at the fallback endpoint; None asks it for the
        same model (another provider of the same model)."""
        self.primary = primary
        self.fallback = fallback
        self.fallback_model = fallback_model
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self._primary_rests_until = float("-inf")

    @property
    def base_url(self) -> str | None:
        return self.primary.base_url

    def primary_resting(self) -> bool:
        return self.clock() < self._primary_rests_until

    async def stream_chat(self, *, model: str, **request: Any) -> Completion:
        if self.primary_resting():
            return await self._ask_fallback(model, request)
        try:
            return await self.primary.stream_chat(model=model, **request)
        except ModelError as error:
            if not worth_falling_back(error):
                raise
            self._primary_rests_until = self.clock() + self.cooldown_seconds
            log.warning("model %s failed (%s); asking the fallback endpoint", model, error.detail)
            on_restart = request.get("on_restart")
            if on_restart is not None:  # drop anything the broken stream showed
                await on_restart()
            return await self._ask_fallback(model, request)

    async def _ask_fallback(self, model: str, request: dict[str, Any]) -> Completion:
        completion = await self.fallback.stream_chat(model=self.fallback_model or model, **request)
        return replace(completion, fallback_from=model)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
