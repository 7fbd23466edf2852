"""Builders shared by the unit tests of the pure core."""

from __future__ import annotations

from typing import Any

from gemma_operator.api import Family, GemmaDeployment, PlanReport, Target, parse_deployment
from gemma_operator.catalog import AcceleratorClasses, default_accelerator_classes
from gemma_operator.planning import NodeInfo, plan


def deployment(name: str = "chat", namespace: str = "ml", **spec: Any) -> GemmaDeployment:
    """A GemmaDeployment from spec sections given as keyword arguments, e.g. model={"variant": "31b"}."""
    spec.setdefault("model", {"variant": "31b"})
    return parse_deployment(
        {
            "apiVersion": "serving.gemma.dev/v1alpha1",
            "kind": "GemmaDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def plan_for(nodes: list[NodeInfo] | None = None, classes: AcceleratorClasses | None = None, **spec: Any) -> PlanReport:
    return plan(deployment(**spec), classes or default_accelerator_classes(), nodes)


# A variant each kind of node holds at the default limits (in int4): the large ones on GPUs, small ones elsewhere.
MATRIX_VARIANTS = {
    (Family.GEMMA_4, Target.GPU): "31b",
    (Family.GEMMA_4, Target.CPU): "e2b",
    (Family.GEMMA_4, Target.EDGE): "e4b",
    (Family.GEMMA_3, Target.GPU): "27b",
    (Family.GEMMA_3, Target.CPU): "4b",
    (Family.GEMMA_3, Target.EDGE): "1b",
}
