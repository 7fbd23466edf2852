"""observe: pods and nodes read into what status and the autoscaler need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from gemma_operator.planning import NodeInfo
from gemma_operator.reconcile.conditions import PodState
from gemma_operator.reconcile.observe import (
    controller_uid,
    free_gpus_hint,
    gpu_capacity,
    owned_pods,
    pod_state,
    slim_pod,
    with_lost_nodes,
)

from .builders import deployment, fitted

# 31b at 8K x 2: one H100 per replica.
GPU_PLAN = fitted(deployment(serving={"maxConcurrentSequences": 2}))
TWO_GPU_PLAN = fitted(deployment(placement={"gpusPerReplica": 2}))
CPU_PLAN = fitted(deployment(model={"variant": "e2b"}))
SCHEDULER = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


def pod(
    conditions: dict[str, tuple[str, str]] | None = None,
    message: str = "",
    metadata: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    """A pod bound to gpu-0; `conditions` maps a condition type to (status, reason); other keywords go to status."""
    return {
        "metadata": {"name": "chat-0", **(metadata or {})},
        "spec": {"nodeName": "gpu-0", **(spec or {})},
        "status": {
            "conditions": [
                {"type": kind, "status": state, "reason": reason, "message": message}
                for kind, (state, reason) in (conditions or {}).items()
            ],
            **status,
        },
    }


def gpu_node(name: str, gpus: int, extra_labels: Mapping[str, str] | None = None, schedulable: bool = True) -> NodeInfo:
    """An H100 node: it carries the labels the GPU plans select, and any others given."""
    labels = {**GPU_PLAN.placement.node_selector, **(extra_labels or {})}
    return NodeInfo(name=name, labels=labels, gpus=gpus, schedulable=schedulable)


def test_a_ready_pod_is_ready_on_its_node_with_its_ip() -> None:
    state = pod_state(pod({"Ready": ("True", ""), "PodScheduled": ("True", "")}, phase="Running", podIP="10.1.2.3"))
    assert state == PodState(name="chat-0", node="gpu-0", ready=True, ip="10.1.2.3")


def test_a_pod_without_conditions_or_ip_is_not_ready() -> None:
    state = pod_state(pod(spec={"nodeName": None}))
    assert (state.ready, state.ip, state.node, state.unschedulable_message) == (False, "", "", None)


def test_an_unschedulable_pod_carries_the_scheduler_message() -> None:
    state = pod_state(pod({"PodScheduled": ("False", "Unschedulable")}, message=SCHEDULER, spec={"nodeName": ""}))
    assert state.unschedulable_message == SCHEDULER
    assert not state.ready


def test_a_pod_not_yet_scheduled_for_another_reason_is_not_unschedulable() -> None:
    state = pod_state(pod({"PodScheduled": ("False", "SchedulingGated")}, message="gated"))
    assert state.unschedulable_message is None


def test_a_pod_with_a_deletion_timestamp_is_terminating() -> None:
    state = pod_state(pod({"Ready": ("True", "")}, metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}))
    assert state.terminating
    assert state.ready  # still answering until it goes; status skips it anyway


@pytest.mark.parametrize(("phase", "terminating"), [("Succeeded", True), ("Failed", True), ("Running", False)])
def test_a_pod_in_a_terminal_phase_is_terminating(phase: str, terminating: bool) -> None:
    assert pod_state(pod(phase=phase)).terminating is terminating


def test_no_gpu_capacity_is_modelled_off_gpus() -> None:
    assert gpu_capacity(CPU_PLAN, [gpu_node("gpu-0", 8)], {}, placed=1) is None


def test_gpu_capacity_adds_what_the_free_gpus_hold_to_the_placed_replicas() -> None:
    nodes = [gpu_node("gpu-0", 8), gpu_node("gpu-1", 8), gpu_node("gpu-2", 4)]
    # Free: 3, 8 and 0 (more in use than the node has is none, not a negative count); two GPUs a replica.
    in_use = {"gpu-0": 5, "gpu-2": 6}
    assert gpu_capacity(TWO_GPU_PLAN, nodes, in_use, placed=2) == 2 + 1 + 4


def test_gpu_capacity_counts_only_nodes_the_plan_selects() -> None:
    nodes = [gpu_node("gpu-0", 2), NodeInfo(name="a100-0", labels={"nvidia.com/gpu.product": "A100"}, gpus=8)]
    assert gpu_capacity(GPU_PLAN, nodes, {}, placed=0) == 2


def test_gpu_capacity_skips_nodes_with_an_excluded_label() -> None:
    placement = GPU_PLAN.placement.model_copy(update={"excluded_node_labels": ["gemma.dev/reserved"]})
    plan = replace(GPU_PLAN, placement=placement)
    nodes = [gpu_node("gpu-0", 2), gpu_node("gpu-1", 8, {"gemma.dev/reserved": ""})]
    assert gpu_capacity(plan, nodes, {}, placed=0) == 2


def test_gpu_capacity_skips_cordoned_nodes() -> None:
    cordoned = gpu_node("gpu-1", 8, schedulable=False)
    assert gpu_capacity(GPU_PLAN, [gpu_node("gpu-0", 2), cordoned], {}, placed=1) == 3


def test_the_free_gpus_hint_counts_the_nodes_with_a_replicas_gpus_free() -> None:
    nodes = [gpu_node("gpu-0", 8), gpu_node("gpu-1", 8), gpu_node("gpu-2", 8)]
    hint = free_gpus_hint(TWO_GPU_PLAN, nodes, {"gpu-0": 7, "gpu-1": 8, "gpu-2": 5})
    assert hint == "1/3 h100 nodes have 2 free nvidia.com/gpu (most free: 3)"


def test_the_free_gpus_hint_without_candidate_nodes_has_no_maximum() -> None:
    assert free_gpus_hint(GPU_PLAN, [], {}) == "0/0 h100 nodes have 1 free nvidia.com/gpu"


def test_the_free_gpus_hint_leaves_cordoned_nodes_out() -> None:
    cordoned = gpu_node("gpu-1", 8, schedulable=False)
    assert free_gpus_hint(GPU_PLAN, [gpu_node("gpu-0", 1), cordoned], {"gpu-0": 1}) == (
        "0/1 h100 nodes have 1 free nvidia.com/gpu (most free: 0)"
    )


def test_there_is_no_free_gpus_hint_off_gpus() -> None:
    assert free_gpus_hint(CPU_PLAN, [gpu_node("gpu-0", 8)], {}) == ""


SERVING = (
    PodState(name="chat-0", node="gpu-0", ready=True),
    PodState(name="chat-1", node="gpu-gone", ready=True),
    PodState(name="chat-2", node="", ready=False),
    PodState(name="chat-3", node="gpu-gone", ready=True, terminating=True),
)


def test_without_an_inventory_no_pod_is_lost() -> None:
    assert with_lost_nodes(SERVING, []) == list(SERVING)


def test_pods_on_nodes_the_inventory_lacks_are_lost_and_not_ready() -> None:
    judged = with_lost_nodes(SERVING, [gpu_node("gpu-0", 8)])
    assert [(pod.name, pod.ready, pod.node_lost) for pod in judged] == [
        ("chat-0", True, False),
        ("chat-1", False, True),
        ("chat-2", False, False),  # not bound yet: nothing to lose
        ("chat-3", True, False),  # terminating: already on its way out
    ]


def _pod(name: str, owner: str | None, owner_uid: str = "rs-1") -> dict[str, Any]:
    references = (
        [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner_uid, "controller": True}]
        if owner
        else []
    )
    return {"metadata": {"name": name, "ownerReferences": references}}


def test_only_pods_of_the_gemma_deployments_own_replica_sets_count() -> None:
    live = {"metadata": {"name": "chat", "ownerReferences": [{"uid": "u1", "controller": True}]}}
    pods = [
        _pod("real", "chat-5d9f"),
        _pod("old-replica-set", "chat-77aa", owner_uid="rs-0"),
        _pod("copied-labels", None),
        _pod("forged-owner", "chat-5d9f", owner_uid="forged"),  # the right name, another uid
    ]
    slim = [slim_pod(pod) for pod in pods]
    counted = owned_pods(slim, live, "u1", {"rs-0", "rs-1"})
    assert [pod["metadata"]["name"] for pod in counted] == ["real", "old-replica-set"]
    assert owned_pods(slim, live, "another-uid", {"rs-0", "rs-1"}) == []  # a Deployment of that name that is not ours
    assert owned_pods(slim, None, "u1", {"rs-1"}) == []
    assert owned_pods(slim, live, "u1", set()) == []  # no ReplicaSet known yet: nothing counts


def test_controller_uid_is_that_of_the_controlling_reference_only() -> None:
    owners = [{"uid": "not-controller"}, {"uid": "d1", "controller": True}]
    assert controller_uid({"ownerReferences": owners}) == "d1"
    assert controller_uid({"ownerReferences": [{"uid": "x", "controller": False}]}) == ""
    assert controller_uid({}) == ""
