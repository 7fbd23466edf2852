"""Condition Verified: one smoke check per generation, rechecks of failures with backoff, adoption after a restart."""

from __future__ import annotations

import pytest

from gemma_operator.api import Reason
from gemma_operator.probes.smoke import SmokeResult
from gemma_operator.reconcile.verification import (
    MAX_RECHECK_SECONDS,
    RECHECK_SECONDS,
    SmokeOutcome,
    SmokeRequest,
    VerificationMemory,
    adopt,
    recheck_delay,
    record,
    verify,
)


def answered(generation: int, ok: bool) -> SmokeOutcome:
    message = "answered" if ok else "connection refused"
    return SmokeOutcome(generation, SmokeResult(ok=ok, message=message, latency_seconds=0.1, attempts=1))


def test_one_check_per_generation() -> None:
    memory = VerificationMemory()
    assert verify(memory, 1, "http://a", now=0.0) == SmokeRequest(1, "http://a")
    assert memory.current is not None
    assert memory.current.verdict[1] is Reason.VERIFYING
    assert verify(memory, 1, "http://a", now=1.0) is None  # in flight: no second check
    record(memory, answered(1, ok=True), now=2.0)
    assert memory.current.verdict == ("True", Reason.ANSWERED, "answered")
    assert verify(memory, 1, "http://b", now=3.0) is None  # passed: stands for the generation, whatever the pod
    assert verify(memory, 2, "http://b", now=4.0) == SmokeRequest(2, "http://b")


def test_a_failure_is_rechecked_after_a_growing_delay_against_the_pod_ready_then() -> None:
    memory = VerificationMemory()
    verify(memory, 1, "http://a", now=0.0)
    record(memory, answered(1, ok=False), now=10.0)
    assert memory.current is not None
    assert memory.current.verdict[:2] == ("False", Reason.NO_ANSWER)
    assert memory.current.retry_at == 10.0 + RECHECK_SECONDS
    assert verify(memory, 1, "http://a", now=10.0 + RECHECK_SECONDS - 1) is None
    assert verify(memory, 1, "http://b", now=10.0 + RECHECK_SECONDS) == SmokeRequest(1, "http://b")
    record(memory, answered(1, ok=False), now=100.0)
    assert memory.current.retry_at == 100.0 + 2 * RECHECK_SECONDS  # the second failure waits twice as long
    verify(memory, 1, "http://b", now=1000.0)
    record(memory, answered(1, ok=True), now=1001.0)
    assert memory.failures == 0


def test_an_outcome_of_an_older_generation_is_ignored() -> None:
    memory = VerificationMemory()
    verify(memory, 1, "http://a", now=0.0)
    verify(memory, 2, "http://a", now=1.0)
    record(memory, answered(1, ok=True), now=2.0)
    assert memory.current is not None
    assert (memory.current.generation, memory.current.verdict[1]) == (2, Reason.VERIFYING)


@pytest.mark.parametrize(("failures", "delay"), [(1, 60.0), (2, 120.0), (4, 480.0), (5, 600.0), (50, 600.0)])
def test_recheck_delay_doubles_up_to_its_cap(failures: int, delay: float) -> None:
    assert recheck_delay(failures) == delay <= MAX_RECHECK_SECONDS


def test_a_passed_check_in_status_is_adopted_after_a_restart_for_its_generation_only() -> None:
    status = {"conditions": [{"type": "Verified", "status": "True", "observedGeneration": 3, "message": "hi"}]}
    memory = VerificationMemory()
    adopt(memory, status, generation=4)
    assert memory.current is None
    adopt(memory, status, generation=3)
    assert memory.current is not None
    assert memory.current.verdict == ("True", Reason.ANSWERED, "hi")
    assert verify(memory, 3, "http://a", now=0.0) is None


def test_the_check_carries_the_adapters_to_ask() -> None:
    memory = VerificationMemory()
    assert verify(memory, 1, "http://a", now=0.0, adapters=("sql", "chat")) == SmokeRequest(
        1, "http://a", ("sql", "chat")
    )
