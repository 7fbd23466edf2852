"""Condition Verified: one smoke check per generation once it is rolled out, and rechecks of failures with
backoff. The check itself runs on the probe queue; its outcome comes back to the reconcile as a note."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.api import ConditionStatus, Reason
from gemma_operator.probes.smoke import SmokeResult

RECHECK_SECONDS: Final = 60.0
MAX_RECHECK_SECONDS: Final = 600.0

Verdict = tuple[str, Reason, str]


@dataclass(frozen=True)
class SmokeRequest:
    """A smoke check to run: against which pod, for which generation, and the LoRA adapters to ask too."""

    generation: int
    base_url: str
    adapters: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmokeOutcome:
    """A finished smoke check, handed back to the reconcile queue."""

    generation: int
    result: SmokeResult


@dataclass(frozen=True)
class Verification:
    """Condition Verified for one generation. A failed check may run again from `retry_at` (monotonic seconds)."""

    generation: int
    verdict: Verdict
    retry_at: float = math.inf


@dataclass
class VerificationMemory:
    current: Verification | None = None
    failures: int = 0


def recheck_delay(failures: int) -> float:
    return min(MAX_RECHECK_SECONDS, RECHECK_SECONDS * 2.0 ** max(failures - 1, 0))


def adopt(memory: VerificationMemory, previous_status: Mapping[str, Any], generation: int) -> None:
    """After a restart, a check that already passed for this generation (status says so) stands."""
    if memory.current is not None:
        return
    conditions = previous_status.get("conditions") or []
    verified: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Verified"), {})
    if verified.get("status") == ConditionStatus.TRUE and verified.get("observedGeneration") == generation:
        memory.current = Verification(generation, (ConditionStatus.TRUE, Reason.ANSWERED, str(verified.get("message"))))


def verify(
    memory: VerificationMemory, generation: int, base_url: str, now: float, adapters: tuple[str, ...] = ()
) -> SmokeRequest | None:
    """The check to start for this generation against `base_url` (and each of `adapters`), if one is due; memory
    then says Verifying."""
    current = memory.current
    if current is not None and current.generation == generation and now < current.retry_at:
        return None
    if current is None or current.generation != generation:
        memory.failures = 0
    verifying = (ConditionStatus.UNKNOWN, Reason.VERIFYING, f"sending a chat completion to {base_url}")
    memory.current = Verification(generation, verifying)
    return SmokeRequest(generation, base_url, adapters)


def record(memory: VerificationMemory, outcome: SmokeOutcome, now: float) -> None:
    """Take a finished check's outcome, unless a newer generation has taken over since it started."""
    if memory.current is None or memory.current.generation != outcome.generation:
        return
    if outcome.result.ok:
        memory.failures = 0
        memory.current = Verification(
            outcome.generation, (ConditionStatus.TRUE, Reason.ANSWERED, outcome.result.message)
        )
        return
    memory.failures += 1
    failed = (ConditionStatus.FALSE, Reason.NO_ANSWER, outcome.result.message)
    # Recheck later: the runtime may recover without any change that would trigger a reconcile.
    memory.current = Verification(outcome.generation, failed, retry_at=now + recheck_delay(memory.failures))
