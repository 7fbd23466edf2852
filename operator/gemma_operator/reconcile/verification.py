"""The post-rollout smoke check, run off the reconcile path, with its outcome kept per generation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gemma_operator.probes.smoke import SmokeResult, smoke_check

Key = tuple[str, str]
RECHECK_SECONDS = 60.0
MAX_RECHECK_SECONDS = 600.0


@dataclass(frozen=True)
class Verification:
    """Condition Verified for one generation: status, reason and message."""

    generation: int
    status: str
    reason: str
    message: str


@dataclass
class Verifier:
    """Runs at most one smoke check per GemmaDeployment at a time, and rechecks failures with backoff.

    `on_done(key)` is called when a check finishes, so the owner can write the new status.
    """

    on_done: Callable[[Key], None]
    check: Callable[[str], Coroutine[object, object, SmokeResult]] = smoke_check
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify")
    )
    _results: dict[Key, Verification] = field(default_factory=dict)
    _failures: dict[Key, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, key: Key, generation: int, base_url: str) -> Verification:
        """The verification of this generation, starting a check against `base_url` if there is none yet."""
        with self._lock:
            known = self._results.get(key)
            if known is not None and known.generation == generation:
                return known
            started = Verification(generation, "Unknown", "Verifying", f"sending a chat completion to {base_url}")
            self._results[key] = started
            self._failures.pop(key, None)
        self._pool.submit(self._run, key, generation, base_url)
        return started

    def forget(self, key: Key) -> None:
        with self._lock:
            self._results.pop(key, None)
            self._failures.pop(key, None)

    def _run(self, key: Key, generation: int, base_url: str) -> None:
        result = asyncio.run(self.check(base_url))
        outcome = (
            Verification(generation, "True", "Answered", result.message)
            if result.ok
            else Verification(generation, "False", "NoAnswer", result.message)
        )
        with self._lock:
            if self._results.get(key, outcome).generation != generation:
                return  # a newer generation took over while this one ran
            self._results[key] = outcome
            failures = 0 if result.ok else self._failures.get(key, 0) + 1
            self._failures[key] = failures
        if failures:
            # Recheck later: the runtime may recover without any change that would trigger a reconcile.
            delay = min(MAX_RECHECK_SECONDS, RECHECK_SECONDS * 2 ** (failures - 1))
            timer = threading.Timer(delay, self._recheck, args=(key, generation, base_url))
            timer.daemon = True
            timer.start()
        self.on_done(key)

    def _recheck(self, key: Key, generation: int, base_url: str) -> None:
        with self._lock:
            known = self._results.get(key)
            if known is None or known.generation != generation or known.status != "False":
                return
        self._pool.submit(self._run, key, generation, base_url)
