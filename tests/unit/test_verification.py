"""The Verifier: one smoke check per generation, and rechecks of failures against the pod that is ready then."""

from __future__ import annotations

import threading

from gemma_operator.probes.smoke import SmokeResult
from gemma_operator.reconcile.verification import Verifier

KEY = ("ml", "chat")


class Runtime:
    """Answers the check for the addresses in `answering`, and records every address asked."""

    def __init__(self, answering: set[str]) -> None:
        self.answering = answering
        self.asked: list[str] = []

    async def check(self, base_url: str) -> SmokeResult:
        self.asked.append(base_url)
        ok = base_url in self.answering
        return SmokeResult(ok=ok, message="answered" if ok else "connection refused", latency_seconds=0.0, attempts=1)


def verifier_for(runtime: Runtime, recheck_seconds: float = 60.0) -> tuple[Verifier, threading.Semaphore]:
    done = threading.Semaphore(0)
    return Verifier(on_done=lambda _key: done.release(), check=runtime.check, recheck_seconds=recheck_seconds), done


def test_one_check_per_generation() -> None:
    runtime = Runtime({"http://a"})
    verifier, done = verifier_for(runtime)
    assert verifier.current(KEY, 1, "http://a").status == "Unknown"
    assert done.acquire(timeout=5)
    assert verifier.current(KEY, 1, "http://a").status == "True"
    assert verifier.current(KEY, 1, "http://b").status == "True"  # no second check for the same generation
    assert runtime.asked == ["http://a"]
    verifier.current(KEY, 2, "http://b")
    assert done.acquire(timeout=5)
    assert runtime.asked == ["http://a", "http://b"]


def test_a_failure_is_rechecked_against_the_pod_ready_then() -> None:
    runtime = Runtime({"http://new-pod"})
    verifier, done = verifier_for(runtime, recheck_seconds=0.5)
    verifier.current(KEY, 1, "http://gone-pod")
    assert done.acquire(timeout=5)
    failed = verifier.current(KEY, 1, "http://new-pod")
    assert (failed.status, failed.reason) == ("False", "NoAnswer")
    assert runtime.asked == ["http://gone-pod"]  # backing off: no check before the retry time

    assert done.acquire(timeout=5)  # the recheck is due: the owner is told to look again
    assert verifier.current(KEY, 1, "http://new-pod").status == "Unknown"
    assert done.acquire(timeout=5)
    assert verifier.current(KEY, 1, "http://new-pod").status == "True"
    assert runtime.asked == ["http://gone-pod", "http://new-pod"]
