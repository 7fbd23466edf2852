"""The built-in autoscaler's decision: a pure function of policy, carried state, one scrape of the pods, and time.

The rules, in the order they apply (docs/benchmarks/autoscaling.md says why each one matters for LLM serving):
1. Load is in-flight requests (waiting + running) summed over the ready pods. Scale-down sizes on it with each
   pod's running requests counted at full-batch speed where the policy knows the accelerator's step times
   (policy.at_full_batch): fewer pods run fuller batches, each token slower, so the same arrivals hold more
   requests in flight. A pod whose scrape failed is assumed to carry the known pods' average, and nothing is
   scaled down while it is unknown.
2. Startup awareness: while pods are starting, or have just become ready, the backlog that built up since they
   were ordered is not counted again: they were ordered for it, and will drain it.
3. Panic: when the load reaches panicThreshold x the capacity of every pod, starting ones included, scale up at
   once to what the whole load needs, and scale down neither then nor for a stable window after.
4. A draining backlog (fewer waiting than at the last scrape) holds: the ready pods already out-serve arrivals.
5. Scale up as soon as the newest load needs more pods at target x targetUtilization; no smoothing delays it.
6. Scale down only to the larger of the stable-window average's need and the highest demand recommendation of
   the last scaleDownDelaySeconds. A backlog being drained is not demand, so it leaves no recommendation. Each
   scale-down that had to be undone within that delay doubles it (up to 4x) for an hour: recurring load stays.
7. Rate limits, then minReplicas and maxReplicas, then the capacity limit of the node inventory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.signals import Load
from gemma_operator.autoscaling.state import AutoscalerState, Recommendation, Sample, mean_since

FLAP_MEMORY_SECONDS = 3600.0
MAX_DELAY_FACTOR = 4
ROUNDING_SLACK = 1e-9


@dataclass(frozen=True)
class Observation:
    """One scrape of a GemmaDeployment's pods: the load of each ready pod (None: its scrape failed)."""

    ready: tuple[Load | None, ...]
    starting: int = 0

    @property
    def replicas(self) -> int:
        return len(self.ready) + self.starting


@dataclass(frozen=True)
class CapacityLimit:
    """The most replicas the node inventory can host (the caller counts the pods it already runs), and why."""

    replicas: int
    resource: str


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    panicking: bool
    limited: bool
    held: bool
    state: AutoscalerState


@dataclass(frozen=True)
class _Measured:
    running: float
    running_at_full_batch: float
    waiting: float
    counted_waiting: float
    unknown: int

    @property
    def in_flight(self) -> float:
        return self.running + self.waiting

    @property
    def counted(self) -> float:
        return self.running + self.counted_waiting

    @property
    def counted_at_full_batch(self) -> float:
        return self.running_at_full_batch + self.counted_waiting


def pods_for(load: float, per_pod: float) -> int:
    """Pods needed to carry `load` at `per_pod` each; the slack keeps float noise from adding a pod."""
    return max(0, math.ceil(load / per_pod - ROUNDING_SLACK))


def decide(
    policy: AutoscalingPolicy,
    state: AutoscalerState,
    observation: Observation,
    now: float,
    capacity_limit: CapacityLimit | None = None,
) -> Decision:
    """The replicas to run from `now` on (seconds on a monotonic clock), why, and the state for the next call."""
    current = observation.replicas
    known = [load for load in observation.ready if load is not None]
    if not known:
        desired, limited = _bounded(policy, current, capacity_limit)
        what = f"no load known for the {len(observation.ready)} ready pods" if observation.ready else "no ready pod"
        reason = f"{what}: holding {current}" + _limit_note(limited, desired, capacity_limit)
        return Decision(desired, reason, False, limited, True, state)

    arriving = observation.starting > 0 or len(observation.ready) > state.last_ready
    load = _measure(policy, observation, known, state.backlog_at_order if arriving else None)
    aimed = policy.aimed_in_flight_per_replica
    kept = (s for s in state.samples if s.at > now - policy.spec.stable_window_seconds)
    samples = (*kept, Sample(now, load.counted, load.counted_at_full_batch))
    panic_now = load.in_flight >= policy.spec.panic_threshold * max(current, 1) * policy.target_in_flight_per_replica
    panicking = panic_now or now < state.panic_until
    draining = load.waiting < state.last_waiting
    demand = None if draining else pods_for(load.counted_at_full_batch, aimed * (1 - policy.spec.scale_down_tolerance))
    recommendations = _remembered(policy, state, now, current, demand)
    delay = _scale_down_delay(policy, state, now)

    if panicking:
        want = max(current, pods_for(load.in_flight, aimed))
    elif draining:
        want = current
    elif (need := pods_for(mean_since(samples, now - policy.spec.panic_window_seconds), aimed)) > current:
        want = need
    else:
        stable_need = pods_for(mean_since(samples, now - policy.spec.stable_window_seconds, True), aimed)
        floor = max([stable_need, *(r.replicas for r in recommendations if r.at > now - delay)])
        want = min(current, floor)
    held = load.unknown > 0 and want < current
    desired, limited = _bounded(policy, _rate_limited(policy, current, current if held else want), capacity_limit)

    reason = (
        f"in-flight {load.in_flight:.1f} over {len(observation.ready)} ready pods"
        + (f" and {observation.starting} starting" if observation.starting else "")
        + f" at {aimed:g} per pod -> {desired}"
        + _notes(policy, load, panicking, draining, held, len(observation.ready), delay)
        + _limit_note(limited, desired, capacity_limit)
    )
    last_scale_down_at, undone_scale_downs = _flap_memory(policy, state, now, current, desired)
    memory = AutoscalerState(
        samples=samples,
        recommendations=recommendations,
        panic_until=now + policy.spec.stable_window_seconds if panic_now else state.panic_until,
        last_waiting=load.waiting,
        last_ready=len(observation.ready),
        backlog_at_order=_backlog_at_order(state, arriving, current, desired, load),
        last_scale_down_at=last_scale_down_at,
        undone_scale_downs=undone_scale_downs,
    )
    return Decision(desired, reason, panicking, limited, held, memory)


