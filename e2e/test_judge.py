"""The chaos suite's judge (harness.judge) on the real API server: it says converged only when nothing differs."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.judge import FIELD_MANAGER, Judge
from harness.plane import Plane

pytestmark = pytest.mark.e2e

APPLY = "application/apply-patch+yaml"


@pytest.fixture
def judge(plane: Plane) -> Judge:
    return Judge(plane.api)


@pytest.fixture
def apps(plane: Plane) -> Any:
    return client.AppsV1Api(plane.api)


@pytest.fixture
def child(plane: Plane, namespace: str, apps: Any) -> dict[str, Any]:
    """A Deployment applied as the operator applies its children, owned by a ConfigMap (so that it is not
    garbage collected), with no operator around to put back what a test changes."""
    core: Any = client.CoreV1Api(plane.api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    labels = {"app.kubernetes.io/name": "judged", "app.kubernetes.io/managed-by": FIELD_MANAGER}
    manifest: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "judged",
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner.metadata.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "judged"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "judged"}},
                "spec": {"containers": [{"name": "server", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }
    apply(apps, manifest)
    return manifest


def apply(apps: Any, manifest: dict[str, Any]) -> None:
    metadata = manifest["metadata"]
    apps.patch_namespaced_deployment(
        metadata["name"], metadata["namespace"], manifest, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY
    )


def by_hand(apps: Any, manifest: dict[str, Any], patch: dict[str, Any]) -> None:
    """A strategic merge patch from someone other than the operator (kubectl edit, another controller)."""
    metadata = manifest["metadata"]
    apps.patch_namespaced_deployment(metadata["name"], metadata["namespace"], patch, field_manager="someone-else")


def test_an_applied_object_is_converged(judge: Judge, child: dict[str, Any]) -> None:
    verdict = judge.verdict(child)
    assert verdict, str(verdict)


@pytest.mark.parametrize(
    ("patch", "difference"),
    [
        ({"spec": {"replicas": 5}}, "spec.replicas: live 5, applied 1"),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": "example.com/other:1"}]}}}},
            "spec.template.spec.containers[0].image: live 'example.com/other:1'",
        ),
        ({"metadata": {"labels": {"app.kubernetes.io/managed-by": "someone-else"}}}, "metadata.labels"),
    ],
    ids=["replicas", "image", "label"],
)
def test_a_drifted_object_is_not_converged_until_applied_again(
    judge: Judge, apps: Any, child: dict[str, Any], patch: dict[str, Any], difference: str
) -> None:
    by_hand(apps, child, patch)
    verdict = judge.verdict(child)
    assert not verdict
    assert any(found.startswith(difference) for found in verdict.differences), str(verdict)

    apply(apps, child)
    assert judge.verdict(child), str(judge.verdict(child))


def test_fields_the_operator_does_not_set_are_not_drift(judge: Judge, apps: Any, child: dict[str, Any]) -> None:
    by_hand(apps, child, {"metadata": {"labels": {"team": "ml"}}, "spec": {"minReadySeconds": 5}})
    verdict = judge.verdict(child)
    assert verdict, str(verdict)


def test_a_missing_object_is_not_converged(judge: Judge, apps: Any, child: dict[str, Any]) -> None:
    apps.delete_namespaced_deployment(child["metadata"]["name"], child["metadata"]["namespace"])
    verdict = judge.verdict(child)
    assert verdict.differences == ("missing",)
