"""Writing a GemmaDeployment's status: computed from what was observed, written only when it changed, and
detail-only changes held back so that a rollout costs few writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.planning import sized_plan
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.clock import Clock, timestamp
from gemma_operator.reconcile.conditions import Observed, compute_status
from gemma_operator.reconcile.diffing import merge_patch
from gemma_operator.reconcile.kube import KubeApi

# What kstatus reads (observedGeneration, Ready, Reconciling, Stalled) and the autoscaler's verdict are written
# at once. A change of detail only (messages, counts, Scheduled, Available, Verified) waits DETAIL_DELAY seconds,
# and at least until DETAIL_INTERVAL after the object's last status write, so that the detail of a rollout is
# folded into the write that ends it: a create is two status writes, not one per pod and Deployment event, and
# a long rollout writes its progress at most every DETAIL_INTERVAL seconds.
DETAIL_DELAY: Final = 15.0
DETAIL_INTERVAL: Final = 30.0
IMMEDIATE_CONDITIONS: Final = ("Ready", "Reconciling", "Stalled", "ScalingActive", "ScalingLimited")
IMMEDIATE_FIELDS: Final = ("observedGeneration", "desiredReplicas")


@dataclass
class StatusMemory:
    """One object's status as this process last wrote it, when, and until when a detail change is held."""

    written: dict[str, Any] | None = None
    written_at: float | None = None
    held_until: float | None = None


def previous_status(memory: StatusMemory, body: Mapping[str, Any]) -> dict[str, Any]:
    """The status to compare with: what this process wrote, else what the object carries."""
    if memory.written is not None:
        return memory.written
    # An empty string read back is the schema's default (status.lastScaleTime), not something to remove.
    return {name: value for name, value in (body.get("status") or {}).items() if value != ""}


def _immediate(status: Mapping[str, Any]) -> tuple[object, ...]:
    """What kstatus (Flux, Argo CD's health, kubectl wait) and scaling read of a status."""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return (
        *(status.get(name) for name in IMMEDIATE_FIELDS),
        *(conditions.get(kind) for kind in IMMEDIATE_CONDITIONS),
    )


def hold_seconds(memory: StatusMemory, previous: Mapping[str, Any], status: Mapping[str, Any], now: float) -> float:
    """How much longer a changed status may wait before it is written: 0 means now."""
    if _immediate(previous) != _immediate(status) or memory.written_at is None:
        return 0.0  # kstatus reads it differently, or the first write of this process
    if memory.held_until is None:
        memory.held_until = max(now + DETAIL_DELAY, memory.written_at + DETAIL_INTERVAL)
    return max(0.0, memory.held_until - now)


class StatusWriter:
    def __init__(self, api: KubeApi, clock: Clock) -> None:
        self._api = api
        self._clock = clock

    def write(self, key: tuple[str, str], memory: StatusMemory, body: Mapping[str, Any], observed: Observed) -> float:
        """Write the status if it changed and may not wait; else the seconds until the held change is due (0: none)."""
        previous = previous_status(memory, body)
        status = compute_status(observed, previous, timestamp(self._clock.now()))
        # Only conditions whose content changed get a new transition time, so an unchanged status compares
        # equal and is not written.
        patch = merge_patch(previous, status)
        now = self._clock.monotonic()
        wait = hold_seconds(memory, previous, status, now) if patch else 0.0
        if wait > 0:
            return wait
        if patch:
            self._api.patch_status(key[0], key[1], patch)
            metrics.API_WRITES.labels("status").inc()
            memory.written_at = now
        memory.written, memory.held_until = status, None
        _census(key, body, observed, status)
        return 0.0


def _census(key: tuple[str, str], body: Mapping[str, Any], observed: Observed, status: Mapping[str, Any]) -> None:
    ready = next((c["status"] for c in status["conditions"] if c["type"] == "Ready"), "Unknown")
    variant = str(((body.get("spec") or {}).get("model") or {}).get("variant", ""))
    sized = sized_plan(observed.plan)
    runtime = sized.runtime.name.value if sized else ""
    target = sized.placement.target.value if sized else ""
    standing = metrics.Standing(
        variant, runtime, target, ready, replicas=observed.desired_replicas, ready_replicas=status["readyReplicas"]
    )
    metrics.CENSUS.record(key, standing)
