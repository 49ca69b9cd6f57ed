"""The model gate: how many requests one endpoint takes at once, a user's turn first.

A local model server has few slots: llama-cpp-python's server has one, and a request that
arrives while another streams *interrupts* it (the stream ends without a finish reason);
llama.cpp's `llama-server --parallel N` and Ollama's `OLLAMA_NUM_PARALLEL` have N, each with
its own prompt cache. Background work (fact extraction, summaries, document reading) sent
while a reply streams would cut the reply, and evict the conversation from the slot's cache.
So every request to an endpoint passes its gate:

* `slots` requests at once (None: no limit, for cloud providers);
* a turn (a reply someone is waiting for) takes a free slot at once, before any waiting
  background work;
* background work starts only when that leaves a slot free for a turn: with one slot, only
  when the endpoint is idle; it never starts while a turn waits;
* a turn that finds every slot taken waits for one, and for background work that holds it
  to finish (a background call is short: its prefix is cached, its answer a few hundred
  tokens). With `preempt=True` the turn takes the slot over instead: the background request
  is cancelled and sent again when the endpoint is free, once (the second time it runs to
  its end, so background work cannot be starved by a fast typist). That answers sooner on a
  slow server, at the price of evaluating the task's instruction twice; measured in
  `python -m benchmarks real_model`, where the next line arrives at once, it cost about two
  points of cache share, so it is off by default (`COMPANION_MODEL_PREEMPT`).

`default_slots(base_url)` picks 1 for an endpoint on this machine or a private network
(where one process serves one model) and no limit otherwise; `COMPANION_MODEL_SLOTS`
overrides it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class Preempted(Exception):
    """A turn took over the slot this background request held; send it again later."""


def is_local_endpoint(base_url: str | None) -> bool:
    """Whether the endpoint is on this machine or a private network: localhost, a private
    or link-local address, a `.local`/`.internal` name, or a bare name without dots (a
    Docker Compose service such as `ollama`)."""
    if not base_url:
        return False  # the SDK's default: api.openai.com
    host = (urlsplit(base_url if "//" in base_url else f"http://{base_url}").hostname or "").lower()
    if not host:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")) or "." not in host:
        return ":" not in host or _private(host)
    return _private(host)


def _private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def default_slots(base_url: str | None) -> int | None:
    """1 for a local or private endpoint, None (no limit) otherwise."""
    return 1 if is_local_endpoint(base_url) else None


class _Hold:
    """A background request holding a slot."""

    def __init__(self, preemptible: bool) -> None:
        self.preemptible = preemptible
        self.preempted = asyncio.Event()

    async def run(self, work: Awaitable[T]) -> T:
        """Run `work`; raise Preempted (after cancelling it) if a turn takes the slot over."""
        task = asyncio.ensure_future(work)
        if not self.preemptible:
            return await task
        waiter = asyncio.ensure_future(self.preempted.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Preempted()


class ModelGate:
    def __init__(self, slots: int | None = None, *, preempt: bool = False) -> None:
        self.slots = slots if slots and slots > 0 else None
        self.preempt = preempt
        self._busy = 0
        self._turns_waiting = 0
        self._holds: list[_Hold] = []
        self._waiters: list[asyncio.Future] = []
        self.preemptions = 0  # how many background requests a turn took over (for logs and tests)

    @property
    def busy(self) -> int:
        return self._busy

    def _turn_may_start(self) -> bool:
        return self.slots is None or self._busy < self.slots

    def _background_may_start(self) -> bool:
        if self.slots is None:
            return True
        if self._turns_waiting:
            return False
        # one slot: only when idle; several: keep one free for the next turn
        return self._busy < max(1, self.slots - 1)

    def _preempt_one(self) -> None:
        if any(hold.preempted.is_set() for hold in self._holds):
            return  # one is already on its way out
        for hold in self._holds:
            if hold.preemptible:
                hold.preempted.set()
                self.preemptions += 1
                return

    async def _wait_change(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self) -> None:
        """Synchronous, so that a cancelled holder can never keep its slot."""
        self._busy -= 1
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        self._turns_waiting += 1
        try:
            while not self._turn_may_start():
                self._preempt_one()
                await self._wait_change()
        finally:
            self._turns_waiting -= 1
            self._wake()  # background work may wait for no turn to be waiting
        self._busy += 1
        try:
            yield
        finally:
            self._release()

    @asynccontextmanager
    async def background(self, *, preemptible: bool = True) -> AsyncIterator[_Hold]:
        while not self._background_may_start():
            await self._wait_change()
        hold = _Hold(preemptible and self.preempt)
        self._busy += 1
        self._holds.append(hold)
        try:
            yield hold
        finally:
            self._holds.remove(hold)
            self._release()
