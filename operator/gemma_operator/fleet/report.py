"""The fleet report: per class of nodes what is allocatable, held and free, and how many more replicas of each
variant fit right now; per namespace what GemmaDeployments hold. `gemma-operator fleet -o json` prints it and the
operator's fleet gauges export it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import Field

from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.api.base import ApiModel
from gemma_operator.catalog import AcceleratorClasses
from gemma_operator.fleet.claims import PodClaim, Resources, total
from gemma_operator.fleet.shapes import HOST_TARGETS, ReplicaShape, gpu_shapes, host_shapes
from gemma_operator.planning import NodeInfo, Refused, sized_plan
from gemma_operator.planning.inventory import GPU_RESOURCE
from gemma_operator.planning.placement import gib


class VariantHeadroom(ApiModel):
    """One variant at its default plan for the class: what a replica takes, and how many more fit now."""

    family: Family = Field(description="Model family.")
    variant: str = Field(description="Variant, as spec.model.variant names it.")
    precision: Precision = Field(description="Weights' precision (the default, as spec.model.precision has it).")
    runtime: Runtime | None = Field(
        default=None, description="Runtime the plan chose; absent when the planner refused before choosing one."
    )
    fits: bool = Field(description="Whether the planner admits a replica with the default spec on this class.")
    gpus_per_replica: int = Field(description="GPUs a replica's pod requests (0 off GPUs).")
    cpus_per_replica: float = Field(description="CPU cores a replica's pod requests.")
    memory_per_replica_bytes: int = Field(description="Node memory a replica's pod requests.")
    replicas: int = Field(
        description="More replicas that fit right now: per schedulable node the plan admits, how many pods of "
        "this request its free GPUs, CPU and memory hold (a replica never spans nodes), summed."
    )
    refusal: str = Field(
        default="",
        description="The planner's reason for refusing the replica, as the Stalled condition would give it "
        "(DoesNotFit, say); empty when it admits one.",
    )
    message: str = Field(
        default="", description="Why none fit: the planner's refusal, or what the class's nodes lack; empty else."
    )


class ClassReport(ApiModel):
    """The nodes of one accelerator class, or the CPU or edge nodes."""

    name: str = Field(
        description="Accelerator class, `cpu` or `edge`; for GPU nodes whose product no class names, the product."
    )
    target: Target = Field(description="Kind of node: gpu, cpu or edge.")
    configured: bool = Field(
        description="False for GPU nodes whose nvidia.com/gpu.product no configured accelerator class names."
    )
    nodes: int = Field(description="Nodes of the class.")
    schedulable_nodes: int = Field(description="Of them, those not cordoned; free amounts count these only.")
    gpus_allocatable: int = Field(description=f"Allocatable {GPU_RESOURCE} of all the class's nodes.")
    gpus_held_by_gemma_deployments: int = Field(description="GPUs requested by GemmaDeployments' serving pods.")
    gpus_held_by_others: int = Field(description="GPUs requested by every other pod bound to the class's nodes.")
    gpus_free: int = Field(description="Allocatable less held, on schedulable nodes.")
    cpus_allocatable: float = Field(description="Allocatable CPU cores.")
    cpus_free: float = Field(description="Allocatable less requested CPU cores, on schedulable nodes.")
    memory_allocatable_bytes: int = Field(description="Allocatable memory.")
    memory_free_bytes: int = Field(description="Allocatable less requested memory, on schedulable nodes.")
    headroom: list[VariantHeadroom] = Field(description="Per variant: how many more replicas fit now.")


class NamespaceReport(ApiModel):
    """What one namespace holds."""

    namespace: str = Field(description="Namespace.")
    replicas: int = Field(description="GemmaDeployments' serving pods bound to a node.")
    pending_replicas: int = Field(description="GemmaDeployments' serving pods waiting for a node.")
    gpus_held_by_gemma_deployments: int = Field(description="GPUs their serving pods request.")
    gpus_held_by_others: int = Field(description="GPUs other pods of the namespace request on their nodes.")


class FleetReport(ApiModel):
    """The cluster's GPU, CPU and memory, held and free, and the room left for each variant."""

    classes: list[ClassReport] = Field(
        description="Configured accelerator classes in configuration order, GPU products no class names, then "
        "cpu and edge."
    )
    namespaces: list[NamespaceReport] = Field(
        description="Namespaces with GemmaDeployments' pods or pods that hold GPUs, by name."
    )


def _node_class(node: NodeInfo, classes: AcceleratorClasses) -> tuple[str, Target]:
    """The class a node counts under, by the labels placement selects on (planning/placement.py)."""
    if node.is_edge:
        return Target.EDGE.value, Target.EDGE
    product = node.gpu_product
    if product is None:
        return Target.CPU.value, Target.CPU
    return next((name for name, found in classes.classes.items() if found.product == product), product), Target.GPU


def _cores(millis: int) -> float:
    return millis / 1000


