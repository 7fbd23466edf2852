"""The GPU-aware rollout: a surge pod where a node has its GPUs free, else one pod at a time, a wait, or the
downtime the spec allows; the strategy each renders; what status says; and that a rollout keeps its strategy."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Reason
from gemma_operator.planning import NodeInfo
from gemma_operator.reconcile.children import ChildMemory, Children
from gemma_operator.reconcile.conditions import FALSE, TRUE, Capacity, compute_status
from gemma_operator.rendering import render
from gemma_operator.rendering.disruption import pod_disruption_budget
from gemma_operator.rendering.identity import Identity
from gemma_operator.rendering.rollout import RolloutDecision, RolloutMode, decide_rollout

from .builders import deployment, fitted
from .test_reconcile_conditions import live_deployment, observed, summary

# 31b at the defaults: two H100s a replica.
GD = deployment()
PLAN = fitted(GD)
PLACEMENT = PLAN.placement
NEEDED = PLACEMENT.gpus_per_replica
ONE_REPLICA_DOWNTIME = deployment(serving={"rollout": {"allowDowntime": True}})
L4_LABELS = {"nvidia.com/gpu.product": "NVIDIA-L4"}


def h100(name: str, gpus: int = 8, schedulable: bool = True) -> NodeInfo:
    return NodeInfo(name=name, labels=dict(PLACEMENT.node_selector), gpus=gpus, schedulable=schedulable)


NODES = [h100("h100-0"), h100("h100-1")]


def full(free: dict[str, int] | None = None) -> dict[str, int]:
    """GPUs in use on NODES: all of them, less `free` per node."""
    return {node.name: node.gpus - (free or {}).get(node.name, 0) for node in NODES}


def strategy(decision: RolloutDecision) -> dict[str, Any]:
    return decision.strategy


def test_a_free_slot_for_one_more_replica_surges() -> None:
    decision = decide_rollout(GD, PLACEMENT, 2, NODES, full({"h100-1": NEEDED}))
    assert decision.mode is RolloutMode.SURGE
    assert strategy(decision) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_free_gpus_spread_over_nodes_are_no_slot() -> None:
    # One free GPU on each node: two in all, but a replica's two GPUs must be on one node.
    decision = decide_rollout(GD, PLACEMENT, 2, NODES, full({"h100-0": 1, "h100-1": 1}))
    assert decision.mode is RolloutMode.ONE_AT_A_TIME
    assert "at most 1 free (2 in all)" in decision.why


def test_no_slot_and_more_replicas_replace_one_at_a_time_keeping_the_budget_s_minimum() -> None:
    decision = decide_rollout(GD, PLACEMENT, 3, NODES, full())
    assert decision.mode is RolloutMode.ONE_AT_A_TIME
    rolling = strategy(decision)["rollingUpdate"]
    assert rolling["maxSurge"] == 0
    # Never more down at once than the PodDisruptionBudget allows a drain.
    assert rolling["maxUnavailable"] == pod_disruption_budget(Identity.of(GD))["spec"]["maxUnavailable"]
    assert decision.why == (
        f"a new pod needs {NEEDED} nvidia.com/gpu free on one h100 node, and the 2 h100 nodes it may go to have at "
        "most 0 free (0 in all): no surge pod, the pods are replaced one at a time (2 of 3 keep serving, as the "
        "PodDisruptionBudget requires)"
    )


def test_one_replica_without_a_slot_waits_naming_what_is_missing_and_the_escape() -> None:
    decision = decide_rollout(GD, PLACEMENT, 1, NODES, full({"h100-0": 1}))
    assert decision.mode is RolloutMode.WAIT
    assert f"a new pod needs {NEEDED} nvidia.com/gpu free on one h100 node" in decision.why
    assert "have at most 1 free (1 in all)" in decision.why
    assert "spec.serving.rollout.allowDowntime: true" in decision.why
    with pytest.raises(ValueError, match="applies no strategy"):
        strategy(decision)


def test_one_replica_that_allows_downtime_replaces_its_only_pod() -> None:
    decision = decide_rollout(ONE_REPLICA_DOWNTIME, PLACEMENT, 1, NODES, full())
    assert decision.mode is RolloutMode.DOWNTIME
    assert strategy(decision)["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "allowDowntime" in decision.why


@pytest.mark.parametrize(
    ("gd", "nodes", "in_use"),
    [
        (deployment(model={"variant": "e2b"}), NODES, full()),  # CPU: the scheduler's memory accounting decides
        (deployment(model={"variant": "e2b"}, placement={"target": "edge"}), NODES, full()),
        (GD, [], {}),  # no inventory known
    ],
    ids=["cpu", "edge", "no-inventory"],
)
def test_off_gpus_and_without_an_inventory_a_surge_as_always(gd: Any, nodes: list[NodeInfo], in_use: Any) -> None:
    assert decide_rollout(gd, fitted(gd).placement, 1, nodes, in_use).mode is RolloutMode.SURGE


def test_a_created_read_write_once_claim_recreates_whatever_is_free() -> None:
    gd = deployment(serving={"cache": {"size": "200Gi"}})
    for in_use in (full(), {}):
        decision = decide_rollout(gd, PLACEMENT, 2, NODES, in_use)
        assert strategy(decision) == {"type": "Recreate"}


def test_a_scale_down_in_the_same_change_frees_the_slot_and_nothing_running_needs_none() -> None:
    # From two replicas to one: the Deployment removes an old pod first, and its GPUs hold the new one.
    assert decide_rollout(GD, PLACEMENT, 1, NODES, full(), current=2).mode is RolloutMode.SURGE
    # Scaled to zero before: no pod serves that a surge would keep.
    assert decide_rollout(GD, PLACEMENT, 1, NODES, full(), current=0).mode is RolloutMode.SURGE


def test_one_replica_whose_pod_is_not_ready_is_replaced_without_waiting() -> None:
    # A pending or crashing pod still holds its GPUs: waiting for more would keep the fix from ever rolling.
    decision = decide_rollout(GD, PLACEMENT, 1, NODES, full(), ready=0)
    assert decision.mode is RolloutMode.DOWNTIME
    assert strategy(decision) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert "no pod is ready" in decision.why
    # A ready one is kept serving, and a free slot still surges.
    assert decide_rollout(GD, PLACEMENT, 1, NODES, full(), ready=1).mode is RolloutMode.WAIT
    assert decide_rollout(GD, PLACEMENT, 1, NODES, full({"h100-0": NEEDED}), ready=0).mode is RolloutMode.SURGE


def test_cordoned_and_other_class_nodes_are_not_where_a_new_pod_may_go() -> None:
    l4 = NodeInfo(name="l4-0", labels=L4_LABELS, gpus=8)
    cordoned = h100("h100-2", schedulable=False)
    decision = decide_rollout(GD, PLACEMENT, 1, [*NODES, l4, cordoned], full())
    assert decision.mode is RolloutMode.WAIT
    assert "the 2 h100 nodes it may go to" in decision.why


def test_render_without_an_inventory_surges() -> None:
    (serving,) = (m for m in render(GD, PLAN, 2) if m["kind"] == "Deployment")
    assert serving["spec"]["strategy"] == decide_rollout(GD, PLACEMENT, 2).strategy
    assert serving["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1


# --- properties ---------------------------------------------------------------------------------------------

node_gpus = st.integers(min_value=0, max_value=8)
inventories = st.lists(st.tuples(node_gpus, node_gpus, st.booleans(), st.booleans()), min_size=1, max_size=5)


def cluster(rows: list[tuple[int, int, bool, bool]]) -> tuple[list[NodeInfo], dict[str, int]]:
    """Nodes from (allocatable, in use, eligible class, schedulable) rows."""
    nodes = [
        NodeInfo(f"n{i}", dict(PLACEMENT.node_selector) if eligible else L4_LABELS, gpus=gpus, schedulable=open_)
        for i, (gpus, _, eligible, open_) in enumerate(rows)
    ]
    return nodes, {f"n{i}": used for i, (_, used, _, _) in enumerate(rows)}


RANK = {RolloutMode.SURGE: 0, RolloutMode.ONE_AT_A_TIME: 1, RolloutMode.DOWNTIME: 1, RolloutMode.WAIT: 2}


@given(rows=inventories, freed=st.lists(st.integers(min_value=0, max_value=8), min_size=5, max_size=5))
def test_more_free_gpus_never_turn_a_surge_into_anything_else(rows: list[Any], freed: list[int]) -> None:
    for replicas in (1, 2, 4):
        for gd in (GD, ONE_REPLICA_DOWNTIME):
            nodes, in_use = cluster(rows)
            before = decide_rollout(gd, PLACEMENT, replicas, nodes, in_use).mode
            fewer = {name: max(0, used - freed[i]) for i, (name, used) in enumerate(in_use.items())}
            after = decide_rollout(gd, PLACEMENT, replicas, nodes, fewer).mode
            assert RANK[after] <= RANK[before], (replicas, before, after)


@given(rows=inventories, other=st.tuples(node_gpus, node_gpus, st.booleans()))
def test_a_node_a_new_pod_may_not_go_to_never_counts(rows: list[Any], other: tuple[int, int, bool]) -> None:
    gpus, used, l4 = other
    nodes, in_use = cluster(rows)
    # Another class's node, or a cordoned one of the class.
    extra = NodeInfo("x", L4_LABELS, gpus=gpus) if l4 else h100("x", gpus, schedulable=False)
    for replicas in (1, 3):
        assert decide_rollout(GD, PLACEMENT, replicas, nodes, in_use) == decide_rollout(
            GD, PLACEMENT, replicas, [*nodes, extra], {**in_use, "x": used}
        )


@given(rows=inventories, replicas=st.integers(min_value=1, max_value=8))
def test_the_modes_follow_the_free_slot_the_replicas_and_the_consent(rows: list[Any], replicas: int) -> None:
    nodes, in_use = cluster(rows)
    slot = any(
        node.schedulable and node.labels == dict(PLACEMENT.node_selector) and node.gpus - in_use[node.name] >= NEEDED
        for node in nodes
    )
    waits = decide_rollout(GD, PLACEMENT, replicas, nodes, in_use)
    consents = decide_rollout(ONE_REPLICA_DOWNTIME, PLACEMENT, replicas, nodes, in_use)
    if slot:
        assert waits.mode is consents.mode is RolloutMode.SURGE
        assert not waits.why
    elif replicas > 1:
        # Several replicas never wait and never go all down; the consent to downtime changes nothing.
        assert waits.mode is consents.mode is RolloutMode.ONE_AT_A_TIME
        assert waits.strategy["rollingUpdate"]["maxUnavailable"] < replicas
    else:
        assert (waits.mode, consents.mode) == (RolloutMode.WAIT, RolloutMode.DOWNTIME)
        assert f"{NEEDED} nvidia.com/gpu" in waits.why


# --- status ---------------------------------------------------------------------------------------------------

WAITING = decide_rollout(GD, PLACEMENT, 1, NODES, full()).why


def test_an_operator_template_waiting_for_gpus_is_reconciling_and_ready_as_the_pods_are() -> None:
    status = compute_status(observed(desired_replicas=2, capacity=Capacity(waiting=WAITING)), {}, "t0")
    assert summary(status, "Reconciling") == (TRUE, Reason.WAITING_FOR_CAPACITY, WAITING)
    assert summary(status, "Ready")[:2] == (TRUE, Reason.READY)


def test_a_spec_change_waiting_for_gpus_is_not_ready() -> None:
    status = compute_status(observed(capacity=Capacity(waiting=WAITING, for_spec=True)), {}, "t0")
    assert summary(status, "Reconciling") == (TRUE, Reason.WAITING_FOR_CAPACITY, WAITING)
    assert summary(status, "Ready") == (FALSE, Reason.WAITING_FOR_CAPACITY, WAITING)
    assert summary(status, "Stalled")[0] == FALSE


def test_a_rollout_without_a_surge_pod_says_why_while_it_rolls() -> None:
    why = decide_rollout(GD, PLACEMENT, 2, NODES, full()).why
    rolling = observed(capacity=Capacity(without_surge=why), deployment=live_deployment(updated=1, available=1))
    reconciling = summary(compute_status(rolling, {}, "t0"), "Reconciling")
    assert reconciling[:2] == (TRUE, Reason.ROLLING_OUT)
    assert reconciling[2] == f"rolling out: 1/2 replicas updated; {why}"
    done = compute_status(replace(rolling, deployment=live_deployment()), {}, "t0")
    assert summary(done, "Reconciling")[0] == FALSE


# --- the strategy a rollout keeps --------------------------------------------------------------------------------


def serving_manifests(gd: Any = GD) -> list[dict[str, Any]]:
    return render(gd, PLAN, 2)


def live_of(manifests: list[dict[str, Any]], strategy: dict[str, Any]) -> dict[str, Any]:
    (serving,) = (m for m in manifests if m["kind"] == "Deployment")
    return {**serving, "spec": {**serving["spec"], "strategy": strategy}}


ONE_AT_A_TIME = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def strategy_of(manifests: list[dict[str, Any]]) -> Any:
    return next(m for m in manifests if m["kind"] == "Deployment")["spec"]["strategy"]


def test_the_live_strategy_is_kept_while_the_template_is_the_live_one() -> None:
    manifests = serving_manifests()
    live = live_of(serving_manifests(), ONE_AT_A_TIME)
    assert Children.settled_rollout(ChildMemory(), GD, manifests, {"Deployment": live})
    assert strategy_of(manifests) == ONE_AT_A_TIME


def test_a_new_template_is_to_be_decided_and_then_keeps_its_decision() -> None:
    memory = ChildMemory()
    old = live_of(serving_manifests(), ONE_AT_A_TIME)
    changed = deployment(serving={"env": [{"name": "NEW", "value": "1"}]})
    manifests = serving_manifests(changed)
    assert not Children.settled_rollout(memory, changed, manifests, {"Deployment": old})
    # A wait is not remembered: the next reconcile decides again.
    Children.decide_rollout(memory, changed, manifests, RolloutDecision(RolloutMode.WAIT, "no GPUs"))
    assert not Children.settled_rollout(memory, changed, manifests, {"Deployment": old})
    surge = decide_rollout(changed, PLACEMENT, 2, NODES, full({"h100-0": NEEDED}))
    Children.decide_rollout(memory, changed, manifests, surge)
    # The watch still shows the old template, and the surge pod now holds the free GPUs: the decision stands.
    again = serving_manifests(changed)
    assert Children.settled_rollout(memory, changed, again, {"Deployment": old})
    assert strategy_of(again) == surge.strategy
    assert Children.rolling(memory, changed, again) == surge


def test_a_deployment_to_create_keeps_the_rendered_strategy() -> None:
    manifests = serving_manifests()
    assert Children.settled_rollout(ChildMemory(), GD, manifests, {})
    assert strategy_of(manifests) == decide_rollout(GD, PLACEMENT, 2).strategy
