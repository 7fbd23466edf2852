"""The benchmark: one trace, run once under the built-in autoscaler and once under the HPA baseline."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gemma_operator.autoscaling.decision import Observation, decide
from gemma_operator.autoscaling.hpa import SYNC_SECONDS, HpaState, hpa_decide
from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.scorecard import Scorecard, score
from gemma_operator.autoscaling.simulation import PodsView, Run, SimulationConfig, simulate
from gemma_operator.autoscaling.state import AutoscalerState
from gemma_operator.autoscaling.traces import Trace

ADAPTER_DELAY_SECONDS = 15


@dataclass(frozen=True)
class BuiltinAutoscaler:
    """The operator's timer: scrape every pod directly, then decide, once per scrape interval."""

    policy: AutoscalingPolicy
    interval_seconds: int
    state: AutoscalerState = field(default_factory=AutoscalerState)

    def observe(self, view: PodsView) -> tuple[int | None, BuiltinAutoscaler]:
        if view.second % self.interval_seconds:
            return None, self
        observation = Observation((view.load_per_ready_pod,) * view.ready, view.starting)
        decision = decide(self.policy, self.state, observation, view.second)
        return decision.desired, replace(self, state=decision.state)


@dataclass(frozen=True)
class MetricSample:
    second: int
    reporting: int
    in_flight_per_pod: float


@dataclass(frozen=True)
class HpaAutoscaler:
    """Prometheus scrapes the ready pods; the HPA reads them through an adapter, a scrape interval plus 15 s late."""

    config: SimulationConfig
    target: float
    samples: tuple[MetricSample, ...] = ()
    state: HpaState = field(default_factory=HpaState)

    def observe(self, view: PodsView) -> tuple[int | None, HpaAutoscaler]:
        scrape = self.config.scrape_seconds
        samples = self.samples
        if view.second % scrape == 0:
            samples = (*samples, MetricSample(view.second, view.ready, view.load_per_ready_pod.in_flight))
        visible = [s for s in samples if s.second <= view.second - scrape - ADAPTER_DELAY_SECONDS]
        samples = tuple(s for s in samples if not visible or s.second >= visible[-1].second)
        if view.second % SYNC_SECONDS or not visible:
            return None, replace(self, samples=samples)
        reporting = min(visible[-1].reporting, view.ready)  # pods that were ready then and still run
        decision = hpa_decide(
            self.state,
            view.second,
            view.replicas,
            (visible[-1].in_flight_per_pod,) * reporting,
            view.replicas - reporting,
            self.target,
            self.config.min_replicas,
            self.config.max_replicas,
        )
        return decision.desired, replace(self, samples=samples, state=decision.state)


@dataclass(frozen=True)
class Comparison:
    trace: str
    builtin: Run
    baseline: Run

    def scorecards(self) -> tuple[Scorecard, Scorecard]:
        return score(self.builtin), score(self.baseline)


def default_policy(config: SimulationConfig) -> AutoscalingPolicy:
    return AutoscalingPolicy.from_spec(config.autoscaling_spec(), config.target_in_flight_per_replica)


def compare(trace: Trace, config: SimulationConfig, baseline_utilization: float = 1.0) -> Comparison:
    """Both runs on the same per-pod target; `baseline_utilization` < 1 gives the HPA headroom too."""
    builtin = simulate(trace, config, BuiltinAutoscaler(default_policy(config), config.scrape_seconds))
    hpa = HpaAutoscaler(config, config.target_in_flight_per_replica * baseline_utilization)
    return Comparison(trace.name, builtin, simulate(trace, config, hpa))