def _headroom(shape: ReplicaShape, nodes: Sequence[NodeInfo], free: dict[str, Resources]) -> VariantHeadroom:
    requests, result, sized = shape.requests, shape.result, sized_plan(shape.result)
    admitting = [node for node in nodes if shape.admits(node)]
    replicas = sum(free[node.name].count_of(requests) for node in admitting)
    message = result.message if isinstance(result, Refused) else ""
    if not message and not replicas:
        needs = [f"{requests.gpus} {GPU_RESOURCE}"] if requests.gpus else []
        needs += [f"{_cores(requests.cpu_millis):g} CPUs", f"{gib(requests.memory_bytes / (1 << 30))} of memory"]
        message = (
            f"no {shape.node_class} node has {', '.join(needs)} free ({len(admitting)} could host a replica)"
            if admitting
            else f"no schedulable {shape.node_class} node can host a replica"
        )
    return VariantHeadroom(
        family=shape.variant.family,
        variant=shape.variant.name,
        precision=shape.precision,
        runtime=sized.runtime.name if sized else None,
        fits=shape.fits,
        gpus_per_replica=requests.gpus,
        cpus_per_replica=_cores(requests.cpu_millis),
        memory_per_replica_bytes=requests.memory_bytes,
        replicas=replicas,
        refusal=result.reason.value if isinstance(result, Refused) else "",
        message=message,
    )


def _class_report(
    name: str,
    target: Target,
    configured: bool,
    nodes: Sequence[NodeInfo],
    claims: dict[str, list[PodClaim]],
    shapes: Iterable[ReplicaShape],
) -> ClassReport:
    held = {node.name: total(claim.requests for claim in claims.get(node.name, [])) for node in nodes}
    free = {
        node.name: Resources(node.cpu_millis, node.memory_bytes, node.gpus) - held[node.name]
        if node.schedulable
        else Resources()
        for node in nodes
    }
    serving = sum(claim.requests.gpus for node in nodes for claim in claims.get(node.name, []) if claim.serving)
    open_free = total(free.values())
    return ClassReport(
        name=name,
        target=target,
        configured=configured,
        nodes=len(nodes),
        schedulable_nodes=sum(1 for node in nodes if node.schedulable),
        gpus_allocatable=sum(node.gpus for node in nodes),
        gpus_held_by_gemma_deployments=serving,
        gpus_held_by_others=sum(resources.gpus for resources in held.values()) - serving,
        gpus_free=open_free.gpus,
        cpus_allocatable=_cores(sum(node.cpu_millis for node in nodes)),
        cpus_free=_cores(open_free.cpu_millis),
        memory_allocatable_bytes=sum(node.memory_bytes for node in nodes),
        memory_free_bytes=open_free.memory_bytes,
        headroom=[_headroom(shape, nodes, free) for shape in shapes if shape.node_class == name],
    )


def _namespaces(claims: Iterable[PodClaim]) -> list[NamespaceReport]:
    replicas: dict[str, int] = defaultdict(int)
    pending: dict[str, int] = defaultdict(int)
    serving_gpus: dict[str, int] = defaultdict(int)
    other_gpus: dict[str, int] = defaultdict(int)
    for claim in claims:
        if claim.serving:
            (replicas if claim.node else pending)[claim.namespace] += 1
            serving_gpus[claim.namespace] += claim.requests.gpus if claim.node else 0
        elif claim.node and claim.requests.gpus:
            other_gpus[claim.namespace] += claim.requests.gpus
    return [
        NamespaceReport(
            namespace=namespace,
            replicas=replicas[namespace],
            pending_replicas=pending[namespace],
            gpus_held_by_gemma_deployments=serving_gpus[namespace],
            gpus_held_by_others=other_gpus[namespace],
        )
        for namespace in sorted({*replicas, *pending, *other_gpus})
    ]


def fleet_report(
    classes: AcceleratorClasses, nodes: Sequence[NodeInfo], claims: Sequence[PodClaim], shapes: Sequence[ReplicaShape]
) -> FleetReport:
    """The report for these nodes and the pods' claims on them, with headroom for each of `shapes`."""
    configured = [(name, Target.GPU) for name in classes.classes]
    hosts = [(target.value, target) for target in HOST_TARGETS]
    grouped: dict[tuple[str, Target], list[NodeInfo]] = {key: [] for key in [*configured, *hosts]}
    for node in nodes:
        grouped.setdefault(_node_class(node, classes), []).append(node)
    unconfigured = sorted(grouped.keys() - {*configured, *hosts})
    by_node: dict[str, list[PodClaim]] = defaultdict(list)
    for claim in claims:
        if claim.node:
            by_node[claim.node].append(claim)
    return FleetReport(
        classes=[
            _class_report(name, target, (name, target) not in unconfigured, grouped[(name, target)], by_node, shapes)
            for name, target in [*configured, *unconfigured, *hosts]
        ],
        namespaces=_namespaces(claims),
    )


class Surveyor:
    """Reports on a cluster again and again, planning only when the plans can change: the GPU shapes depend on the
    classes alone, the CPU and edge ones on the nodes too, never on the pods."""

    def __init__(self, classes: AcceleratorClasses) -> None:
        self.classes = classes
        self._gpu_shapes: tuple[ReplicaShape, ...] | None = None
        self._host_shapes: tuple[list[NodeInfo], tuple[ReplicaShape, ...]] | None = None

    def shapes(self, nodes: Sequence[NodeInfo]) -> tuple[ReplicaShape, ...]:
        if self._gpu_shapes is None:
            self._gpu_shapes = gpu_shapes(self.classes)
        ordered = sorted(nodes, key=lambda node: node.name)
        if self._host_shapes is None or self._host_shapes[0] != ordered:
            self._host_shapes = ordered, host_shapes(self.classes, ordered)
        return self._gpu_shapes + self._host_shapes[1]

    def survey(self, nodes: Sequence[NodeInfo], claims: Sequence[PodClaim]) -> FleetReport:
        return fleet_report(self.classes, nodes, claims, self.shapes(nodes))
