"""spec.routing.inferencePool on the local plane: the real InferencePool CRD (from the Gateway API Inference
Extension's Go module) accepts what the operator renders, the endpoint picker built from the same module finds the
simulated vLLM pods through it and reads their metrics, and turning routing off deletes every one of its children.

The operator's Controller runs in this process (the in-process tier, e2e/inprocess.py); the picker runs as a local
process under its own ServiceAccount's token, with the arguments and configuration the operator rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from gemma_operator.api import Reason
from gemma_operator.catalog import default_accelerator_classes, endpoint_picker
from gemma_operator.reconcile.clock import SystemClock
from gemma_operator.reconcile.controller import Controller
from gemma_operator.reconcile.kube import KubeApi
from gemma_operator.reconcile.observe import pod_state
from gemma_operator.rendering import child_name
from harness.http import http_get
from harness.namespaces import create_namespace, delete_namespace, unique_name
from harness.plane import Plane
from harness.simulator import ServingSim
from harness.tools import helm
from harness.waiting import wait_for
from inprocess import Harness
from install import Release, install, service_account_kubeconfig
from routing import build_picker, install_pool_crd, prometheus_samples, running_picker

pytestmark = pytest.mark.e2e

GROUP, VERSION = endpoint_picker().pool_api_version.split("/")
ROUTED = {
    "model": {"variant": "26b-a4b"},
    "serving": {"runtime": "vllm", "verify": False},
    "replicas": 2,
    "routing": {"inferencePool": True},
}
# What the operator applies for routing, by kind: (API group, plural, namespaced read on the plane).
PICKER_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service")


@pytest.fixture(scope="module")
def pool_crd(plane: Plane) -> None:
    install_pool_crd(plane)


@pytest.fixture(scope="module")
def picker_binary() -> Path:
    return build_picker()


def pool(harness: Harness) -> dict[str, Any] | None:
    custom = client.CustomObjectsApi(harness.api)
    return harness.read(
        lambda: custom.get_namespaced_custom_object(
            GROUP, VERSION, harness.namespace, "inferencepools", child_name(harness.name)
        )
    )


def picker_children(harness: Harness) -> dict[str, dict[str, Any] | None]:
    name, namespace = child_name(harness.name, "epp"), harness.namespace
    rbac = client.RbacAuthorizationV1Api(harness.api)
    reads = {
        "ServiceAccount": lambda: harness.core.read_namespaced_service_account(name, namespace),
        "Role": lambda: rbac.read_namespaced_role(name, namespace),
        "RoleBinding": lambda: rbac.read_namespaced_role_binding(name, namespace),
        "ConfigMap": lambda: harness.core.read_namespaced_config_map(name, namespace),
        "Deployment": lambda: harness.apps.read_namespaced_deployment(name, namespace),
        "Service": lambda: harness.core.read_namespaced_service(name, namespace),
    }
    return {kind: harness.read(read) for kind, read in reads.items()}


def test_the_api_server_accepts_the_pool_and_turning_routing_off_deletes_it_all(
    harness: Harness, pool_crd: None
) -> None:
    harness.create(ROUTED)
    assert harness.reconcile().result == "reconciled"
    uid = harness.gemma()["metadata"]["uid"]
    serving = harness.deployment()
    accepted = pool(harness)
    assert serving is not None
    assert accepted is not None
    spec = accepted["spec"]
    assert spec["selector"] == serving["spec"]["selector"]
    assert spec["targetPorts"] == [{"number": 8000}]
    # The CRD's defaults, filled in by the real API server from its schema.
    assert spec["appProtocol"] == "http"
    assert spec["endpointPickerRef"] == {
        "group": "",
        "kind": "Service",
        "name": child_name(harness.name, "epp"),
        "port": {"number": endpoint_picker().ports.grpc},
        "failureMode": "FailOpen",
    }
    children = picker_children(harness)
    assert all(children.values()), children
    for found in [accepted, *children.values()]:
        assert found is not None
        assert [ref["uid"] for ref in found["metadata"]["ownerReferences"]] == [uid]

    harness.patch_spec({"routing": {"inferencePool": False}})
    assert harness.reconcile().result == "reconciled"
    assert pool(harness) is None
    assert picker_children(harness) == dict.fromkeys(PICKER_KINDS)
    assert harness.deployment() is not None  # the serving pods stay


@pytest.fixture(scope="module")
def chart_account(plane: Plane) -> Iterator[Release]:
    """The chart installed cluster-wide: its ServiceAccount holds exactly the chart's RBAC."""
    installed = Release(unique_name("gemma-operator"), create_namespace(plane.api, "gemma-routing"))
    install(plane, installed)
    yield installed
    helm(plane, "uninstall", installed.name, "-n", installed.namespace, "--wait", check=False)
    delete_namespace(plane.api, installed.namespace)


