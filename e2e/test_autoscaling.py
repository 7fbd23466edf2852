"""The built-in autoscaler on the local plane, driven by load set on the simulated runtimes, and the HPA path."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import requests

from gemma import Gemma, manifest
from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load
from gemma_operator.probes.scrape import scrape_load
from harness.plane import Plane
from harness.simulator import ServingSim, base_url
from harness.tools import kubectl
from harness.waiting import wait_for
from llamapods import Requests, flag, real_pod
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

# Windows shortened for the test; the operator under test scrapes every 2 s.
FAST = {
    "enabled": True,
    "targetInFlightPerReplica": 2,
    "stableWindowSeconds": 4,
    "panicWindowSeconds": 2,
    "scaleDownDelaySeconds": 10,
}


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Gemma:
    return Gemma(plane.api, namespace)


def status(gemma: Gemma, name: str) -> dict[str, Any]:
    return dict(gemma.get(name).get("status") or {})


def ready_pods(gemma: Gemma, name: str) -> list[Any]:
    return [
        pod
        for pod in gemma.pods(name)
        if pod.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def set_load(gemma: Gemma, servingsim: ServingSim, name: str, **load: Any) -> None:
    for pod in ready_pods(gemma, name):
        servingsim.wait_for_pod(gemma.namespace, pod.metadata.name)
        servingsim.set_load(gemma.namespace, pod.metadata.name, **load)


def test_scales_up_under_load_and_down_after_it(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess, simulated_llamacpp: str
) -> None:
    gemma.create(
        manifest("elastic", model={"variant": "e2b"}, autoscaling={**FAST, "minReplicas": 1, "maxReplicas": 4})
    )
    gemma.wait("elastic", "Ready")
    assert status(gemma, "elastic")["desiredReplicas"] == 1

    set_load(gemma, servingsim, "elastic", waiting=8, running=2)
    scaled = wait_for(
        lambda: (s := status(gemma, "elastic")).get("desiredReplicas", 0) > 1 and s,
        timeout=60,
        message="the autoscaler scaling up under load",
    )
    decision = scaled["decisions"][-1]
    assert decision["replicas"] == scaled["desiredReplicas"]
    assert "in-flight" in decision["reason"]
    wait_for(
        lambda: gemma.deployment("elastic").spec.replicas == status(gemma, "elastic")["desiredReplicas"],
        timeout=30,
        message="the Deployment following desiredReplicas",
    )
    assert gemma.condition("elastic", "ScalingActive")["status"] == "True"

    set_load(gemma, servingsim, "elastic", waiting=0, running=0)
    wait_for(
        lambda: status(gemma, "elastic").get("desiredReplicas") == 1,
        timeout=90,
        message="the autoscaler scaling down once the delay has passed",
    )
    wait_for(lambda: gemma.deployment("elastic").spec.replicas == 1, timeout=30, message="the Deployment at 1")


def test_real_llama_server_scales_up_under_requests_and_down_after_them(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess, real_llamacpp: str
) -> None:
    """Real requests to a real llama-server: the autoscaler reads its own requests_processing and
    requests_deferred, scales up while the requests last and back down after them."""
    gemma.create(manifest("busy", model={"variant": "e2b"}, autoscaling={**FAST, "minReplicas": 1, "maxReplicas": 3}))
    gemma.wait("busy", "Ready")
    [first] = ready_pods(gemma, "busy")
    real = real_pod(servingsim, gemma.namespace, first.metadata.name)
    parallel = int(flag(real.args, "-np"))
    url = base_url(real.served)
    seen: list[Load] = []
    # Twice the slots: -np requests processing, as many deferred; short answers keep each request brief.
    with Requests(url, clients=2 * parallel, max_tokens=48) as sent:

        def scaled_up() -> bool:
            scrape = asyncio.run(scrape_load(url, Runtime.LLAMACPP))
            assert scrape.load is not None, scrape.reason
            seen.append(scrape.load)
            return int(status(gemma, "busy").get("desiredReplicas", 0)) > 1

        wait_for(scaled_up, timeout=90, message="the autoscaler scaling up under real requests")
    assert set(sent.statuses) == {200}, sent.statuses
    assert max(load.running for load in seen) == parallel, seen  # every slot busy
    assert max(load.waiting for load in seen) >= 1, seen  # and requests deferred behind them
    decision = status(gemma, "busy")["decisions"][-1]
    assert "in-flight" in decision["reason"], decision
    wait_for(lambda: len(ready_pods(gemma, "busy")) > 1, timeout=60, message="a second ready llama-server pod")
    added = [pod for pod in ready_pods(gemma, "busy") if pod.metadata.name != first.metadata.name]
    for pod in added:
        real_pod(servingsim, gemma.namespace, pod.metadata.name)  # each one a real llama-server too

    wait_for(
        lambda: status(gemma, "busy").get("desiredReplicas") == 1,
        timeout=90,
        message="the autoscaler scaling down once the requests stopped",
    )
    assert gemma.condition("busy", "ScalingActive")["status"] == "True"
    wait_for(lambda: len(gemma.pods("busy")) == 1, timeout=60, message="one pod left")
    gone = {pod.metadata.name for pod in [first, *added]} - {pod.metadata.name for pod in gemma.pods("busy")}
    wait_for(  # and the llama-servers of the pods scaled away stopped with them
        lambda: all(servingsim.pod(gemma.namespace, name) is None for name in gone),
        timeout=30,
        message=f"the llama-servers of {sorted(gone)} stopped",
    )


def test_tgi_scales_down_from_pods_that_never_served(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess
) -> None:
    # Real TGI creates tgi_queue_size and tgi_batch_current_size on its first request: the replicas added by a
    # scale-up that never get one show a page without them, which is "no requests yet", not MetricsUnavailable.
    spec = {"model": {"family": "gemma-3", "variant": "4b"}, "serving": {"runtime": "tgi"}}
    gemma.create(manifest("quiet", **spec, autoscaling={**FAST, "minReplicas": 1, "maxReplicas": 3}))
    try:
        gemma.wait("quiet", "Ready")
        [first] = ready_pods(gemma, "quiet")
        set_load(gemma, servingsim, "quiet", waiting=6, running=2)
        wait_for(lambda: len(ready_pods(gemma, "quiet")) >= 2, timeout=90, message="a second ready TGI pod")
        added = next(pod for pod in ready_pods(gemma, "quiet") if pod.metadata.name != first.metadata.name)
        servingsim.wait_for_pod(gemma.namespace, added.metadata.name)
        page = requests.get(f"http://{added.status.pod_ip}:8000/metrics", timeout=5)
        assert (page.status_code, page.content) == (200, b"")  # no gauges before the first request

        servingsim.set_load(gemma.namespace, first.metadata.name, waiting=0, running=0)
        wait_for(lambda: status(gemma, "quiet").get("desiredReplicas") == 1, timeout=90, message="TGI at 1 again")
        assert gemma.condition("quiet", "ScalingActive")["status"] == "True"
    finally:
        gemma.delete("quiet")
        wait_for(lambda: not gemma.pods("quiet"), timeout=60, message="quiet's pods gone")


def test_a_failed_scrape_holds_replicas(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess, simulated_llamacpp: str
) -> None:
    gemma.create(manifest("steady", model={"variant": "e2b"}, autoscaling={**FAST, "minReplicas": 1, "maxReplicas": 3}))
    gemma.wait("steady", "Ready")
    set_load(gemma, servingsim, "steady", waiting=6, running=2)
    wait_for(lambda: len(ready_pods(gemma, "steady")) >= 2, timeout=90, message="a second ready pod")
    held = status(gemma, "steady")["desiredReplicas"]

    # Every pod now reports no load, and one cannot be scraped at all (llama.cpp answers 503 while loading).
    pods = ready_pods(gemma, "steady")
    set_load(gemma, servingsim, "steady", waiting=0, running=0)
    servingsim.set_load(gemma.namespace, pods[0].metadata.name, loading=True)
    wait_for(
        lambda: gemma.condition("steady", "ScalingActive").get("reason") == "MetricsUnavailable",
        timeout=30,
        message="ScalingActive=False for the failed scrape",
    )
    time.sleep(FAST["scaleDownDelaySeconds"] + FAST["stableWindowSeconds"] + 4)
    assert status(gemma, "steady")["desiredReplicas"] == held  # never scaled down on a missing metric
    assert "not scaling down" in gemma.condition("steady", "ScalingActive")["message"]

    servingsim.set_load(gemma.namespace, pods[0].metadata.name, loading=False)
    wait_for(lambda: status(gemma, "steady").get("desiredReplicas") == 1, timeout=90, message="scale-down resumed")


def test_gpu_capacity_limits_scaling(gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess) -> None:
    autoscaling = {**FAST, "minReplicas": 1, "maxReplicas": 10, "maxScaleUpPods": 10}
    gemma.create(manifest("greedy", model={"variant": "31b"}, placement={"gpusPerReplica": 4}, autoscaling=autoscaling))
    try:
        gemma.wait("greedy", "Ready")
        set_load(gemma, servingsim, "greedy", waiting=60, running=4)
        limited = wait_for(
            lambda: (c := gemma.condition("greedy", "ScalingLimited")).get("status") == "True" and c,
            timeout=60,
            message="ScalingLimited=True at the H100 capacity",
        )
        assert "free h100 GPUs" in limited["message"]
        assert status(gemma, "greedy")["desiredReplicas"] <= 4  # two H100 nodes of 8 GPUs hold four replicas of 4
    finally:
        gemma.delete("greedy")
        wait_for(lambda: not gemma.pods("greedy"), timeout=60, message="greedy's pods gone")


def test_hpa_can_drive_the_scale_subresource(plane: Plane, gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("external", model={"variant": "e2b"}))
    gemma.wait("external", "Ready")
    hpa = f"""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: external, namespace: {gemma.namespace}}}
spec:
  scaleTargetRef: {{apiVersion: serving.gemma.dev/v1alpha1, kind: GemmaDeployment, name: external}}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
"""
    kubectl(plane, "apply", "-f", "-", input=hpa)

    def able_to_scale() -> bool:
        hpa_status = json.loads(kubectl(plane, "get", "hpa", "external", "-n", gemma.namespace, "-o", "json").stdout)
        conditions = hpa_status.get("status", {}).get("conditions") or []
        return any(c["type"] == "AbleToScale" and c["status"] == "True" for c in conditions)

    wait_for(able_to_scale, timeout=90, message="HPA condition AbleToScale=True")
    kubectl(plane, "scale", "-n", gemma.namespace, "gemmadeployment/external", "--replicas=2")
    wait_for(
        lambda: gemma.deployment("external").spec.replicas == 2,
        timeout=30,
        message="kubectl scale reaching the Deployment",
    )
