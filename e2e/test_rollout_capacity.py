"""The GPU-aware rollout on the local plane: with every H100 GPU held, a two-replica GemmaDeployment's new template
replaces its pods one at a time and says why; a one-replica one waits with WaitingForCapacity, its template held,
until spec.serving.rollout.allowDowntime lets it replace its only pod."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gemma import Gemma, manifest
from harness.plane import Plane
from harness.waiting import wait_for
from operator_process import OperatorProcess
from test_fleet import free_gpus_gauge

pytestmark = pytest.mark.e2e

GPU = "nvidia.com/gpu"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
# One H100 a replica at the defaults; no smoke check, so that Ready follows the pods alone.
ONE_GPU = {"model": {"variant": "26b-a4b"}, "serving": {"verify": False}}
ROLLOUT_SECONDS = 300


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Iterator[Gemma]:
    found = Gemma(plane.api, namespace)
    yield found
    # Give the GPUs back before the next test: namespace deletion alone is slow to free them.
    for item in found.custom.list_namespaced_custom_object(
        "serving.gemma.dev", "v1alpha1", namespace, "gemmadeployments"
    )["items"]:
        found.delete(item["metadata"]["name"])
    found.core.delete_collection_namespaced_pod(namespace, label_selector="role=gpu-filler", grace_period_seconds=0)
    wait_for(lambda: not found.core.list_namespaced_pod(namespace).items, timeout=120, message="the test's pods gone")


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def free_h100_gpus(core: Any) -> dict[str, int]:
    """Per H100 node, its allocatable GPUs less what the bound, unfinished pods request."""
    pods = [
        pod
        for pod in core.list_pod_for_all_namespaces().items
        if pod.spec.node_name and pod.status.phase not in ("Succeeded", "Failed")
    ]
    free = {}
    for node in core.list_node(label_selector=",".join(f"{k}={v}" for k, v in H100.items())).items:
        held = sum(
            int(((container.resources and container.resources.requests) or {}).get(GPU, 0))
            for pod in pods
            if pod.spec.node_name == node.metadata.name
            for container in pod.spec.containers
        )
        free[node.metadata.name] = int(node.status.allocatable.get(GPU, 0)) - held
    return free


def fill_h100_pool(gemma: Gemma, operator: OperatorProcess) -> None:
    """Pods holding every free H100 GPU, one per node; back once the operator's inventory has none free."""
    for node, free in free_h100_gpus(gemma.core).items():
        if free <= 0:
            continue
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"filler-{node}", "labels": {"role": "gpu-filler"}},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {GPU: str(free)}, "limits": {GPU: str(free)}},
                    }
                ],
            },
        }
        gemma.core.create_namespaced_pod(gemma.namespace, body)
    wait_for(
        lambda: all(
            pod.status.phase == "Running"
            for pod in gemma.core.list_namespaced_pod(gemma.namespace, label_selector="role=gpu-filler").items
        ),
        timeout=60,
        message="the filler pods running",
    )
    assert not any(free_h100_gpus(gemma.core).values())
    # The operator's own count (its debounced fleet survey reads the inventory the reconciles read).
    wait_for(lambda: free_gpus_gauge(operator).get("h100") == 0, timeout=30, message="no free H100 GPU in the gauges")


def serving(gemma: Gemma, name: str) -> list[Any]:
    return [pod for pod in gemma.pods(name) if pod.metadata.deletion_timestamp is None]


def strategy(gemma: Gemma, name: str) -> dict[str, Any]:
    found = gemma.deployment(name).spec.strategy
    rolling = found.rolling_update
    return {
        "type": found.type,
        **({"maxSurge": rolling.max_surge, "maxUnavailable": rolling.max_unavailable} if rolling else {}),
    }


