"""Builders shared by the unit tests of the pure core."""

from __future__ import annotations

from typing import Any

from gemma_operator.api import GemmaDeployment, PlanReport, parse_deployment
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