def test_the_charts_rbac_lets_the_operator_create_and_delete_it_all(
    harness: Harness, pool_crd: None, plane: Plane, chart_account: Release, tmp_path: Path
) -> None:
    """The API server lets the operator create the picker's Role and RoleBinding only if it holds every
    permission they grant (no escalate or bind): the reconcile writes as the chart's ServiceAccount."""
    kubeconfig = service_account_kubeconfig(plane, chart_account, tmp_path / "operator.kubeconfig")
    writer = KubeApi(config.new_client_from_config(str(kubeconfig)))  # type: ignore[no-untyped-call]
    harness.controller = Controller(writer, default_accelerator_classes(), SystemClock())
    harness.create(ROUTED)
    assert harness.reconcile().result == "reconciled", harness.condition("Stalled")
    assert pool(harness) is not None
    assert all(picker_children(harness).values())
    harness.patch_spec({"routing": {"inferencePool": False}})
    assert harness.reconcile().result == "reconciled"
    assert pool(harness) is None
    assert picker_children(harness) == dict.fromkeys(PICKER_KINDS)


def test_the_crd_schema_is_the_real_one(harness: Harness, pool_crd: None) -> None:
    """The same API server refuses a pool the upstream schema forbids: acceptance above means something."""
    custom = client.CustomObjectsApi(harness.api)
    body = {
        "apiVersion": endpoint_picker().pool_api_version,
        "kind": "InferencePool",
        "metadata": {"name": "no-ports"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "targetPorts": []},
    }
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, harness.namespace, "inferencepools", body)
    assert refused.value.status == 422
    assert "targetPorts" in str(refused.value.body)


def test_a_runtime_the_picker_cannot_read_is_refused(harness: Harness, pool_crd: None) -> None:
    harness.create({**ROUTED, "model": {"family": "gemma-3", "variant": "27b"}, "serving": {"runtime": "tgi"}})
    assert harness.reconcile().result == "stalled"
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.UNSATISFIABLE)
    assert "reads no tgi metrics" in stalled["message"]
    assert harness.deployment() is None
    assert pool(harness) is None


@pytest.fixture
def picker_log(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "epp.log"
    yield log
    if log.exists():
        print(log.read_text()[-6000:])  # the picker's own words, shown when the test fails


def _metrics(port: int) -> str:
    try:
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return ""
    return text if status == 200 else ""


def test_the_endpoint_picker_finds_the_simulated_vllm_pods_and_reads_their_metrics(
    harness: Harness,
    pool_crd: None,
    picker_binary: Path,
    plane: Plane,
    servingsim: ServingSim,
    tmp_path: Path,
    picker_log: Path,
) -> None:
    harness.create(ROUTED)
    assert harness.reconcile().result == "reconciled"

    def ready_pods() -> list[str] | None:
        states = [pod_state(pod) for pod in harness.pods()]
        ready = [state.name for state in states if state.ready and state.ip]
        return ready if len(ready) == 2 else None

    pods = wait_for(ready_pods, timeout=90, message="two ready serving pods")
    for name, (waiting, usage) in zip(pods, ((2, 0.25), (4, 0.75)), strict=True):
        servingsim.wait_for_pod(harness.namespace, name)
        servingsim.set_load(harness.namespace, name, waiting=waiting, kvCacheUsage=usage)

    picker = picker_children(harness)
    deployment, config = picker["Deployment"], picker["ConfigMap"]
    assert deployment is not None
    assert config is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (plugins,) = config["data"].values()
    account = Release(child_name(harness.name, "epp"), harness.namespace)
    kubeconfig = service_account_kubeconfig(plane, account, tmp_path / "epp.kubeconfig")
    with running_picker(picker_binary, container, plugins, kubeconfig, harness.namespace, tmp_path) as (ports, _):
        pool_label = f'{{name="{child_name(harness.name)}"}}'

        def pool_metrics() -> dict[str, float] | None:
            text = _metrics(ports.metrics)
            found = {
                family: prometheus_samples(text, f"inference_pool_{family}").get(pool_label)
                for family in ("ready_pods", "average_queue_size", "average_kv_cache_utilization")
            }
            return {k: v for k, v in found.items() if v is not None} if found["ready_pods"] == 2 else None

        seen = wait_for(pool_metrics, timeout=60, message="the picker to report both pods of its pool")
    # Its averages over the two pods are the simulated vLLM pods' own vllm:num_requests_waiting and
    # vllm:kv_cache_usage_perc: it scraped each one at its pod IP.
    assert seen == {"ready_pods": 2, "average_queue_size": 3, "average_kv_cache_utilization": 0.5}
