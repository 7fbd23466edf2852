"""A baseline: Knative Serving's Knative Pod Autoscaler (KPA) with its default configuration, on concurrency.

It follows knative/serving v0.50.0: pkg/autoscaler/scaling/autoscaler.go (autoscaler.Scale), the defaults of
config/core/configmaps/autoscaler.yaml, pkg/autoscaler/metrics/collector.go and pkg/autoscaler/scaling/
multiscaler.go:
- the collector scrapes every pod's concurrency once a second (scrapeTickInterval), into 1 s buckets
  (config.BucketSize); the decider runs every 2 s (tickInterval);
- stable value: the mean total concurrency over the stable window (60 s); panic value: over the panic window
  (panic-window-percentage 10% of it: 6 s);
- per-pod target: the container concurrency target x container-concurrency-target-percentage (70%);
- desired = ceil(observed / target), clamped to [floor(ready / max-scale-down-rate 2), ceil(ready x
  max-scale-up-rate 1000)], with ready pods counted as at least 1;
- panic starts when the panic count reaches panic-threshold-percentage (200%) of the ready pods, and ends a
  stable window after it last held; while panicking the count takes the larger recommendation and never falls;
- scale-down-delay 0 s: no delay window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TICK_SECONDS = 2
STABLE_WINDOW_SECONDS = 60
PANIC_WINDOW_SECONDS = 6  # panic-window-percentage 10.0 of the stable window
PANIC_THRESHOLD = 2.0
TARGET_UTILIZATION = 0.7
MAX_SCALE_UP_RATE = 1000.0
MAX_SCALE_DOWN_RATE = 2.0


@dataclass(frozen=True)
class KpaState:
    """The collector's 1 s buckets of total concurrency, and the decider's panic memory."""

    buckets: tuple[tuple[int, float], ...] = ()
    panic_since: int | None = None
    max_panic_pods: int = 0


def _window_average(buckets: tuple[tuple[int, float], ...], now: int, window: int) -> float | None:
    values = [value for second, value in buckets if second > now - window]
    return sum(values) / len(values) if values else None


def kpa_record(state: KpaState, second: int, total_concurrency: float) -> KpaState:
    """One scrape: the total concurrency of the ready pods in this second's bucket."""
    kept = tuple(b for b in state.buckets if b[0] > second - STABLE_WINDOW_SECONDS)
    return KpaState((*kept, (second, total_concurrency)), state.panic_since, state.max_panic_pods)


def kpa_decide(state: KpaState, now: int, ready: int, target: float) -> tuple[int | None, KpaState]:
    """autoscaler.Scale: the desired pod count (None: no data yet), and the state after it."""
    stable = _window_average(state.buckets, now, STABLE_WINDOW_SECONDS)
    panic = _window_average(state.buckets, now, PANIC_WINDOW_SECONDS)
    if stable is None or panic is None:
        return None, state
    ready_count = max(1.0, float(ready))
    max_up = math.ceil(MAX_SCALE_UP_RATE * ready_count)
    max_down = math.floor(ready_count / MAX_SCALE_DOWN_RATE)
    target_value = target * TARGET_UTILIZATION
    stable_pods = math.ceil(stable / target_value)
    panic_pods = math.ceil(panic / target_value)
    desired_stable = int(min(max(stable_pods, max_down), max_up))
    desired_panic = int(min(max(panic_pods, max_down), max_up))
    over = panic_pods / ready_count >= PANIC_THRESHOLD
    panic_since, max_panic = state.panic_since, state.max_panic_pods
    if over:
        panic_since = now
    elif panic_since is not None and panic_since + STABLE_WINDOW_SECONDS < now:
        panic_since, max_panic = None, 0
    desired = desired_stable
    if panic_since is not None:
        desired = max(desired, desired_panic)
        max_panic = max(max_panic, desired)
        desired = max_panic
    return desired, KpaState(state.buckets, panic_since, max_panic)
