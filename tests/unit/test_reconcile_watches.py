"""reconcile/handlers.py: which watches the API server filters by the operator's label, and which it must not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import kopf
from kopf._cogs.structs.references import Resource

from gemma_operator.reconcile import handlers
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER


def _selectors(resource: Resource) -> list[str]:
    settings = kopf.OperatorSettings()
    memo = SimpleNamespace(loops=SimpleNamespace(start=lambda: None))
    asyncio.run(handlers.configure(settings=settings, memo=memo))
    return settings.watching.label_selectors.collect(resource)


def test_children_and_replica_sets_are_selected_by_the_operators_label_on_the_api_server() -> None:
    for group, plural in (("apps", "deployments"), ("apps", "replicasets"), ("", "services")):
        assert _selectors(Resource(group, "v1", plural)) == [f"{MANAGED_BY_LABEL}={MANAGER}"]
    assert _selectors(Resource("policy", "v1", "poddisruptionbudgets")) == [f"{MANAGED_BY_LABEL}={MANAGER}"]


def test_pods_nodes_and_gemma_deployments_are_watched_whole() -> None:
    """The GPUs held per node count every pod; nodes and GemmaDeployments carry no label of ours."""
    for resource in (
        Resource("", "v1", "pods"),
        Resource("", "v1", "nodes"),
        Resource("serving.gemma.dev", "v1alpha1", "gemmadeployments"),
    ):
        assert _selectors(resource) == []
