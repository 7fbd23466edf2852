"""Where replicas go: the accelerator class, node selectors and tolerations, CPUs, and whether a node can host one."""

from __future__ import annotations

from collections.abc import Sequence

from gemma_operator.api import (
    GemmaDeployment,
    PlacementPlan,
    Reason,
    TaintEffect,
    Target,
    Toleration,
    TolerationOperator,
)
from gemma_operator.catalog import AcceleratorClass, AcceleratorClasses
from gemma_operator.planning.inventory import (
    ARCH_LABEL,
    EDGE_ROLE_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    NodeInfo,
    matches_selector,
)
from gemma_operator.planning.result import Refused


def gib(value: float) -> str:
    return f"{value:.1f} GiB"


# Host CPU a replica requests: per GPU on GPU nodes, in all on CPU and edge nodes.
CPUS_PER_REPLICA = {Target.GPU: 4, Target.CPU: 4, Target.EDGE: 2}


def cpus_per_replica(target: Target, devices: int) -> int:
    return CPUS_PER_REPLICA[target] * (devices if target is Target.GPU else 1)


def _gpu_placement(accelerator: AcceleratorClass) -> tuple[dict[str, str], list[Toleration]]:
    return (
        {GPU_PRODUCT_LABEL: accelerator.product},
        [Toleration(key=GPU_RESOURCE, operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)],
    )


def placement_for(
    deployment: GemmaDeployment,
    target: Target,
    accelerator: AcceleratorClass | None,
    devices: int,
    architectures: Sequence[str],
) -> PlacementPlan:
    spec = deployment.spec.placement
    selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    excluded: list[str] = []
    if target is Target.GPU and accelerator is not None:
        selector, tolerations = _gpu_placement(accelerator)
    elif target is Target.EDGE:
        selector = {EDGE_ROLE_LABEL: ""}
        tolerations = [
            Toleration(key=EDGE_ROLE_LABEL, operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)
        ]
    else:
        # CPU nodes are the ones that are neither GPU nodes nor edge nodes.
        excluded = [GPU_PRODUCT_LABEL, EDGE_ROLE_LABEL]
    if len(architectures) == 1:
        selector[ARCH_LABEL] = architectures[0]
    return PlacementPlan(
        target=target,
        accelerator_class=accelerator.name if accelerator else "",
        gpus_per_replica=devices if target is Target.GPU else 0,
        cpus_per_replica=cpus_per_replica(target, devices),
        node_selector={**selector, **spec.node_selector},
        excluded_node_labels=excluded,
        tolerations=tolerations + list(spec.tolerations),
    )


def unplaceable(
    placement: PlacementPlan, required_gib: float, nodes: Sequence[NodeInfo], architectures: Sequence[str]
) -> str | None:
    """Why no node of the inventory can host a replica, or None when one can."""
    candidates = [
        node
        for node in nodes
        if node.schedulable
        and matches_selector(node, placement.node_selector, placement.excluded_node_labels)
        and node.arch in architectures
    ]
    what = placement.accelerator_class or placement.target.value
    if placement.target is Target.GPU:
        needed = placement.gpus_per_replica
        if any(node.gpus >= needed for node in candidates):
            return None
        most = max((node.gpus for node in candidates), default=0)
        return (
            f"no node can host a replica: 0/{len(candidates)} {what} nodes have {needed} allocatable {GPU_RESOURCE}"
            + (f" (at most {most})" if candidates else "")
        )
    if any(node.memory_gib >= required_gib for node in candidates):
        return None
    largest = max((node.memory_gib for node in candidates), default=0.0)
    return (
        f"no node can host a replica: 0/{len(candidates)} {what} nodes "
        f"({'/'.join(architectures)}) have {gib(required_gib)} of allocatable memory"
        + (f" (largest: {gib(largest)})" if candidates else "")
    )


def host_memory_gib(
    deployment: GemmaDeployment,
    target: Target,
    classes: AcceleratorClasses,
    nodes: Sequence[NodeInfo] | None,
    architectures: Sequence[str],
) -> float:
    """RAM a CPU or edge replica can plan for: the largest matching node's, else the configured nominal size."""
    if nodes:
        placement = placement_for(deployment, target, None, 1, architectures)
        sizes = [
            node.memory_gib
            for node in nodes
            if matches_selector(node, placement.node_selector, placement.excluded_node_labels)
            and node.arch in architectures
        ]
        if sizes:
            return max(sizes)
    return classes.node_memory_mi_b.get(target, 0) / 1024


def accelerator_for(
    deployment: GemmaDeployment, classes: AcceleratorClasses, target: Target
) -> AcceleratorClass | Refused | None:
    placement = deployment.spec.placement
    if target is not Target.GPU:
        if placement.accelerator_class:
            return Refused.because(
                Reason.UNSATISFIABLE,
                f"placement.acceleratorClass {placement.accelerator_class} applies to GPU targets only, "
                f"not {target.value}",
            )
        if placement.gpus_per_replica:
            return Refused.because(
                Reason.UNSATISFIABLE,
                f"placement.gpusPerReplica {placement.gpus_per_replica} applies to GPU targets only, "
                f"not {target.value}",
            )
        return None
    name = placement.accelerator_class or classes.default_class
    found = classes.classes.get(name)
    if found is None:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"placement.acceleratorClass {name} is not a configured accelerator class "
            f"(known: {', '.join(sorted(classes.classes))})",
        )
    return found
