"""How well an autoscaler served a trace: the numbers the benchmark compares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from gemma_operator.autoscaling.simulation import SLO_PERCENTILE, Outcome, Run


@dataclass(frozen=True)
class Scorecard:
    slo_violation_seconds: int
    replica_seconds: int
    scale_direction_changes: int
    # None where more than 5% of the requests had no first token (or, for TPOT, no last one) by the end.
    ttft_p95_seconds: float | None
    tpot_p95_seconds: float | None

    def as_json(self) -> dict[str, float | None]:
        return {
            "sloViolationSeconds": self.slo_violation_seconds,
            "replicaSeconds": self.replica_seconds,
            "scaleDirectionChanges": self.scale_direction_changes,
            "ttftP95Seconds": self.ttft_p95_seconds,
            "tpotP95Seconds": self.tpot_p95_seconds,
        }


def score(run: Run) -> Scorecard:
    ttfts = [math.inf if o.ttft is None else o.ttft for o in run.outcomes]
    tpots = [math.inf if o.tpot is None else o.tpot for o in run.outcomes]
    return Scorecard(
        slo_violation_seconds=len(violating_seconds(run)),
        replica_seconds=sum(s.replicas for s in run.seconds),
        scale_direction_changes=direction_changes([s.replicas for s in run.seconds]),
        ttft_p95_seconds=_rounded(percentile(ttfts, SLO_PERCENTILE)),
        tpot_p95_seconds=_rounded(percentile(tpots, SLO_PERCENTILE)),
    )


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _rounded(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 4)


def missed(outcome: Outcome, ttft_slo: float, tpot_slo: float) -> bool:
    """A request misses its SLO when its first token came late or never, or its tokens came slower than the SLO.

    A request still decoding at the end of the run is judged on its first token only.
    """
    return outcome.ttft is None or outcome.ttft > ttft_slo or (outcome.tpot is not None and outcome.tpot > tpot_slo)


def violating_seconds(run: Run) -> set[int]:
    """Seconds whose arrivals' p95 TTFT or p95 TPOT broke the SLO: more than 5% of them missed it."""
    arrived = [0] * len(run.seconds)
    misses = [0] * len(run.seconds)
    config = run.config
    for outcome in run.outcomes:
        second = min(int(outcome.arrival), len(run.seconds) - 1)
        arrived[second] += 1
        misses[second] += missed(outcome, config.slo_ttft_seconds, config.slo_tpot_seconds)
    return {s for s in range(len(arrived)) if misses[s] > (1 - SLO_PERCENTILE) * arrived[s]}


def direction_changes(replicas: list[int]) -> int:
    """How often the replica count turned around: up after down, or down after up."""
    ups = [after > before for before, after in pairwise(replicas) if after != before]
    return sum(1 for before, after in pairwise(ups) if before != after)
