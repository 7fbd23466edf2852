"""The clairvoyant oracle: it knows every request to come and the pods' startup time, and orders ahead.

The demand of a second is the pod-seconds of work its arrivals bring, at a full batch of requests of their
lengths (simulation.pod_capacity_rps), averaged over a minute around it; a second needs that demand over the
utilisation in pods. The oracle runs, at each second, the most pods any second of the next startup time needs:
a pod ordered now serves a startup later, and a pod that would be needed again within a startup is cheaper kept
than restarted. It is open-loop: it never looks at a queue.

Given a replica budget (the HPA's replica-seconds, say), `oracle_plan` picks the lowest utilisation whose plan
stays within it: the most capacity that budget buys, placed with perfect foresight. Its SLO-violation time is the
reference the others are measured against; being a heuristic schedule, it is a near bound, not a proven one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from gemma_operator.autoscaling.simulation import PodsView, SimulationConfig, pod_capacity_rps
from gemma_operator.autoscaling.traces import Workload

DEMAND_WINDOW_SECONDS = 60
UTILIZATIONS = tuple(round(0.5 + 0.025 * step, 3) for step in range(21))  # 0.5 to 1.0


def demand(workload: Workload, config: SimulationConfig) -> list[float]:
    """Pod-seconds of work arriving per second, averaged over DEMAND_WINDOW_SECONDS centred on it."""
    work = [0.0] * workload.seconds
    for request in workload.requests:
        second = min(int(request.arrival), workload.seconds - 1)
        work[second] += 1 / pod_capacity_rps(config.serving, request.prompt_tokens, request.output_tokens)
    half = DEMAND_WINDOW_SECONDS // 2
    prefix = [0.0]
    for value in work:
        prefix.append(prefix[-1] + value)
    return [
        (prefix[min(len(work), s + half)] - prefix[max(0, s - half)]) / (min(len(work), s + half) - max(0, s - half))
        for s in range(len(work))
    ]


def _plan(demands: list[float], utilization: float, config: SimulationConfig) -> tuple[int, ...]:
    needs = [max(config.min_replicas, min(config.max_replicas, math.ceil(d / utilization))) for d in demands]
    horizon = config.pod_startup_seconds
    result = [0] * len(needs)
    window: deque[int] = deque()  # indices of a sliding maximum over [s, s + horizon]
    for s in range(len(needs) - 1, -1, -1):
        while window and needs[window[-1]] <= needs[s]:
            window.pop()
        window.append(s)
        while window[0] > s + horizon:
            window.popleft()
        result[s] = needs[window[0]]
    return tuple(result)


def oracle_plan(workload: Workload, config: SimulationConfig, budget: float | None = None) -> tuple[int, ...]:
    """Replicas per second: at the lowest utilisation of UTILIZATIONS within `budget` replica-seconds (None: the
    lowest of all), or at full utilisation when none is."""
    demands = demand(workload, config)
    plans = [_plan(demands, utilization, config) for utilization in UTILIZATIONS]
    within = [p for p in plans if budget is None or sum(p) <= budget]
    return within[0] if within else plans[-1]


@dataclass(frozen=True)
class OracleAutoscaler:
    """Sets the planned count every second; no scrape, no delay."""

    plan: tuple[int, ...]

    def observe(self, view: PodsView) -> tuple[int | None, OracleAutoscaler]:
        return self.plan[min(view.second, len(self.plan) - 1)], self
