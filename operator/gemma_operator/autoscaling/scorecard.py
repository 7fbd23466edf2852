"""How well an autoscaler served a trace: the four numbers the benchmark compares."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from gemma_operator.autoscaling.simulation import Run


@dataclass(frozen=True)
class Scorecard:
    slo_violation_seconds: int
    replica_seconds: int
    scale_direction_changes: int
    scale_up_reaction_seconds: float | None

    def as_json(self) -> dict[str, float | None]:
        return {
            "sloViolationSeconds": self.slo_violation_seconds,
            "replicaSeconds": self.replica_seconds,
            "scaleDirectionChanges": self.scale_direction_changes,
            "scaleUpReactionSeconds": self.scale_up_reaction_seconds,
        }


def score(run: Run) -> Scorecard:
    capacity = run.config.replica_capacity_rps
    return Scorecard(
        slo_violation_seconds=sum(1 for s in run.seconds if s.mean_wait(capacity) > run.config.slo_queue_seconds),
        replica_seconds=sum(s.replicas for s in run.seconds),
        scale_direction_changes=direction_changes([s.replicas for s in run.seconds]),
        scale_up_reaction_seconds=mean_reaction(run),
    )


def direction_changes(replicas: list[int]) -> int:
    """How often the replica count turned around: up after down, or down after up."""
    ups = [after > before for before, after in pairwise(replicas) if after != before]
    return sum(1 for before, after in pairwise(ups) if before != after)


def mean_reaction(run: Run) -> float | None:
    """Mean seconds from the load outgrowing the pods ordered to the next scale-up decision; None if it never did.

    An episode starts in the first second the arrival rate exceeds what all pods, ready or starting, can serve,
    while fewer than maxReplicas run. It ends at the next scale-up decision, or when the load falls back within
    capacity first (then the whole episode counts: no reaction came).
    """
    capacity = run.config.replica_capacity_rps
    reactions: list[int] = []
    started: int | None = None
    for second, s in enumerate(run.seconds):
        short = s.rps > s.replicas * capacity and s.replicas < run.config.max_replicas
        if started is None and short and not s.decided_up:
            started = second
        elif started is not None and (s.decided_up or not short):
            reactions.append(second - started)
            started = None
    return round(sum(reactions) / len(reactions), 1) if reactions else None
