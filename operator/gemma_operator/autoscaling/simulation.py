"""A deterministic, token-level model of a GemmaDeployment under a request trace, driven by an autoscaler.

Every simulated second the autoscaler sees each ready pod's load (requests waiting and running, what the
runtimes' /metrics report) and may resize the deployment; then that second's arrivals are routed, each to the
ready pod with the fewest requests in flight (those of this second included), and every pod serves its second.

A pod runs continuous batching (engine.PodEngine, on the roofline of serving.py): at most `max_batch` sequences
at once, the rest wait in its queue in arrival order; within a second it moves from event to event, so a
request's TTFT, TPOT and end-to-end latency are those of the steps it took part in.

A pod holds its GPUs, and counts in replica-seconds, from its creation; it serves only once it is ready, the
startup time later. A scale-down removes starting pods first, then the ready pods with the fewest requests in
flight; their unfinished requests go back to the router (their clients retry), keeping their arrival time.
Requests that arrive while no pod is ready wait at the router.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from gemma_operator.api import AutoscalingSpec, Precision, ServingSpec
from gemma_operator.autoscaling.engine import PodEngine
from gemma_operator.autoscaling.policy import SCRAPE_INTERVAL_SECONDS
from gemma_operator.autoscaling.serving import Serving, serving_for
from gemma_operator.autoscaling.signals import Load
from gemma_operator.autoscaling.traces import Request, Workload

SPEC_DEFAULTS = AutoscalingSpec()
SERVING_DEFAULTS = ServingSpec()
# Service-level objectives on the 95th percentiles. The MLPerf Inference server scenario for Llama-2-70B bounds
# TTFT at 2 s and TPOT at 200 ms (at the 99th percentile); the same bounds here, on the 95th.
SLO_TTFT_SECONDS = 2.0
SLO_TPOT_SECONDS = 0.2
SLO_PERCENTILE = 0.95


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated deployment, its SLOs and the autoscalers' bounds; every other knob is spec.autoscaling's."""

    variant: str = "26b-a4b"
    precision: Precision = Precision.BF16
    accelerator: str = "h100"
    max_context_tokens: int = SERVING_DEFAULTS.max_context_tokens
    # None: the most sequences the plan fits at max_context_tokens.
    max_concurrent_sequences: int | None = None
    # None: the serving model's, from the weights and the load bandwidth.
    startup_seconds: float | None = None
    slo_ttft_seconds: float = SLO_TTFT_SECONDS
    slo_tpot_seconds: float = SLO_TPOT_SECONDS
    min_replicas: int = SPEC_DEFAULTS.min_replicas
    max_replicas: int = 16  # not the spec's default (1): a simulation needs room to scale
    scrape_seconds: int = SCRAPE_INTERVAL_SECONDS

    @cached_property
    def serving(self) -> Serving:
        return serving_for(
            self.variant, self.precision, self.accelerator, self.max_context_tokens, self.max_concurrent_sequences
        )

    @property
    def pod_startup_seconds(self) -> int:
        startup = self.serving.startup_seconds if self.startup_seconds is None else self.startup_seconds
        return math.ceil(startup)

    def autoscaling_spec(self) -> AutoscalingSpec:
        """The spec.autoscaling the built-in autoscaler runs with: these bounds, every other knob defaulted."""
        return AutoscalingSpec(enabled=True, min_replicas=self.min_replicas, max_replicas=self.max_replicas)

    @property
    def target_in_flight_per_replica(self) -> float:
        """A full batch: the per-pod target every autoscaler gets (the plan's maxConcurrentSequences)."""
        return float(self.serving.max_batch)


@dataclass(frozen=True)
class PodsView:
    """What an autoscaler can see at the start of a second: the pods, and the load of each ready one."""

    second: int
    loads: tuple[Load, ...]
    starting: int
    # Requests waiting at the router because no pod was ready to take them (a gateway's queue).
    unrouted: int = 0

    @property
    def ready(self) -> int:
        return len(self.loads)

    @property
    def replicas(self) -> int:
        return self.ready + self.starting

    @property
    def in_flight(self) -> float:
        return sum(load.in_flight for load in self.loads)


class Autoscaler(Protocol):
    def observe(self, view: PodsView) -> tuple[int | None, Autoscaler]:
        """The replicas to run from this second on (None: no decision this second), and the autoscaler to ask next."""
        ...


@dataclass(frozen=True)
class Second:
    """The simulated deployment during one second, after the autoscaler acted."""

    arrivals: int
    ready: int
    replicas: int
    waiting: int
    running: int
    decided_up: bool


@dataclass(frozen=True)
class Outcome:
    """One request's latencies; None where it had no first token (or no last one) by the end of the run."""

    arrival: float
    ttft: float | None
    tpot: float | None
    e2e: float | None


@dataclass(frozen=True)
class Run:
    trace: str
    config: SimulationConfig
    seconds: tuple[Second, ...]
    outcomes: tuple[Outcome, ...]


