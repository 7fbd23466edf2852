"""The built-in autoscaler's tunables: a GemmaDeployment's validated `spec.autoscaling`, with its target resolved."""

from __future__ import annotations

import math
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
    # A decode step's seconds at a batch of 1, 2, ... sequences (serving.batch_step_seconds); empty when the
    # accelerator's roofline is unknown, and then requests count as they are.
    batch_step_seconds: tuple[float, ...] = ()

    @classmethod
    def from_spec(
        cls, spec: AutoscalingSpec, default_target: float, batch_step_seconds: tuple[float, ...] = ()
    ) -> AutoscalingPolicy:
        """The policy a GemmaDeployment's spec.autoscaling asks for; the target defaults to `default_target`."""
        return cls(spec, spec.target_in_flight_per_replica or default_target, batch_step_seconds)

    def at_full_batch(self, running: float) -> float:
        """The running requests a pod holds, as the requests it would hold at the same throughput in a full batch.

        Continuous batching serves a small batch faster per token. A pod running 4 sequences at 6 ms a step
        whose batch a scale-down fills to 16 at 14 ms a step takes 14 / 6 = 2.3x as long over each request, so
        by Little's law the same arrivals then hold 4 x 14 / 6 = 9.3 in flight. Counting load at full-batch
        speed keeps a scale-down from undercounting the pods it leaves, and from undoing itself.
        """
        curve = self.batch_step_seconds
        if not curve or running <= 0:
            return running
        batch = min(len(curve), max(1, math.ceil(running)))
        return running * (curve[-1] / curve[batch - 1])

    @property
    def aimed_in_flight_per_replica(self) -> float:
        """The in-flight load per pod the autoscaler sizes for: the target less the headroom."""
        return self.target_in_flight_per_replica * self.spec.target_utilization
