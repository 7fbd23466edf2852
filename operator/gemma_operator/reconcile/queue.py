"""A work queue per controller, as controller-runtime has: requests for one key coalesce, at most one worker
handles a key at a time, failures come back after a growing backoff, and a bounded number of workers run."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gemma_operator.reconcile.clock import Clock

K = TypeVar("K", bound=Hashable)
N = TypeVar("N")
log = logging.getLogger("gemma_operator")


@dataclass(frozen=True)
class Result:
    """What a worker asks of the queue once it has handled a key."""

    # Failed, or waiting for the cluster to change: again after the key's backoff, which grows with each retry.
    retry: bool = False
    # Again after at most this many seconds (something is due then); without `retry`, the backoff is reset.
    after: float | None = None


DONE = Result()
RETRY = Result(retry=True)


@dataclass(frozen=True)
class Backoff:
    """Exponential: `base` after the first failure, doubling up to `cap`."""

    base: float = 15.0
    cap: float = 600.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), 32))


Handler = Callable[[K, list[N]], Awaitable[Result]]


class WorkQueue(Generic[K, N]):
    """Keys due at a time, handled by `workers` tasks on the running event loop.

    `add(key, delay, note)` asks for the key to be handled within `delay` seconds (the earliest request wins) and
    may attach a note (a message for the handler, such as a finished smoke check); the handler gets every note
    that arrived since it last ran. A request that arrives while the key is being handled runs it again
    afterwards, never beside it. Not thread-safe: call it from the event loop only.
    """

    def __init__(self, name: str, handler: Handler[K, N], *, workers: int, clock: Clock, backoff: Backoff) -> None:
        self.name = name
        self._handler = handler
        self._workers = workers
        self._clock = clock
        self._backoff = backoff
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._order = 0
        self._notes: dict[K, list[N]] = {}
        self._running: set[K] = set()
        self._again: dict[K, float] = {}
        self._failures: dict[K, int] = {}
        self._forgotten: set[K] = set()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K, delay: float = 0.0, note: N | None = None) -> None:
        if note is not None:
            self._notes.setdefault(key, []).append(note)
        due = self._clock.monotonic() + max(0.0, delay)
        self._forgotten.discard(key)
        if key in self._running:
            self._again[key] = min(due, self._again.get(key, math.inf))
        else:
            self._schedule(key, due)

    def reset_backoff(self, key: K) -> None:
        """Something changed that a retry was waiting for (the spec): the next failure waits the base delay."""
        self._failures.pop(key, None)

    def forget(self, key: K) -> None:
        """Drop everything about the key; a handler running for it now has its result ignored."""
        self._due.pop(key, None)
        self._notes.pop(key, None)
        self._again.pop(key, None)
        self._failures.pop(key, None)
        if key in self._running:
            self._forgotten.add(key)

    def pending(self, key: K) -> bool:
        """Whether the key is due to be handled (or handled now)."""
        return key in self._due or key in self._running

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"{self.name}-{n}") for n in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _schedule(self, key: K, due: float) -> None:
        if self._due.get(key, math.inf) <= due:
            return
        self._due[key] = due
        self._order += 1
        heapq.heappush(self._heap, (due, self._order, key))
        self._wakeup.set()

    async def _next(self) -> K:
        while True:
            # Entries whose key was forgotten or moved earlier are stale.
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            now = self._clock.monotonic()
            if self._heap and self._heap[0][0] <= now:
                _, _, key = heapq.heappop(self._heap)
                del self._due[key]
                return key
            self._wakeup.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _work(self) -> None:
        while True:
            key = await self._next()
            notes = self._notes.pop(key, [])
            self._running.add(key)
            try:
                result = await self._handler(key, notes)
            except Exception:
                log.exception("%s of %s failed", self.name, key)
                result = RETRY
            finally:
                self._running.discard(key)
            if key in self._forgotten:
                self._forgotten.discard(key)
                continue
            self._settle(key, result)

    def _settle(self, key: K, result: Result) -> None:
        now, due = self._clock.monotonic(), math.inf
        if result.retry:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            due = now + self._backoff.delay(failures)
        else:
            self._failures.pop(key, None)
        if result.after is not None:
            due = min(due, now + result.after)
        due = min(due, self._again.pop(key, math.inf))
        if due < math.inf:
            self._schedule(key, due)
