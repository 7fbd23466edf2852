"""A reconcile reuses its object's plan while the spec and the node inventory are those it was made from."""

from __future__ import annotations

from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.planning import NodeInfo, plan
from gemma_operator.reconcile.controller import planned

from .builders import deployment, fitted

CLASSES = default_accelerator_classes()
GD = deployment(serving={"maxConcurrentSequences": 2})  # 31b at 8K x 2: one H100 per replica


def h100(schedulable: bool = True) -> list[NodeInfo]:
    """One H100 node, new at every call as the index gives one to every reconcile."""
    return [NodeInfo(name="gpu-0", labels=fitted(GD).placement.node_selector, gpus=8, schedulable=schedulable)]


def test_the_same_spec_and_nodes_reuse_the_plan() -> None:
    first = planned(None, GD, CLASSES, h100())
    again = planned(first, deployment(serving={"maxConcurrentSequences": 2}), CLASSES, h100())
    assert again is first
    assert first.result == plan(GD, CLASSES, h100())


def test_a_spec_change_plans_again() -> None:
    first = planned(None, GD, CLASSES, ())
    changed = deployment(serving={"maxConcurrentSequences": 4})
    again = planned(first, changed, CLASSES, ())
    assert again is not first
    assert again.result == plan(changed, CLASSES)
    assert again.result != first.result


def test_a_node_change_plans_again() -> None:
    first = planned(None, GD, CLASSES, h100())
    again = planned(first, GD, CLASSES, h100(schedulable=False))
    assert again is not first
    assert again.result == plan(GD, CLASSES, h100(schedulable=False))
    assert again.result != first.result
