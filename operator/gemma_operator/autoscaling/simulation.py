"""A deterministic, discrete-time queueing model of a GemmaDeployment under a load trace, driven by an autoscaler.

Each simulated second: requests arrive at the trace's rate into one shared queue (the Service spreads it over
the ready pods); every ready pod serves up to `replica_capacity_rps`; what is not served waits for the next
second. Arrivals are fluid (fractional requests, no randomness), so a run is a pure function of its inputs.
A pod holds its GPUs, and counts in replica-seconds, from the moment it is created; it serves only once it
is ready, `startup_seconds` later. A scale-down removes starting pods first, then ready ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from gemma_operator.api import AutoscalingSpec
from gemma_operator.autoscaling.policy import SCRAPE_INTERVAL_SECONDS
from gemma_operator.autoscaling.signals import Load
from gemma_operator.autoscaling.traces import Trace

SPEC_DEFAULTS = AutoscalingSpec()


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated service and both autoscalers' bounds; the built-in's other knobs are spec.autoscaling's."""

    replica_capacity_rps: float = 2.0
    request_seconds: float = 10.0
    startup_seconds: int = 120
    slo_queue_seconds: float = 5.0
    min_replicas: int = SPEC_DEFAULTS.min_replicas
    max_replicas: int = 10  # not the spec's default (1): a simulation needs room to scale
    scrape_seconds: int = SCRAPE_INTERVAL_SECONDS

    def autoscaling_spec(self) -> AutoscalingSpec:
        """The spec.autoscaling the built-in autoscaler runs with: these bounds, every other knob defaulted."""
        return AutoscalingSpec(enabled=True, min_replicas=self.min_replicas, max_replicas=self.max_replicas)

    @property
    def target_in_flight_per_replica(self) -> float:
        """In-flight requests of a pod serving at full capacity (Little's law): the target both autoscalers get."""
        return self.replica_capacity_rps * self.request_seconds


@dataclass(frozen=True)
class PodsView:
    """What an autoscaler can see at the start of a second: the pods, and the load of each ready one."""

    second: int
    ready: int
    starting: int
    load_per_ready_pod: Load

    @property
    def replicas(self) -> int:
        return self.ready + self.starting


class Autoscaler(Protocol):
    def observe(self, view: PodsView) -> tuple[int | None, Autoscaler]:
        """The replicas to run from this second on (None: no decision this second), and the autoscaler to ask next."""
        ...


@dataclass(frozen=True)
class Second:
    """The simulated service during one second, after the autoscaler acted."""

    rps: float
    ready: int
    replicas: int
    queue: float
    decided_up: bool

    def mean_wait(self, capacity_rps: float) -> float:
        """Seconds the queue needs to drain at the ready pods' full rate: how long a new request waits."""
        if self.queue <= 0:
            return 0.0
        return math.inf if self.ready == 0 else self.queue / (self.ready * capacity_rps)


@dataclass(frozen=True)
class Run:
    trace: str
    config: SimulationConfig
    seconds: tuple[Second, ...]


def initial_replicas(trace: Trace, config: SimulationConfig) -> int:
    """Both sides start ready and right-sized for the trace's first second."""
    needed = math.ceil(trace.rps[0] / config.replica_capacity_rps) if trace.rps else 0
    return max(config.min_replicas, min(config.max_replicas, needed))


def simulate(trace: Trace, config: SimulationConfig, autoscaler: Autoscaler) -> Run:
    """Each second: the autoscaler sees the pods and may resize them, then the ready pods serve the queue."""
    ready_at = [0] * initial_replicas(trace, config)
    queue, served = 0.0, min(trace.rps[0] if trace.rps else 0.0, len(ready_at) * config.replica_capacity_rps)
    seconds: list[Second] = []
    for second, rps in enumerate(trace.rps):
        ready = sum(1 for at in ready_at if at <= second)
        share = max(ready, 1)
        load = Load(waiting=queue / share, running=served / share * config.request_seconds)
        desired, autoscaler = autoscaler.observe(PodsView(second, ready, len(ready_at) - ready, load))
        decided_up = desired is not None and desired > len(ready_at)
        if desired is not None:
            ready_at = _scaled(ready_at, desired, second + config.startup_seconds)
        ready = sum(1 for at in ready_at if at <= second)
        served = min(queue + rps, ready * config.replica_capacity_rps)
        queue = queue + rps - served
        seconds.append(Second(rps, ready, len(ready_at), queue, decided_up))
    return Run(trace.name, config, tuple(seconds))


def _scaled(ready_at: list[int], desired: int, ready_from: int) -> list[int]:
    if desired >= len(ready_at):
        return ready_at + [ready_from] * (desired - len(ready_at))
    return sorted(ready_at)[:desired]  # the latest to be ready go first: starting pods before serving ones
