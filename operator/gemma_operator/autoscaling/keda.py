"""A baseline: KEDA's ScaledObject with its defaults, on a Prometheus trigger over the same per-pod metric.

It follows kedacore/keda v2.20.2:
- between 1 and N replicas KEDA does not scale itself: it creates an HPA (minReplicas max(minReplicaCount, 1))
  whose external metric KEDA's metrics server answers by querying the scaler on each HPA sync
  (pkg/scaling/scale_handler.go GetScaledObjectMetrics; useCachedMetrics is off by default), so the HPA sees
  Prometheus' newest sample, with no adapter of its own;
- the operator's loop polls the trigger every pollingInterval (30 s, apis/keda/v1alpha1/withtriggers_types.go)
  for activity (the metric above activationThreshold, 0): from 0 replicas it activates to 1, and it scales an
  inactive target to minReplicaCount only cooldownPeriod (300 s, pkg/scaling/executor/scale_executor.go) after
  it was last active (scale_scaledobjects.go scaleToZeroOrIdle). With minReplicaCount 1 or more that loop never
  changes the count, and KEDA is its HPA. With no pod, the trigger reads the requests waiting at the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

POLLING_INTERVAL_SECONDS = 30
COOLDOWN_PERIOD_SECONDS = 300


@dataclass(frozen=True)
class KedaActivation:
    """The activation loop's memory: when the trigger was last seen active."""

    last_active: int | None = None


def keda_poll(
    state: KedaActivation, now: int, replicas: int, in_flight: float, min_replicas: int
) -> tuple[int | None, KedaActivation]:
    """One poll of the trigger: the count the loop sets (None: the HPA's), and the memory after it."""
    if now % POLLING_INTERVAL_SECONDS:
        return None, state
    if in_flight > 0:
        return (1 if replicas == 0 else None), KedaActivation(now)
    cooled = state.last_active is None or now - state.last_active > COOLDOWN_PERIOD_SECONDS
    return (0 if min_replicas == 0 and replicas > 0 and cooled else None), state
