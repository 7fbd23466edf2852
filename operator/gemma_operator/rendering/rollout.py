"""How a new pod template replaces the running pods, decided from the free GPUs. Pure.

A surge pod beside the old ones keeps every replica serving, but holds a replica's GPUs until an old pod goes: it
is chosen when some node the plan may use has them free. Without such a node, pods are replaced one at a time
(the PodDisruptionBudget's minimum stays up); the only pod of a single replica is replaced only when the spec
allows the downtime, and otherwise the new template waits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from gemma_operator.api import GemmaDeployment, PlacementPlan, Target
from gemma_operator.planning import NodeInfo
from gemma_operator.planning.inventory import GPU_RESOURCE, free_gpus, free_replica_slots, open_nodes
from gemma_operator.rendering.claim import claim_to_create
from gemma_operator.rendering.disruption import MAX_UNAVAILABLE
from gemma_operator.rendering.identity import Manifest


class RolloutMode(Enum):
    SURGE = "surge"
    ONE_AT_A_TIME = "one at a time"
    DOWNTIME = "downtime"
    # Nothing rolls: the Deployment keeps its template until capacity appears or the spec allows the downtime.
    WAIT = "wait"
    RECREATE = "recreate"


@dataclass(frozen=True)
class RolloutDecision:
    mode: RolloutMode
    # Why not a surge, for status: what a new pod needs, what the nodes have free, and what follows from it.
    why: str = ""

    @property
    def strategy(self) -> Manifest:
        """The Deployment's spec.strategy for this rollout."""
        if self.mode is RolloutMode.RECREATE:
            return {"type": "Recreate"}
        if self.mode is RolloutMode.WAIT:
            raise ValueError("a rollout that waits applies no strategy: the Deployment is left as it is")
        surge, unavailable = {
            # Zero downtime: a new replica serves before an old one goes.
            RolloutMode.SURGE: (1, 0),
            # An old pod goes first, and its GPUs take the new one: as many at a time as the budget lets a drain.
            RolloutMode.ONE_AT_A_TIME: (0, MAX_UNAVAILABLE),
            # The only pod goes first.
            RolloutMode.DOWNTIME: (0, 1),
        }[self.mode]
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def decide_rollout(
    gd: GemmaDeployment,
    placement: PlacementPlan,
    replicas: int,
    nodes: Sequence[NodeInfo] = (),
    gpus_in_use: Mapping[str, int] | None = None,
    current: int | None = None,
    ready: int | None = None,
) -> RolloutDecision:
    """How a new template of `replicas` replicas replaces the `current` ones (by default as many), of which `ready`
    serve (by default all), from the node inventory and the GPUs pods hold per node. A surge where no inventory is
    known (none given, or not a GPU placement), as the scheduler alone can judge there, and where no replica runs
    that a surge would keep serving."""
    if claim_to_create(gd) is not None:
        # The created cache claim is ReadWriteOnce, attached to one node at a time: a surge pod on another node
        # would wait for it forever while the old pod waits for the surge pod.
        return RolloutDecision(RolloutMode.RECREATE)
    in_use = gpus_in_use or {}
    running = replicas if current is None else current
    # Replicas the same change scales away: the Deployment removes their pods first, and their GPUs hold new ones.
    leaving = max(0, running - replicas)
    if (
        placement.target is not Target.GPU
        or not placement.gpus_per_replica
        or not nodes
        or min(replicas, running) < 1
        or free_replica_slots(placement, nodes, in_use) + leaving > 0
    ):
        return RolloutDecision(RolloutMode.SURGE)
    missing = _missing(placement, nodes, in_use)
    if replicas > 1:
        return RolloutDecision(
            RolloutMode.ONE_AT_A_TIME,
            f"{missing}: no surge pod, the pods are replaced one at a time ({replicas - MAX_UNAVAILABLE} of "
            f"{replicas} keep serving, as the PodDisruptionBudget requires)",
        )
    if (running if ready is None else ready) < 1:
        # The old pod serves nothing (pending, crashing, not ready): waiting would keep it holding the GPUs the
        # new template needs, and replacing it costs no answer.
        return RolloutDecision(
            RolloutMode.DOWNTIME,
            f"{missing}: no pod is ready, so none would keep serving: the only pod stops before the new one starts",
        )
    if gd.spec.serving.rollout.allow_downtime:
        return RolloutDecision(
            RolloutMode.DOWNTIME,
            f"{missing}: spec.serving.rollout.allowDowntime: the only pod stops before the new one starts, and the "
            "model does not answer meanwhile",
        )
    return RolloutDecision(
        RolloutMode.WAIT,
        f"{missing}: the new template waits until one has, while the only pod keeps serving the old one; "
        "spec.serving.rollout.allowDowntime: true replaces it now, with downtime",
    )


def _missing(placement: PlacementPlan, nodes: Sequence[NodeInfo], gpus_in_use: Mapping[str, int]) -> str:
    """What a new pod needs and what the nodes it may go to have free."""
    candidates = open_nodes(placement, nodes)
    free = [free_gpus(node, gpus_in_use) for node in candidates]
    what = placement.accelerator_class
    return (
        f"a new pod needs {placement.gpus_per_replica} {GPU_RESOURCE} free on one {what} node, and the "
        f"{len(candidates)} {what} nodes it may go to have at most {max(free, default=0)} free ({sum(free)} in all)"
    )
