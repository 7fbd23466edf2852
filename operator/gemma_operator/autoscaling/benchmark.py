"""The benchmark: one workload under the built-in autoscaler, the HPA, KEDA and Knative's KPA baselines, and the
clairvoyant oracle at the HPA's replica budget. All get the same per-pod target (a full batch) and bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from gemma_operator.api import AutoscalingSpec
from gemma_operator.autoscaling.decision import Observation, decide
from gemma_operator.autoscaling.hpa import SYNC_SECONDS, HpaState, hpa_decide
from gemma_operator.autoscaling.keda import KedaActivation, keda_poll
from gemma_operator.autoscaling.kpa import TICK_SECONDS, KpaState, kpa_decide, kpa_record
from gemma_operator.autoscaling.oracle import OracleAutoscaler, oracle_plan
from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.scorecard import Scorecard, score
from gemma_operator.autoscaling.serving import batch_step_seconds
from gemma_operator.autoscaling.simulation import PodsView, Run, SimulationConfig, pod_capacity_rps, simulate
from gemma_operator.autoscaling.state import AutoscalerState
from gemma_operator.autoscaling.traces import CONVERSATION, Lengths, Trace, Workload, requests_at

# prometheus-adapter answers the HPA from its own query of Prometheus, relisted every 15 s.
ADAPTER_DELAY_SECONDS = 15
SIDES = ("builtin", "hpa", "keda", "kpa", "oracle")
# The rate shapes of traces.py are drawn in units of a pod serving 2 requests a second.
SHAPE_POD_RPS = 2.0


def shape_workload(trace: Trace, config: SimulationConfig, lengths: Lengths = CONVERSATION) -> Workload:
    """A rate shape as requests, its rates rescaled so that SHAPE_POD_RPS is one pod of the simulated model at
    requests of `lengths`' mean size (a log-normal's mean is its median x exp(sigma^2 / 2))."""
    prompt = lengths.prompt_median * math.exp(lengths.prompt_sigma**2 / 2)
    output = lengths.output_median * math.exp(lengths.output_sigma**2 / 2)
    factor = pod_capacity_rps(config.serving, prompt, output) / SHAPE_POD_RPS
    workload = requests_at(
        Trace(trace.name, tuple(rps * factor for rps in trace.rps)), lengths, config.max_context_tokens
    )
    return replace(workload, name=trace.name)


@dataclass(frozen=True)
class BuiltinAutoscaler:
    """The operator's timer: scrape every pod directly, then decide, once per scrape interval."""

    policy: AutoscalingPolicy
    interval_seconds: int
    state: AutoscalerState = field(default_factory=AutoscalerState)

    def observe(self, view: PodsView) -> tuple[int | None, BuiltinAutoscaler]:
        if view.second % self.interval_seconds:
            return None, self
        decision = decide(self.policy, self.state, Observation(view.loads, view.starting), view.second)
        return decision.desired, replace(self, state=decision.state)


@dataclass(frozen=True)
class MetricSample:
    second: int
    reporting: int
    in_flight_per_pod: float


@dataclass(frozen=True)
class HpaAutoscaler:
    """Prometheus scrapes the ready pods; the HPA reads them through an adapter, a scrape interval plus 15 s late
    (`through_adapter` False: the newest sample, as KEDA's metrics server answers)."""

    config: SimulationConfig
    target: float
    through_adapter: bool = True
    samples: tuple[MetricSample, ...] = ()
    state: HpaState = field(default_factory=HpaState)

    def observe(self, view: PodsView) -> tuple[int | None, HpaAutoscaler]:
        scrape = self.config.scrape_seconds
        samples = self.samples
        if view.second % scrape == 0:
            samples = (*samples, MetricSample(view.second, view.ready, view.in_flight / max(view.ready, 1)))
        lag = scrape + ADAPTER_DELAY_SECONDS if self.through_adapter else 0
        visible = [s for s in samples if s.second <= view.second - lag]
        samples = tuple(s for s in samples if not visible or s.second >= visible[-1].second)
        if view.second % SYNC_SECONDS or not visible or view.replicas == 0:
            return None, replace(self, samples=samples)
        reporting = min(visible[-1].reporting, view.ready)  # pods that were ready then and still run
        decision = hpa_decide(
            self.state,
            view.second,
            view.replicas,
            (visible[-1].in_flight_per_pod,) * reporting,
            view.replicas - reporting,
            self.target,
            max(self.config.min_replicas, 1),
            self.config.max_replicas,
        )
        return decision.desired, replace(self, samples=samples, state=decision.state)


@dataclass(frozen=True)
class KedaAutoscaler:
    """KEDA's HPA, answered from Prometheus' newest sample, beside KEDA's own activation loop."""

    hpa: HpaAutoscaler
    activation: KedaActivation = field(default_factory=KedaActivation)

    def observe(self, view: PodsView) -> tuple[int | None, KedaAutoscaler]:
        polled, activation = keda_poll(
            self.activation, view.second, view.replicas, view.in_flight + view.unrouted, self.hpa.config.min_replicas
        )
        desired, hpa = self.hpa.observe(view)
        return (desired if polled is None else polled), KedaAutoscaler(hpa, activation)


@dataclass(frozen=True)
class KpaAutoscaler:
    """Knative's autoscaler: scrapes the pods' concurrency every second, decides every tick."""

    config: SimulationConfig
    target: float
    state: KpaState = field(default_factory=KpaState)

    def observe(self, view: PodsView) -> tuple[int | None, KpaAutoscaler]:
        state = kpa_record(self.state, view.second, view.in_flight) if view.ready else self.state
        if view.second % TICK_SECONDS:
            return None, replace(self, state=state)
        desired, state = kpa_decide(state, view.second, view.ready, self.target)
        if desired is not None:
            desired = max(self.config.min_replicas, min(self.config.max_replicas, desired))
        return desired, replace(self, state=state)


@dataclass(frozen=True)
class Comparison:
    trace: str
    runs: dict[str, Run]

    @property
    def builtin(self) -> Run:
        return self.runs["builtin"]

    @property
    def baseline(self) -> Run:
        return self.runs["hpa"]

    def scorecards(self) -> dict[str, Scorecard]:
        return {side: score(run) for side, run in self.runs.items()}


def default_policy(config: SimulationConfig, spec: AutoscalingSpec | None = None) -> AutoscalingPolicy:
    """The policy the operator would run: `spec` (the config's bounds, every other knob defaulted), and the plan's
    step times (reconcile/autoscaler.py)."""
    curve = batch_step_seconds(config.serving.roofline, config.serving.max_batch)
    chosen = config.autoscaling_spec() if spec is None else spec
    return AutoscalingPolicy.from_spec(chosen, config.target_in_flight_per_replica, curve)


def compare(workload: Workload, config: SimulationConfig) -> Comparison:
    """Every side on the same workload and per-pod target; the oracle at the HPA's replica-seconds."""
    target = config.target_in_flight_per_replica
    builtin = simulate(workload, config, BuiltinAutoscaler(default_policy(config), config.scrape_seconds))
    hpa = simulate(workload, config, HpaAutoscaler(config, target))
    keda = simulate(workload, config, KedaAutoscaler(HpaAutoscaler(config, target, through_adapter=False)))
    kpa = simulate(workload, config, KpaAutoscaler(config, target))
    budget = sum(s.replicas for s in hpa.seconds)
    oracle = simulate(workload, config, OracleAutoscaler(oracle_plan(workload, config, budget)))
    return Comparison(workload.name, {"builtin": builtin, "hpa": hpa, "keda": keda, "kpa": kpa, "oracle": oracle})