def _measure(
    policy: AutoscalingPolicy, observation: Observation, known: list[Load], backlog_at_order: float | None
) -> _Measured:
    scale = len(observation.ready) / len(known)
    running = scale * sum(load.running for load in known)
    at_full_batch = scale * sum(policy.at_full_batch(load.running) for load in known)
    waiting = scale * sum(load.waiting for load in known)
    counted = waiting if backlog_at_order is None else min(waiting, backlog_at_order)
    return _Measured(running, at_full_batch, waiting, counted, len(observation.ready) - len(known))


def _remembered(
    policy: AutoscalingPolicy, state: AutoscalerState, now: float, current: int, demand: int | None
) -> tuple[Recommendation, ...]:
    # A fresh autoscaler (say, after an operator restart) remembers the current count, as the HPA does.
    past = state.recommendations or (Recommendation(now, current),)
    horizon = now - MAX_DELAY_FACTOR * policy.spec.scale_down_delay_seconds
    kept = tuple(r for r in past if r.at > horizon)
    return kept if demand is None else (*kept, Recommendation(now, demand))


def _scale_down_delay(policy: AutoscalingPolicy, state: AutoscalerState, now: float) -> float:
    undone = sum(1 for at in state.undone_scale_downs if at > now - FLAP_MEMORY_SECONDS)
    return policy.spec.scale_down_delay_seconds * min(MAX_DELAY_FACTOR, 1 << undone)


def _rate_limited(policy: AutoscalingPolicy, current: int, want: int) -> int:
    most = max(math.ceil(current * policy.spec.max_scale_up_rate), current + policy.spec.max_scale_up_pods)
    fewest = math.floor(current / policy.spec.max_scale_down_rate)
    return max(fewest, min(most, want))


def _bounded(policy: AutoscalingPolicy, want: int, capacity_limit: CapacityLimit | None) -> tuple[int, bool]:
    desired = max(policy.spec.min_replicas, min(policy.spec.max_replicas, want))
    if capacity_limit is not None and desired > capacity_limit.replicas:
        return max(capacity_limit.replicas, 0), True
    return desired, False


def _notes(
    policy: AutoscalingPolicy,
    load: _Measured,
    panicking: bool,
    draining: bool,
    held: bool,
    ready: int,
    delay: float,
) -> str:
    notes = []
    if load.counted_waiting < load.waiting:
        notes.append(f"{load.waiting - load.counted_waiting:.1f} waiting left to the starting pods")
    if panicking:
        notes.append(f"panic: no scale-down (threshold {policy.spec.panic_threshold:g}x capacity)")
    elif draining:
        notes.append("backlog draining: holding")
    if held:
        notes.append(f"held: {load.unknown} of {ready} ready pods not scraped")
    if delay > policy.spec.scale_down_delay_seconds:
        notes.append(f"scale-down delay {delay:.0f}s after undone scale-downs")
    return "".join(f"; {note}" for note in notes)


def _limit_note(limited: bool, desired: int, capacity_limit: CapacityLimit | None) -> str:
    return f"; limited to {desired} by {capacity_limit.resource}" if limited and capacity_limit else ""


def _backlog_at_order(
    state: AutoscalerState, arriving: bool, current: int, desired: int, load: _Measured
) -> float | None:
    """The waiting requests when the pods now starting were ordered: the backlog they are meant to drain."""
    kept = state.backlog_at_order if arriving else None
    return load.waiting if desired > current and kept is None else kept


def _flap_memory(
    policy: AutoscalingPolicy, state: AutoscalerState, now: float, current: int, desired: int
) -> tuple[float | None, tuple[float, ...]]:
    """When the last scale-down happened, and the scale-downs undone within the delay in the last hour."""
    last_down = now if desired < current else state.last_scale_down_at
    undone = tuple(at for at in state.undone_scale_downs if at > now - FLAP_MEMORY_SECONDS)
    if desired > current and last_down is not None and now - last_down <= policy.spec.scale_down_delay_seconds:
        undone, last_down = (*undone, now), None
    return last_down, undone
