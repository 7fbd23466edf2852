"""Builders shared by the unit tests of the pure core."""

from __future__ import annotations

from typing import Any

from gemma_operator.api import Family, GemmaDeployment, PlanReport, Target, parse_deployment
from gemma_operator.catalog import AcceleratorClasses, default_accelerator_classes, runtimes
from gemma_operator.planning import NodeInfo, Plan, plan, plan_report


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
    """The plan as the CLI's JSON and status.plan report it."""
    gd = deployment(**spec)
    return plan_report(gd, plan(gd, classes or default_accelerator_classes(), nodes))


def fitted(gd: GemmaDeployment) -> Plan:
    """The plan of a GemmaDeployment that must fit with the default accelerator classes."""
    result = plan(gd, default_accelerator_classes())
    assert isinstance(result, Plan), result
    return result


# A variant each kind of node holds at the default limits at MATRIX_PRECISION: the large ones on GPUs, small ones
# elsewhere. fp8, because every runtime quantises to it itself (vLLM 0.33 has no bitsandbytes for int4).
MATRIX_PRECISION = "fp8"
MATRIX_VARIANTS = {
    (Family.GEMMA_4, Target.GPU): "31b",
    (Family.GEMMA_4, Target.CPU): "e2b",
    (Family.GEMMA_4, Target.EDGE): "e4b",
    (Family.GEMMA_3, Target.GPU): "27b",
    (Family.GEMMA_3, Target.CPU): "4b",
    (Family.GEMMA_3, Target.EDGE): "1b",
}


# Every (runtime, family, hardware) the catalog says can be served, whether auto picks it or not.
SERVED = [
    (facts.name, family, entry.hardware)
    for facts in runtimes().values()
    for family, entries in facts.serves.items()
    for entry in entries
]
SERVED_IDS = [f"{runtime.value}-{family.value}-{target.value}" for runtime, family, target in SERVED]
