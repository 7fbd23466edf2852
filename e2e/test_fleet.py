"""`gemma-operator fleet` and the operator's fleet gauges against the real local plane: what they say is the node
inventory less what the pods the real scheduler bound there request, and a full class has no headroom."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity
from prometheus_client.parser import text_string_to_metric_families

from gemma import Gemma, manifest
from gemma_operator.catalog import default_accelerator_classes
from harness.config import ROOT
from harness.plane import Plane
from harness.waiting import wait_for
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"
EDGE = "node-role.kubernetes.io/edge"
MANAGED_BY = "app.kubernetes.io/managed-by"
# The accelerator class of each GPU product label, as the operator is configured (its built-in classes).
PRODUCTS = {found.product: name for name, found in default_accelerator_classes().classes.items()}


@pytest.fixture
def gemma(plane: Plane, simulated_llamacpp: str) -> Gemma:
    return Gemma(plane.api, simulated_llamacpp)


def fleet(plane: Plane) -> dict[str, Any]:
    """`gemma-operator fleet -o json`, run as a user runs it, against the plane's kubeconfig."""
    result = subprocess.run(
        [sys.executable, "-m", "gemma_operator.cli", "fleet", "-o", "json"],
        env=plane.env, capture_output=True, text=True, check=False, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@dataclass
class Held:
    """What the API server says a class of nodes has and what its pods request, counted here by hand."""

    nodes: int = 0
    gpus: int = 0
    serving_gpus: int = 0
    other_gpus: int = 0
    free_gpus: dict[str, int] = field(default_factory=dict)
    free_cpus: float = 0.0
    free_memory: int = 0


def quantity(amount: str) -> float:
    """A resource quantity as the Kubernetes client reads it (not as the operator does)."""
    return float(parse_quantity(amount))  # type: ignore[no-untyped-call]


def requested(pods: list[Any], resource: str) -> float:
    """What the pods' containers request of one resource (the plane's pods have no init containers or overhead)."""
    return sum(
        quantity(amount)
        for pod in pods
        for container in pod.spec.containers
        if (amount := ((container.resources and container.resources.requests) or {}).get(resource)) is not None
    )


def inventory(plane: Plane) -> dict[str, Held]:
    """Per class, the nodes' allocatable less what the bound, unfinished pods request."""
    core: Any = client.CoreV1Api(plane.api)
    pods = [
        pod
        for pod in core.list_pod_for_all_namespaces().items
        if pod.spec.node_name and pod.status.phase not in ("Succeeded", "Failed")
    ]
    classes: dict[str, Held] = defaultdict(Held)
    for node in core.list_node().items:
        labels = node.metadata.labels or {}
        held = classes["edge" if EDGE in labels else PRODUCTS.get(labels.get(PRODUCT, ""), "cpu")]
        allocatable = {key: quantity(value) for key, value in node.status.allocatable.items()}
        on_node = [pod for pod in pods if pod.spec.node_name == node.metadata.name]
        serving = [pod for pod in on_node if (pod.metadata.labels or {}).get(MANAGED_BY) == "gemma-operator"]
        gpus = int(allocatable.get(GPU, 0))
        held.nodes += 1
        held.gpus += gpus
        held.serving_gpus += int(requested(serving, GPU))
        held.other_gpus += int(requested(on_node, GPU) - requested(serving, GPU))
        held.free_gpus[node.metadata.name] = max(0, gpus - int(requested(on_node, GPU)))
        held.free_cpus += max(0.0, allocatable["cpu"] - requested(on_node, "cpu"))
        held.free_memory += max(0, int(allocatable["memory"] - requested(on_node, "memory")))
    return dict(classes)


def settled_fleet(plane: Plane) -> tuple[dict[str, Any], dict[str, Held]]:
    """The command's report and the hand count, taken while nothing in the cluster changed between them."""

    def steady() -> tuple[dict[str, Any], dict[str, Held]] | None:
        before = inventory(plane)
        report = fleet(plane)
        return (report, before) if inventory(plane) == before else None

    return wait_for(steady, timeout=60, interval=1, message="a fleet report with no pod changing under it")


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {found["name"]: found for found in report["classes"]}


def room(found: dict[str, Any], family: str, variant: str) -> dict[str, Any]:
    return next(h for h in found["headroom"] if (h["family"], h["variant"]) == (family, variant))


def gauges(operator: OperatorProcess) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The operator's fleet gauges, by name, then by their labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(operator.metrics()):
        if family.name.startswith("gemma_operator_fleet_"):
            for sample in family.samples:
                found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return dict(found)


def free_gpus_gauge(operator: OperatorProcess) -> dict[str, float]:
    free = gauges(operator).get("gemma_operator_fleet_free_gpus", {})
    return {dict(labels)["class"]: value for labels, value in free.items()}


@pytest.fixture
def cleanup(gemma: Gemma) -> Iterator[list[str]]:
    """GemmaDeployments a test creates, deleted after it with their pods gone: the GPUs go back at once."""
    created: list[str] = []
    yield created
    for name in created:
        gemma.delete(name)
    wait_for(lambda: not any(gemma.pods(name) for name in created), timeout=90, message="the test's pods gone")


def test_fleet_is_the_node_inventory_less_what_pods_hold(
    plane: Plane, gemma: Gemma, operator: OperatorProcess, cleanup: list[str]
) -> None:
    for name, spec in (("big", {"model": {"variant": "31b"}}), ("small", {"model": {"variant": "e2b"}})):
        gemma.create(manifest(name, **spec))
        cleanup.append(name)
    for name in cleanup:
        gemma.wait(name, "Ready", timeout=120)
    (big_pod,) = gemma.pods("big")
    big_gpus = int(big_pod.spec.containers[0].resources.requests[GPU])

    report, counted = settled_fleet(plane)
    classes = by_name(report)
    for name, held in counted.items():
        found = classes[name]
        assert found["nodes"] == held.nodes, name
        assert found["gpusAllocatable"] == held.gpus, name
        assert found["gpusHeldByGemmaDeployments"] == held.serving_gpus, name
        assert found["gpusHeldByOthers"] == held.other_gpus, name
        assert found["gpusFree"] == sum(held.free_gpus.values()), name
        assert found["cpusFree"] == pytest.approx(held.free_cpus), name
        assert found["memoryFreeBytes"] == held.free_memory, name
    assert counted["h100"].serving_gpus >= big_gpus > 0

    # 31B takes two H100s a replica: the headroom is what the free GPUs of each node hold, never pooled.
    h100 = classes["h100"]
    thirty_one = room(h100, "gemma-4", "31b")
    assert thirty_one["gpusPerReplica"] == big_gpus
    per_node = sum(free // big_gpus for free in counted["h100"].free_gpus.values())
    assert thirty_one["replicas"] == per_node

    (mine,) = (n for n in report["namespaces"] if n["namespace"] == gemma.namespace)
    assert (mine["replicas"], mine["pendingReplicas"], mine["gpusHeldByGemmaDeployments"]) == (2, 0, big_gpus)

    # The operator's gauges say the same, once its debounced survey has seen the pods.
    free = {name: float(found["gpusFree"]) for name, found in classes.items()}
    wait_for(lambda: free_gpus_gauge(operator) == free, timeout=30, message=f"the operator's free GPUs at {free}")


def test_a_full_class_has_no_headroom_in_the_report_and_in_the_gauges(
    plane: Plane, gemma: Gemma, operator: OperatorProcess, cleanup: list[str]
) -> None:
    free = by_name(fleet(plane))["l4"]["gpusFree"]
    assert free > 0, "the plane's L4 node is held by pods another test left behind"
    one_gpu = {
        "model": {"family": "gemma-3", "variant": "4b"},
        "placement": {"target": "gpu", "acceleratorClass": "l4"},
    }
    gemma.create(manifest("fill", replicas=free, **one_gpu))
    cleanup.append("fill")
    gemma.wait("fill", "Ready", timeout=180)

    report, counted = settled_fleet(plane)
    l4 = by_name(report)["l4"]
    assert l4["gpusFree"] == sum(counted["l4"].free_gpus.values()) == 0
    assert l4["gpusHeldByGemmaDeployments"] == counted["l4"].serving_gpus >= free
    assert l4["headroom"]
    assert all(h["replicas"] == 0 and h["message"] for h in l4["headroom"]), l4["headroom"]
    assert room(by_name(report)["h100"], "gemma-3", "4b")["replicas"] > 0  # the same variant still fits elsewhere

    def full() -> bool:
        found = gauges(operator)
        headroom = {
            (dict(labels)["family"], dict(labels)["variant"]): value
            for labels, value in found.get("gemma_operator_fleet_headroom_replicas", {}).items()
            if dict(labels)["class"] == "l4"
        }
        return (
            free_gpus_gauge(operator).get("l4") == 0
            and len(headroom) == len(l4["headroom"])
            and not any(headroom.values())
        )

    wait_for(full, timeout=30, message="the operator's gauges: no free L4 GPU and no L4 headroom")
