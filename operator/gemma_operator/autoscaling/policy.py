"""The built-in autoscaler's tunables: a GemmaDeployment's validated `spec.autoscaling`, with its target resolved."""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import AutoscalingSpec

# How often the operator scrapes the serving pods and decides; the simulation scrapes as often.
SCRAPE_INTERVAL_SECONDS = 15


@dataclass(frozen=True)
class AutoscalingPolicy:
    """How observed load becomes a replica count; docs/benchmarks/autoscaling.md explains each knob.

    The knobs and their defaults are the spec's own (its model validated them); only the target is resolved
    here, from the plan's maxConcurrentSequences unless `targetInFlightPerReplica` is set.
    """

    spec: AutoscalingSpec
    target_in_flight_per_replica: float

    @classmethod
    def from_spec(cls, spec: AutoscalingSpec, default_target: float) -> AutoscalingPolicy:
        """The policy a GemmaDeployment's spec.autoscaling asks for; the target defaults to `default_target`."""
        return cls(spec, spec.target_in_flight_per_replica or default_target)

    @property
    def aimed_in_flight_per_replica(self) -> float:
        """The in-flight load per pod the autoscaler sizes for: the target less the headroom."""
        return self.target_in_flight_per_replica * self.spec.target_utilization
