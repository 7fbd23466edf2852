"""The baseline: the Kubernetes HPA v2 controller with its default behaviour, on a per-pod `AverageValue` target.

It follows pkg/controller/podautoscaler (replica_calculator.go and horizontal.go):
- desired = ceil(usage ratio x pods with metrics), no change within the 10% tolerance;
- pods without metrics (starting ones) count as 0 on a scale-up and as the target on a scale-down, and a
  recommendation that flips direction because of them keeps the current count;
- scale-up: no stabilisation, at most max(+100%, +4 pods) per 15 s period;
- scale-down: the highest recommendation of the last 300 s (the default 100%-per-15 s policy never binds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SYNC_SECONDS = 15
TOLERANCE = 0.1
SCALE_DOWN_STABILIZATION_SECONDS = 300
SCALE_UP_PERIOD_SECONDS = 15
SCALE_UP_PERCENT = 100
SCALE_UP_PODS = 4


@dataclass(frozen=True)
class HpaState:
    """What the controller remembers between syncs: raw recommendations and scale-up events, with their times."""

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_ups: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class HpaDecision:
    desired: int
    state: HpaState


def metric_replicas(current: int, values: tuple[float, ...], missing: int, target: float) -> int:
    """calcPlainMetricReplicas: the replica count the metric asks for, before behaviour and bounds."""
    if not values:
        return current  # the controller fails the sync ("did not receive metrics") and leaves the scale alone
    usage_ratio = sum(values) / len(values) / target
    if missing == 0:
        return current if abs(1 - usage_ratio) <= TOLERANCE else math.ceil(usage_ratio * len(values))
    fallback = target if usage_ratio < 1 else 0.0
    new_ratio = (sum(values) + fallback * missing) / (len(values) + missing) / target
    if abs(1 - new_ratio) <= TOLERANCE or (usage_ratio < 1 < new_ratio) or (usage_ratio > 1 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * (len(values) + missing))
    if (new_ratio < 1 and replicas > current) or (new_ratio > 1 and replicas < current):
        return current
    return replicas


def _scale_up_limit(current: int, state: HpaState, now: float) -> int:
    added = sum(pods for at, pods in state.scale_ups if at > now - SCALE_UP_PERIOD_SECONDS)
    period_start = current - added
    by_percent = math.ceil(period_start * (1 + SCALE_UP_PERCENT / 100))
    return max(by_percent, period_start + SCALE_UP_PODS)


def hpa_decide(
    state: HpaState,
    now: float,
    current: int,
    values: tuple[float, ...],
    missing: int,
    target: float,
    min_replicas: int,
    max_replicas: int,
) -> HpaDecision:
    """One sync of the controller: `values` are the reporting pods' metric, `missing` the pods without one."""
    recommendation = metric_replicas(current, values, missing, target)
    # maybeInitScaleDownStabilizationWindow: a controller that has just started remembers the current count
    remembered = state.recommendations or ((now, current),)
    window = tuple(r for r in remembered if r[0] > now - SCALE_DOWN_STABILIZATION_SECONDS)
    stabilised = min(max(current, recommendation), max([recommendation, *(r for _, r in window)]))
    if stabilised > current:
        stabilised = min(stabilised, _scale_up_limit(current, state, now))
    desired = max(min_replicas, min(max_replicas, stabilised))
    scale_ups = tuple(e for e in state.scale_ups if e[0] > now - SCALE_UP_PERIOD_SECONDS)
    if desired > current:
        scale_ups += ((now, desired - current),)
    return HpaDecision(desired, HpaState((*window, (now, recommendation)), scale_ups))
