"""Calls deferred per key to a due time, on one daemon thread (not a timer thread per object)."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("gemma_operator")


class Deferred(Generic[K]):
    """``schedule(key, delay)`` runs ``call(key)`` once after ``delay`` seconds; the earliest pending time wins."""

    def __init__(self, call: Callable[[K], object]) -> None:
        self._call = call
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._order = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, key: K, delay: float) -> None:
        due = time.monotonic() + max(0.0, delay)
        with self._ready:
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            self._order += 1
            heapq.heappush(self._heap, (due, self._order, key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="deferred", daemon=True)
                self._thread.start()
            self._ready.notify()

    def cancel(self, key: K) -> None:
        with self._ready:
            self._due.pop(key, None)

    def pending(self, key: K) -> bool:
        with self._ready:
            return key in self._due

    def _next(self) -> K:
        with self._ready:
            while True:
                now = time.monotonic()
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # cancelled or moved earlier
                if self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    return key
                self._ready.wait(self._heap[0][0] - now if self._heap else None)

    def _loop(self) -> None:
        while True:
            key = self._next()
            try:
                self._call(key)
            except Exception:
                log.exception("deferred call for %s failed", key)
