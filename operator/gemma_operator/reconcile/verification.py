"""The post-rollout smoke check, run off the reconcile path, with its outcome kept per generation."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

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
    # A failed check may run again from this time on (monotonic seconds), against whichever pod is ready then.
    retry_at: float = math.inf


@dataclass
class Verifier:
    """Runs at most one smoke check per GemmaDeployment at a time, and rechecks failures with backoff.

    `on_done(key)` is called when a check finishes, and again when a failed one is due for a recheck,
    so the owner can write the new status and call `current` with a pod that is ready now.
    """

    on_done: Callable[[Key], None]
    check: Callable[[str], Coroutine[object, object, SmokeResult]] = smoke_check
    recheck_seconds: float = RECHECK_SECONDS
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
            if known is not None and known.generation == generation and time.monotonic() < known.retry_at:
                return known
            if known is None or known.generation != generation:
                self._failures.pop(key, None)
            started = Verification(generation, "Unknown", "Verifying", f"sending a chat completion to {base_url}")
            self._results[key] = started
        self._pool.submit(self._run, key, generation, base_url)
        return started

    def adopt(self, key: Key, verification: Verification) -> None:
        """Take a result from elsewhere (the status a previous operator process wrote) unless one is known."""
        with self._lock:
            known = self._results.get(key)
            if known is None or known.generation != verification.generation:
                self._results[key] = verification

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
            failures = 0 if result.ok else self._failures.get(key, 0) + 1
            self._failures[key] = failures
            # Recheck later: the runtime may recover without any change that would trigger a reconcile.
            delay = min(MAX_RECHECK_SECONDS, self.recheck_seconds * 2 ** (failures - 1)) if failures else 0.0
            self._results[key] = replace(outcome, retry_at=time.monotonic() + delay) if failures else outcome
        if failures:
            timer = threading.Timer(delay, self.on_done, args=(key,))
            timer.daemon = True
            timer.start()
        self.on_done(key)