def test_a_full_pool_replaces_two_replicas_one_at_a_time_and_says_why(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("pair", replicas=2, **ONE_GPU))
    gemma.wait("pair", "Ready", timeout=120)
    assert strategy(gemma, "pair") == {"type": "RollingUpdate", "maxSurge": 1, "maxUnavailable": 0}
    before = {pod.metadata.uid for pod in gemma.pods("pair")}
    fill_h100_pool(gemma, operator)

    changed = gemma.patch_spec(
        "pair", {**ONE_GPU, "serving": {"verify": False, "env": [{"name": "NEW", "value": "1"}]}}
    )
    generation = changed["metadata"]["generation"]
    said: set[str] = set()
    deadline = time.monotonic() + ROLLOUT_SECONDS
    while True:
        assert time.monotonic() < deadline, f"not rolled out within {ROLLOUT_SECONDS} s; said: {said}"
        pods = serving(gemma, "pair")
        assert len(pods) <= 2, [pod.metadata.name for pod in pods]
        assert sum(map(_ready, pods)) >= 1, "no ready pod while the pods were replaced"
        reconciling = gemma.condition("pair", "Reconciling")
        if reconciling.get("status") == "True":
            said.add(reconciling["message"])
        found = gemma.get("pair")
        ready = {c["type"]: c for c in found["status"].get("conditions") or []}.get("Ready", {})
        if found["status"].get("observedGeneration") == generation and ready.get("status") == "True":
            break
        time.sleep(0.2)

    assert strategy(gemma, "pair") == {"type": "RollingUpdate", "maxSurge": 0, "maxUnavailable": 1}
    assert {pod.metadata.uid for pod in gemma.pods("pair")}.isdisjoint(before)
    explained = [message for message in said if "the pods are replaced one at a time" in message]
    assert explained, said
    assert "a new pod needs 1 nvidia.com/gpu free on one h100 node" in explained[0]
    assert "have at most 0 free (0 in all)" in explained[0]


def test_one_replica_on_a_full_pool_waits_until_downtime_is_allowed(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("solo", **ONE_GPU))
    gemma.wait("solo", "Ready", timeout=120)
    (pod,) = gemma.pods("solo")
    template_before = gemma.deployment("solo").spec.template.to_dict()
    fill_h100_pool(gemma, operator)

    env = [{"name": "NEW", "value": "1"}]
    changed = gemma.patch_spec("solo", {**ONE_GPU, "serving": {"verify": False, "env": env}})
    waiting = gemma.wait("solo", "Ready", status="False", generation=changed["metadata"]["generation"])
    conditions = {c["type"]: c for c in waiting["status"]["conditions"]}
    reconciling, ready = conditions["Reconciling"], conditions["Ready"]
    assert (reconciling["status"], reconciling["reason"]) == ("True", "WaitingForCapacity")
    assert ready["reason"] == "WaitingForCapacity"
    message = reconciling["message"]
    assert "a new pod needs 1 nvidia.com/gpu free on one h100 node" in message
    assert "the 2 h100 nodes it may go to have at most 0 free (0 in all)" in message
    assert "spec.serving.rollout.allowDowntime: true" in message
    assert conditions["Stalled"]["status"] == "False"
    # The template is held: the pod that served keeps serving, on the old template.
    time.sleep(3)
    assert gemma.deployment("solo").spec.template.to_dict() == template_before
    assert [p.metadata.uid for p in serving(gemma, "solo")] == [pod.metadata.uid]

    allowed = gemma.patch_spec(
        "solo", {**ONE_GPU, "serving": {"verify": False, "env": env, "rollout": {"allowDowntime": True}}}
    )
    ready_now = gemma.wait("solo", "Ready", timeout=ROLLOUT_SECONDS, generation=allowed["metadata"]["generation"])
    assert {c["type"]: c for c in ready_now["status"]["conditions"]}["Reconciling"]["status"] == "False"
    assert strategy(gemma, "solo") == {"type": "RollingUpdate", "maxSurge": 0, "maxUnavailable": 1}
    (new,) = serving(gemma, "solo")
    assert new.metadata.uid != pod.metadata.uid
    assert ("NEW", "1") in [(e.name, e.value) for e in new.spec.containers[0].env or []]
