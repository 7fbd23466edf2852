"""The node inventory the planner checks placements against, read from Node objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gemma_operator.api import PlacementPlan
from gemma_operator.planning.quantity import parse_millis, parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
EDGE_ROLE_LABEL = "node-role.kubernetes.io/edge"
ARCH_LABEL = "kubernetes.io/arch"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeInfo:
    """What placement needs to know of one node."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()
    memory_bytes: int = 0
    gpus: int = 0
    schedulable: bool = True
    cpu_millis: int = 0

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / (1 << 30)

    @property
    def arch(self) -> str:
        return self.labels.get(ARCH_LABEL, "amd64")

    @property
    def is_edge(self) -> bool:
        return EDGE_ROLE_LABEL in self.labels

    @property
    def gpu_product(self) -> str | None:
        return self.labels.get(GPU_PRODUCT_LABEL)


class InventoryError(ValueError):
    """A node document the inventory cannot read; the message names the field."""


def node_from_object(node: Mapping[str, Any]) -> NodeInfo:
    """A NodeInfo from a v1 Node as the API returns it (allocatable, not capacity, is what pods get)."""
    metadata = node.get("metadata") or {}
    name = str(metadata.get("name", ""))
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        memory = int(parse_quantity(allocatable.get("memory", 0)))
        gpus = int(parse_quantity(allocatable.get(GPU_RESOURCE, 0)))
        cpu_millis = parse_millis(allocatable.get("cpu", 0))
    except ValueError as error:
        raise InventoryError(f"node {name}: status.allocatable: {error}") from None
    spec = node.get("spec") or {}
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("value", "")), str(t.get("effect", "")))
        for t in spec.get("taints") or ()
    )
    return NodeInfo(
        name=name,
        labels=dict(metadata.get("labels") or {}),
        taints=taints,
        memory_bytes=memory,
        gpus=gpus,
        schedulable=not spec.get("unschedulable", False),
        cpu_millis=cpu_millis,
    )


def inventory_from_node_list(document: Mapping[str, Any]) -> tuple[NodeInfo, ...]:
    """Nodes from a NodeList (as `kubectl get nodes -o yaml` prints it) or a single Node."""
    if document.get("kind") == "Node":
        return (node_from_object(document),)
    items = document.get("items")
    if not isinstance(items, list):
        raise InventoryError("items: a NodeList needs a list of nodes")
    return tuple(node_from_object(item) for item in items)


def matches_selector(node: NodeInfo, selector: Mapping[str, str], excluded: Iterable[str] = ()) -> bool:
    return all(node.labels.get(k) == v for k, v in selector.items()) and not any(k in node.labels for k in excluded)


def open_nodes(placement: PlacementPlan, nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
    """The nodes a new replica may go to: selected by the plan and not cordoned."""
    return [
        node
        for node in nodes
        if node.schedulable and matches_selector(node, placement.node_selector, placement.excluded_node_labels)
    ]


def free_gpus(node: NodeInfo, gpus_in_use: Mapping[str, int]) -> int:
    """The node's allocatable GPUs that no pod bound to it holds."""
    return max(0, node.gpus - gpus_in_use.get(node.name, 0))


def free_replica_slots(placement: PlacementPlan, nodes: Iterable[NodeInfo], gpus_in_use: Mapping[str, int]) -> int:
    """How many more replicas of a GPU placement the free GPUs hold, node by node: a replica's GPUs are on one
    node, so free GPUs of two nodes never add up to one."""
    needed = placement.gpus_per_replica
    if not needed:
        return 0
    return sum(free_gpus(node, gpus_in_use) // needed for node in open_nodes(placement, nodes))