@dataclass
class RequestLedger:
    """The requests' token counts and, as the run goes, their first- and last-token times (an engine.Ledger)."""

    arrivals: list[float]
    prompts: list[int]
    outputs: list[int]
    first_token_at: dict[int, float] = field(default_factory=dict)
    done: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of(cls, requests: tuple[Request, ...]) -> RequestLedger:
        return cls(
            [r.arrival for r in requests], [r.prompt_tokens for r in requests], [r.output_tokens for r in requests]
        )

    def prompt_tokens(self, request: int) -> int:
        return self.prompts[request]

    def output_tokens(self, request: int) -> int:
        return self.outputs[request]

    def first_token(self, request: int, at: float) -> None:
        self.first_token_at[request] = at

    def finished(self, request: int, at: float) -> None:
        self.done[request] = at

    def outcome(self, request: int) -> Outcome:
        arrival, first, last = self.arrivals[request], self.first_token_at.get(request), self.done.get(request)
        output = self.outputs[request]
        tpot = None if first is None or last is None else (last - first) / max(output - 1, 1)
        return Outcome(
            arrival, None if first is None else first - arrival, tpot, None if last is None else last - arrival
        )


def pod_capacity_rps(serving: Serving, prompt_tokens: float, output_tokens: float) -> float:
    """Requests a second one pod completes at a full batch of such requests: the capacity the oracle plans with."""
    context = prompt_tokens + output_tokens / 2
    step = serving.roofline.step_seconds([round(context)] * serving.max_batch, 0)
    decode_seconds = output_tokens * step / serving.max_batch
    prefill_seconds = serving.roofline.step_seconds([], serving.prefill_budget) * prompt_tokens / serving.prefill_budget
    return 1 / (decode_seconds + prefill_seconds)


def initial_replicas(workload: Workload, config: SimulationConfig) -> int:
    """Every side starts ready and sized for the first minute's requests."""
    first = [r for r in workload.requests if r.arrival < 60]
    if not first:
        return config.min_replicas
    prompt = sum(r.prompt_tokens for r in first) / len(first)
    output = sum(r.output_tokens for r in first) / len(first)
    needed = math.ceil(len(first) / 60 / pod_capacity_rps(config.serving, prompt, output))
    return max(config.min_replicas, min(config.max_replicas, needed))


def simulate(workload: Workload, config: SimulationConfig, autoscaler: Autoscaler) -> Run:
    """Each second: the autoscaler sees the pods and may resize them, then the arrivals are routed and served."""
    serving = config.serving
    trace = RequestLedger.of(workload.requests)
    pods = [PodEngine(0, serving) for _ in range(initial_replicas(workload, config))]
    router: deque[int] = deque()  # requests no pod has taken yet, in arrival order
    next_request = 0
    seconds: list[Second] = []
    for second in range(workload.seconds):
        ready = [pod for pod in pods if pod.ready_at <= second]
        loads = tuple(Load(len(p.waiting), p.running) for p in ready)
        view = PodsView(second, loads, len(pods) - len(ready), len(router))
        desired, autoscaler = autoscaler.observe(view)
        decided_up = desired is not None and desired > len(pods)
        if desired is not None:
            router.extendleft(reversed(_resize(pods, desired, second + config.pod_startup_seconds, serving)))
        ready = [pod for pod in pods if pod.ready_at <= second]
        arriving = []
        while next_request < len(trace.arrivals) and trace.arrivals[next_request] < second + 1:
            arriving.append(next_request)
            next_request += 1
        routed, unrouted = route(ready, [*router, *arriving], trace.arrivals, second)
        router = deque(unrouted)
        for index, pod in enumerate(ready):
            pod.serve(second, second + 1, routed.get(index, []), trace)
        seconds.append(
            Second(
                arrivals=len(arriving),
                ready=len(ready),
                replicas=len(pods),
                waiting=len(router) + sum(len(p.waiting) for p in ready),
                running=sum(p.running for p in ready),
                decided_up=decided_up,
            )
        )
    return Run(workload.name, config, tuple(seconds), tuple(trace.outcome(r) for r in range(len(trace.arrivals))))


def route(
    ready: list[PodEngine], requests: list[int], arrivals: list[float], start: float
) -> tuple[dict[int, list[tuple[float, int]]], list[int]]:
    """Each request, at its arrival time (`start` for those that came before it), to the ready pod with the
    fewest in flight (by index), and those left at the router: all of them when no pod is ready."""
    if not ready:
        return {}, requests
    routed: dict[int, list[tuple[float, int]]] = {}
    counts = [(pod.in_flight, index) for index, pod in enumerate(ready)]
    heapq.heapify(counts)
    for request in requests:
        load, index = heapq.heappop(counts)
        routed.setdefault(index, []).append((max(arrivals[request], float(start)), request))
        heapq.heappush(counts, (load + 1, index))
    return routed, []


def _resize(pods: list[PodEngine], desired: int, ready_from: int, serving: Serving) -> list[int]:
    """Add or remove pods in place; the unfinished requests of removed ready pods, to re-route."""
    if desired >= len(pods):
        pods += [PodEngine(ready_from, serving) for _ in range(desired - len(pods))]
        return []
    # The latest to be ready go first (starting pods), then the least loaded.
    order = sorted(pods, key=lambda pod: (-pod.ready_at, pod.in_flight))
    removed, kept = order[: len(pods) - desired], order[len(pods) - desired :]
    pods[:] = sorted(kept, key=lambda pod: pod.ready_at)
    return sorted(r for pod in removed for r in pod.unfinished())
