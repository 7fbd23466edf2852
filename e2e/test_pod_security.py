"""Serving pods pass the real API server's Pod Security admission at "restricted" (issue #14).

Each runtime's pod template, as the operator renders it, is created as a Pod with dryRun=All in a
namespace that enforces the restricted profile: admission runs in full, nothing is stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from expected import fitting_plan
from gemma_operator.api import parse_deployment
from gemma_operator.rendering import render
from harness.plane import Plane

pytestmark = pytest.mark.e2e

SPECS: dict[str, dict[str, Any]] = {
    "vllm": {"model": {"variant": "31b"}},
    "tgi": {"model": {"family": "gemma-3", "variant": "27b"}},
    "llamacpp": {"model": {"variant": "e2b"}, "placement": {"target": "cpu"}, "serving": {"cache": {"size": "50Gi"}}},
}


def pod_from_template(namespace: str, spec: dict[str, Any]) -> Any:  # the client takes a dict for a V1Pod
    deployment = parse_deployment(
        {
            "apiVersion": "serving.gemma.dev/v1alpha1",
            "kind": "GemmaDeployment",
            "metadata": {"name": "chat", "namespace": namespace},
            "spec": spec,
        }
    )
    (workload,) = [obj for obj in render(deployment, fitting_plan(deployment)) if obj["kind"] == "Deployment"]
    template = workload["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chat-pod-security", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def enforce_restricted(plane: Plane, namespace: str) -> client.CoreV1Api:
    core = client.CoreV1Api(plane.api)
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    return core


def test_every_runtime_pod_is_admitted_under_restricted(plane: Plane, namespace: str) -> None:
    core = enforce_restricted(plane, namespace)
    for runtime, spec in SPECS.items():
        try:
            core.create_namespaced_pod(namespace, pod_from_template(namespace, spec), dry_run="All")
        except ApiException as error:
            pytest.fail(f"{runtime}: the API server refused the serving pod: {error.status} {error.body}")


def test_the_namespace_really_enforces_restricted(plane: Plane, namespace: str) -> None:
    # The control: the same pod as root is refused, so the test above proves something.
    core = enforce_restricted(plane, namespace)
    spec = {**SPECS["vllm"], "serving": {"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod_from_template(namespace, spec), dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
