"""What the operator remembers of each GemmaDeployment between reconciles, in one record per object, so that
forgetting an object is one pop. A record is changed only by the worker that holds the object's key."""

from __future__ import annotations

from dataclasses import dataclass, field

from gemma_operator.api import GemmaDeploymentSpec
from gemma_operator.autoscaling.state import AutoscalerState
from gemma_operator.planning import NodeInfo, PlanResult
from gemma_operator.reconcile.children import ChildMemory
from gemma_operator.reconcile.conditions import Scaling
from gemma_operator.reconcile.status import StatusMemory
from gemma_operator.reconcile.verification import VerificationMemory

Key = tuple[str, str]


@dataclass(frozen=True)
class Planned:
    """A plan and what it was made from: planning reads the spec and the node inventory only."""

    spec: GemmaDeploymentSpec
    nodes: tuple[NodeInfo, ...]
    result: PlanResult


@dataclass
class ObjectState:
    # The (uid, generation) last reconciled: an event of the object that changes neither (our own status
    # writes) needs no reconcile.
    handled: tuple[str, int] | None = None
    # Reused while spec and nodes are unchanged: most reconciles follow a pod or Deployment event, which changes
    # neither, and planning is most of a reconcile's CPU.
    planned: Planned | None = None
    status: StatusMemory = field(default_factory=StatusMemory)
    children: ChildMemory = field(default_factory=ChildMemory)
    verification: VerificationMemory = field(default_factory=VerificationMemory)
    # The built-in autoscaler's replicas as the reconcile applies them, and its windows between ticks.
    scaling: Scaling | None = None
    autoscaler: AutoscalerState = field(default_factory=AutoscalerState)
    # Whether autoscaler ticks are being scheduled for the object.
    ticking: bool = False


class States:
    def __init__(self) -> None:
        self._records: dict[Key, ObjectState] = {}

    def __len__(self) -> int:
        return len(self._records)

    def of(self, key: Key) -> ObjectState:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = ObjectState()
        return record

    def forget(self, key: Key) -> None:
        self._records.pop(key, None)
