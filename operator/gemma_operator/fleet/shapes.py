"""Replica shapes: one replica of each catalogued variant, planned with the default spec for a class of nodes, and
what its pod asks of a node, as the operator would render it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.api import GemmaDeployment, Precision, TaintEffect, Target, Toleration, TolerationOperator
from gemma_operator.catalog import AcceleratorClasses, Variant, runtimes, variants
from gemma_operator.fleet.claims import Resources, pod_requests
from gemma_operator.planning import NodeInfo, Plan, PlanResult, plan, sized_plan
from gemma_operator.planning.inventory import Taint, matches_selector
from gemma_operator.rendering import render

# The taint effects the scheduler filters nodes by; PreferNoSchedule only scores them
# (kubernetes pkg/scheduler/framework/plugins/helper/taint.go, DoNotScheduleTaintsFilterFunc).
FILTERING_EFFECTS: Final = (TaintEffect.NO_SCHEDULE.value, TaintEffect.NO_EXECUTE.value)
HOST_TARGETS: Final = (Target.CPU, Target.EDGE)


def tolerated(taint: Taint, tolerations: Sequence[Toleration]) -> bool:
    """Whether one of the tolerations matches the taint (k8s.io/api core/v1/toleration.go, ToleratesTaint)."""
    return any(
        (toleration.effect is None or toleration.effect.value == taint.effect)
        and (not toleration.key or toleration.key == taint.key)
        and (toleration.operator is TolerationOperator.EXISTS or toleration.value == taint.value)
        for toleration in tolerations
    )


@dataclass(frozen=True)
class ReplicaShape:
    """One replica of a variant at its default plan for a class of nodes (an accelerator class, cpu or edge)."""

    node_class: str
    variant: Variant
    precision: Precision
    result: PlanResult
    # What the replica's pod requests of a node; nothing when the planner refused before sizing it.
    requests: Resources
    # The architectures the runtime's image is built for.
    architectures: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return isinstance(self.result, Plan)

    def admits(self, node: NodeInfo) -> bool:
        """Whether the scheduler may put a replica on the node: not cordoned, selected by the plan, its taints
        tolerated, an architecture the image is built for. Free resources are not looked at here."""
        if not isinstance(self.result, Plan):
            return False
        placement = self.result.placement
        return (
            node.schedulable
            and matches_selector(node, placement.node_selector, placement.excluded_node_labels)
            and node.arch in self.architectures
            and all(
                tolerated(taint, placement.tolerations) for taint in node.taints if taint.effect in FILTERING_EFFECTS
            )
        )


def default_deployment(variant: Variant, placement: dict[str, Any]) -> GemmaDeployment:
    """The GemmaDeployment a shape is planned for: the variant with every default but its placement."""
    return GemmaDeployment.model_validate(
        {
            "metadata": {"name": "fleet"},
            "spec": {"model": {"family": variant.family.value, "variant": variant.name}, "placement": placement},
        }
    )


def _shape(
    node_class: str,
    variant: Variant,
    placement: dict[str, Any],
    classes: AcceleratorClasses,
    nodes: Sequence[NodeInfo] | None,
) -> ReplicaShape:
    deployment = default_deployment(variant, placement)
    result = plan(deployment, classes, nodes)
    precision, sized = deployment.spec.model.precision, sized_plan(result)
    if sized is None:
        return ReplicaShape(node_class, variant, precision, result, Resources(), ())
    pod = next(m for m in render(deployment, sized) if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    architectures = runtimes()[sized.runtime.name].images[sized.placement.target].architectures
    return ReplicaShape(node_class, variant, precision, result, pod_requests(pod), architectures)


def gpu_shapes(classes: AcceleratorClasses) -> tuple[ReplicaShape, ...]:
    """Every variant on every accelerator class. They depend on the classes alone (a GPU plan sizes against the
    class's memory, not a node's), so they can be planned once."""
    return tuple(
        _shape(name, variant, {"target": Target.GPU.value, "acceleratorClass": name}, classes, None)
        for name in classes.classes
        for variant in variants().values()
    )


def host_shapes(classes: AcceleratorClasses, nodes: Sequence[NodeInfo]) -> tuple[ReplicaShape, ...]:
    """Every variant that runs off GPUs on cpu and on edge nodes, planned against the nodes as the operator plans
    it (a replica may use the RAM of the largest node that can host it)."""
    return tuple(
        _shape(target.value, variant, {"target": target.value}, classes, nodes or None)
        for target in HOST_TARGETS
        for variant in variants().values()
        if not variant.gpu_only
    )
