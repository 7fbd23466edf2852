"""Reading pods and nodes into what status and placement need. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from gemma_operator.api import Target
from gemma_operator.fleet.claims import TERMINAL_PHASES
from gemma_operator.planning import NodeInfo, Plan
from gemma_operator.planning.inventory import GPU_RESOURCE, free_gpus, free_replica_slots, open_nodes
from gemma_operator.reconcile.conditions import PodState

# The kubelet's reason for a container whose env, volumes or user it cannot resolve (pkg/kubelet/container).
CONFIG_ERROR = "CreateContainerConfigError"
MAX_KUBELET_MESSAGE = 300


def _controller(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((ref for ref in metadata.get("ownerReferences") or [] if ref.get("controller")), {})


def controller_uid(metadata: Mapping[str, Any]) -> str:
    """The uid of an object's controller (its ownerReference with `controller: true`); "" when it has none."""
    return str(_controller(metadata).get("uid") or "")


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What status, smoke checks and scrapes read of a serving pod, and whose it is."""
    metadata, spec, status = (pod.get(key) or {} for key in ("metadata", "spec", "status"))
    controller = _controller(metadata)
    return {
        "metadata": {
            "name": metadata.get("name"),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
            "ownerReferences": [{key: controller.get(key) for key in ("kind", "name", "uid", "controller")}]
            if controller
            else [],
        },
        "spec": {"nodeName": spec.get("nodeName")},
        "status": {
            "phase": status.get("phase"),
            "podIP": status.get("podIP"),
            "conditions": list(status.get("conditions") or []),
            "containerStatuses": [
                {"state": {"waiting": waiting}}
                for container in status.get("containerStatuses") or []
                if (waiting := (container.get("state") or {}).get("waiting"))
            ],
        },
    }


def owned_pods(
    pods: Sequence[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None,
    owner_uid: str,
    replica_sets: Collection[str],
) -> list[Mapping[str, Any]]:
    """The pods of the GemmaDeployment's own Deployment: those whose controller is one of `replica_sets`, the uids
    of the ReplicaSets that Deployment controls. Labels can be copied onto a pod, and an ownerReference forged by
    name; a uid names one object only."""
    if deployment is None or controller_uid(deployment.get("metadata") or {}) != owner_uid:
        return []
    owned = []
    for pod in pods:
        controller = _controller(pod.get("metadata") or {})
        if controller.get("kind") == "ReplicaSet" and controller.get("uid") in replica_sets:
            owned.append(pod)
    return owned


def pod_state(pod: Mapping[str, Any]) -> PodState:
    metadata, spec, status = (pod.get(key) or {} for key in ("metadata", "spec", "status"))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {})
    unschedulable = scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
    return PodState(
        name=str(metadata.get("name", "")),
        node=str(spec.get("nodeName") or ""),
        ready=conditions.get("Ready", {}).get("status") == "True",
        ip=str(status.get("podIP") or ""),
        unschedulable_message=str(scheduled.get("message", "")) if unschedulable else None,
        terminating=bool(metadata.get("deletionTimestamp")) or status.get("phase") in TERMINAL_PHASES,
        config_error=_config_error(status),
    )


def _config_error(status: Mapping[str, Any]) -> str | None:
    """The kubelet's message for a container it cannot configure (CreateContainerConfigError), if any."""
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == CONFIG_ERROR:
            return str(waiting.get("message", ""))[:MAX_KUBELET_MESSAGE]
    return None


def with_lost_nodes(pods: Sequence[PodState], nodes: Sequence[NodeInfo]) -> list[PodState]:
    """Pods bound to a node the inventory no longer has are lost, until the pod GC replaces them."""
    if not nodes:
        return list(pods)  # no inventory known (yet): nothing to judge by
    known = {node.name for node in nodes}
    return [
        replace(pod, ready=False, node_lost=True) if pod.node and pod.node not in known and not pod.terminating else pod
        for pod in pods
    ]


def gpu_capacity(plan: Plan, nodes: Sequence[NodeInfo], gpus_in_use: Mapping[str, int], placed: int) -> int | None:
    """How many replicas of a GPU plan the nodes can hold: the `placed` ones plus what free GPUs fit.

    None off GPUs, where the scheduler's memory accounting is the limit and is not modelled here.
    """
    if plan.placement.target is not Target.GPU or not plan.placement.gpus_per_replica:
        return None
    return placed + free_replica_slots(plan.placement, nodes, gpus_in_use)


def free_gpus_hint(plan: Plan, nodes: Sequence[NodeInfo], gpus_in_use: Mapping[str, int]) -> str:
    """For GPU plans, how many nodes of the class have a replica's GPUs free.

    For example "0/2 h100 nodes have 4 free nvidia.com/gpu (most free: 2)".
    """
    if plan.placement.target is not Target.GPU:
        return ""
    placement = plan.placement
    candidates = open_nodes(placement, nodes)
    free = [free_gpus(node, gpus_in_use) for node in candidates]
    needed = placement.gpus_per_replica
    enough = sum(1 for f in free if f >= needed)
    summary = f"{enough}/{len(candidates)} {placement.accelerator_class} nodes have {needed} free {GPU_RESOURCE}"
    return summary + (f" (most free: {max(free)})" if free else "")
