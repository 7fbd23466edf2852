"""The built-in autoscaler's tunables: one field per `spec.autoscaling` field, with the same defaults."""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import AutoscalingSpec


@dataclass(frozen=True)
class AutoscalingPolicy:
    """How observed load becomes a replica count; docs/benchmarks/autoscaling.md explains each knob.

    Only the bounds and the target have no default: they come from the GemmaDeployment, the target from its
    plan's maxConcurrentSequences unless `targetInFlightPerReplica` is set.
    """

    min_replicas: int
    max_replicas: int
    target_in_flight_per_replica: float
    target_utilization: float = 0.8
    stable_window_seconds: float = 60.0
    panic_window_seconds: float = 6.0
    panic_threshold: float = 2.0
    scale_down_delay_seconds: float = 300.0
    scale_down_tolerance: float = 0.05
    max_scale_up_rate: float = 2.0
    max_scale_up_pods: int = 4
    max_scale_down_rate: float = 2.0

    def __post_init__(self) -> None:
        problems = [
            message
            for broken, message in (
                (not 0 <= self.min_replicas <= self.max_replicas, "need 0 <= minReplicas <= maxReplicas"),
                (self.target_in_flight_per_replica <= 0, "targetInFlightPerReplica must be > 0"),
                (not 0 < self.target_utilization <= 1, "targetUtilization must be in (0, 1]"),
                (
                    not 0 < self.panic_window_seconds <= self.stable_window_seconds,
                    "need 0 < panicWindowSeconds <= stableWindowSeconds",
                ),
                (self.panic_threshold <= 1, "panicThreshold must be > 1"),
                (self.scale_down_delay_seconds < 0, "scaleDownDelaySeconds must be >= 0"),
                (not 0 <= self.scale_down_tolerance < 1, "scaleDownTolerance must be in [0, 1)"),
                (self.max_scale_up_rate <= 1, "maxScaleUpRate must be > 1"),
                (self.max_scale_up_pods < 1, "maxScaleUpPods must be >= 1"),
                (self.max_scale_down_rate <= 1, "maxScaleDownRate must be > 1"),
            )
            if broken
        ]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_spec(cls, spec: AutoscalingSpec, default_target: float) -> AutoscalingPolicy:
        """The policy a GemmaDeployment's spec.autoscaling asks for; the target defaults to `default_target`."""
        return cls(
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            target_in_flight_per_replica=spec.target_in_flight_per_replica or default_target,
            target_utilization=spec.target_utilization,
            stable_window_seconds=spec.stable_window_seconds,
            panic_window_seconds=spec.panic_window_seconds,
            panic_threshold=spec.panic_threshold,
            scale_down_delay_seconds=spec.scale_down_delay_seconds,
            scale_down_tolerance=spec.scale_down_tolerance,
            max_scale_up_rate=spec.max_scale_up_rate,
            max_scale_up_pods=spec.max_scale_up_pods,
            max_scale_down_rate=spec.max_scale_down_rate,
        )

    @property
    def aimed_in_flight_per_replica(self) -> float:
        """The in-flight load per pod the autoscaler sizes for: the target less the headroom."""
        return self.target_in_flight_per_replica * self.target_utilization
