"""Tests that prove the local plane is real Kubernetes, and that servingsim serves its pods.

Every behaviour here comes from the real components: the scheduler binds pods, the
garbage collector deletes dependents, the API server runs CEL and server-side apply.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import text_generation
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gemma_operator.rendering import RUNTIME_LABEL
from harness.http import http_get
from harness.namespaces import unique_name, wait_for_event
from harness.simulator import ServingSim, base_url
from harness.waiting import wait_for, wait_for_condition

pytestmark = pytest.mark.e2e

PAUSE = "registry.k8s.io/pause:3.10"
GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"
H100 = "NVIDIA-H100-80GB-HBM3"
ARCH = "kubernetes.io/arch"
EDGE = "node-role.kubernetes.io/edge"
GPU_TOLERATION = {"key": GPU, "operator": "Equal", "value": "present", "effect": "NoSchedule"}
EDGE_TOLERATION = {"key": EDGE, "operator": "Exists", "effect": "NoSchedule"}


def pod_body(
    name: str,
    *,
    image: str = PAUSE,
    gpus: int = 0,
    node_selector: dict[str, str] | None = None,
    affinity: dict[str, Any] | None = None,
    tolerations: list[dict[str, str]] | None = None,
    args: list[str] | None = None,
    ports: tuple[int, ...] = (),
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if gpus:
        resources["requests"][GPU] = str(gpus)
        resources["limits"] = {GPU: str(gpus)}
    container: dict[str, Any] = {"name": "main", "image": image, "resources": resources}
    if args is not None:
        container["args"] = args
    if ports:
        container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    spec: dict[str, Any] = {"containers": [container], "terminationGracePeriodSeconds": 0}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def required_node_affinity(key: str, values: list[str]) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def core_api(api: client.ApiClient) -> Any:
    """CoreV1Api, typed loosely: tests read optional fields the server always sets."""
    return client.CoreV1Api(api)


def create_pod(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    core_api(api).create_namespaced_pod(namespace, body)


def wait_running(api: client.ApiClient, namespace: str, name: str, timeout: float = 90.0) -> Any:
    core = core_api(api)

    def running() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" and pod.status.pod_ip else None

    return wait_for(running, timeout=timeout, message=f"pod {namespace}/{name} Running with a pod IP")


def node_of(api: client.ApiClient, node_name: str) -> Any:
    return core_api(api).read_node(node_name)


def scheduler_of(event: Any) -> str:
    return str(event.reporting_component or (event.source.component if event.source else "") or "")


# ------------------------------------------------------------------ scheduling ---


def test_two_gpu_pod_is_bound_by_the_scheduler_to_an_h100_node_and_runs(api: client.ApiClient, namespace: str) -> None:
    create_pod(
        api,
        namespace,
        pod_body(
            "h100-2gpu",
            gpus=2,
            node_selector={PRODUCT: H100},
            affinity=required_node_affinity(PRODUCT, [H100]),
            tolerations=[GPU_TOLERATION],
        ),
    )
    pod = wait_running(api, namespace, "h100-2gpu")
    node = node_of(api, pod.spec.node_name)
    assert node.metadata.labels.get(PRODUCT) == H100
    assert int(node.status.allocatable[GPU]) >= 2
    assert any(t.key == GPU and t.effect == "NoSchedule" for t in node.spec.taints or [])

    scheduled = wait_for_event(api, namespace, "h100-2gpu", "Scheduled")
    assert scheduler_of(scheduled) == "default-scheduler"
    assert pod.spec.node_name in scheduled.message
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions.get("PodScheduled") == "True"
    assert pod.status.pod_ip.startswith("127.")


def test_pod_asking_for_99_gpus_gets_failed_scheduling(api: client.ApiClient, namespace: str) -> None:
    create_pod(api, namespace, pod_body("greedy", gpus=99, tolerations=[GPU_TOLERATION]))
    event = wait_for_event(api, namespace, "greedy", "FailedScheduling")
    assert scheduler_of(event) == "default-scheduler"
    assert f"Insufficient {GPU}" in event.message
    pod = core_api(api).read_namespaced_pod("greedy", namespace)
    assert pod.spec.node_name is None
    assert pod.status.phase == "Pending"
    unschedulable = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
    assert unschedulable
    assert unschedulable[0].status == "False"
    assert unschedulable[0].reason == "Unschedulable"


def test_pods_without_the_edge_toleration_never_land_on_edge_nodes(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    edge_nodes = {n.metadata.name for n in core.list_node(label_selector=EDGE).items}
    assert edge_nodes, "the inventory has no edge nodes (label node-role.kubernetes.io/edge)"
    arm_nodes = core.list_node(label_selector=f"{ARCH}=arm64").items
    assert {n.metadata.name for n in arm_nodes} == edge_nodes, "this test expects arm64 nodes to be the edge nodes"
    for node in arm_nodes:
        assert any(t.key == EDGE and t.effect == "NoSchedule" for t in node.spec.taints or []), node.metadata.name

    # Asking for arm64 (only edge nodes are arm64) without the toleration: unschedulable.
    # The scheduler's TaintToleration filter runs before NodeAffinity, so every tainted
    # node (edge ones included) is reported as excluded by its taint.
    create_pod(api, namespace, pod_body("arm-no-toleration", node_selector={ARCH: "arm64"}))
    event = wait_for_event(api, namespace, "arm-no-toleration", "FailedScheduling")
    nodes = core.list_node().items
    tainted = [n for n in nodes if any(t.effect in ("NoSchedule", "NoExecute") for t in n.spec.taints or [])]
    assert f"{len(tainted)} node(s) had untolerated taint(s)" in event.message
    assert f"{len(nodes) - len(tainted)} node(s) didn't match Pod's node affinity/selector" in event.message

    # Unconstrained pods land somewhere, never on an edge node.
    names = [f"free-{i}" for i in range(6)]
    for name in names:
        create_pod(api, namespace, pod_body(name))
    for name in names:
        pod = wait_running(api, namespace, name)
        assert pod.spec.node_name not in edge_nodes, f"{name} landed on edge node {pod.spec.node_name}"

    # Control: with the toleration, the same request does reach an edge node.
    create_pod(
        api,
        namespace,
        pod_body("arm-tolerated", node_selector={ARCH: "arm64"}, tolerations=[EDGE_TOLERATION]),
    )
    tolerated = wait_running(api, namespace, "arm-tolerated")
    assert tolerated.spec.node_name in edge_nodes
    still_pending = core.read_namespaced_pod("arm-no-toleration", namespace)
    assert still_pending.spec.node_name is None


# -------------------------------------------------------------------- the API ---


def test_dependent_is_garbage_collected_after_its_owner_is_deleted(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}})
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [owner_ref]}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})
    assert core.read_namespaced_config_map("dependent", namespace).metadata.owner_references[0].uid == owner_ref["uid"]

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(dependent_gone, timeout=60, message="the garbage collector to delete ConfigMap 'dependent'")
    assert core.read_namespaced_config_map("bystander", namespace).metadata.name == "bystander"


def test_crd_cel_rule_rejects_an_object_that_breaks_it(api: client.ApiClient, namespace: str) -> None:
    group = f"{unique_name('cel')}.planetest.gemma.dev"
    crd_name = f"widgets.{group}"
    rule_message = "spec.replicas must not exceed spec.maxReplicas"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["replicas", "maxReplicas"],
                                    "properties": {
                                        "replicas": {"type": "integer", "minimum": 0},
                                        "maxReplicas": {"type": "integer", "minimum": 1},
                                    },
                                    "x-kubernetes-validations": [
                                        {"rule": "self.replicas <= self.maxReplicas", "message": rule_message}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    extensions: Any = client.ApiextensionsV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    extensions.create_custom_resource_definition(crd)
    try:
        wait_for_condition(
            api,
            group="apiextensions.k8s.io",
            version="v1",
            plural="customresourcedefinitions",
            name=crd_name,
            cond_type="Established",
        )

        def widget(name: str, replicas: int, max_replicas: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"replicas": replicas, "maxReplicas": max_replicas},
            }

        # The valid object is accepted (retried while the new resource is being served).
        created = wait_for(
            lambda: custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget("ok", 2, 3)),
            timeout=30,
            message="the API server to serve the new CRD",
        )
        assert created["spec"]["replicas"] == 2

        with pytest.raises(ApiException) as rejected:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget("bad", 5, 3))
        assert rejected.value.status == 422
        status = json.loads(rejected.value.body or "{}")
        assert status["reason"] == "Invalid"
        assert rule_message in status["message"]
        assert status["details"]["causes"][0]["field"] == "spec"

        # An update that breaks the rule is rejected the same way.
        with pytest.raises(ApiException) as update_rejected:
            custom.patch_namespaced_custom_object(
                group,
                "v1",
                namespace,
                "widgets",
                "ok",
                {"spec": {"replicas": 4}},
                _content_type="application/merge-patch+json",
            )
        assert update_rejected.value.status == 422
        assert rule_message in (update_rejected.value.body or "")
    finally:
        extensions.delete_custom_resource_definition(crd_name)


def test_server_side_apply_conflict_names_the_other_field_manager(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)

    def apply(manager: str, data: dict[str, str], force: bool = False) -> Any:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": data}
        return core.patch_namespaced_config_map(
            "shared",
            namespace,
            body,
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )

    apply("alice", {"colour": "red"})
    with pytest.raises(ApiException) as conflict:
        apply("bob", {"colour": "blue"})
    assert conflict.value.status == 409
    status = json.loads(conflict.value.body or "{}")
    assert status["reason"] == "Conflict"
    assert 'conflict with "alice"' in status["message"]
    assert ".data.colour" in status["message"]
    assert core.read_namespaced_config_map("shared", namespace).data == {"colour": "red"}

    # Forcing takes the field over: the conflict was about ownership, not access.
    forced = apply("bob", {"colour": "blue"}, force=True)
    assert forced.data == {"colour": "blue"}
    owners = {entry.manager: json.dumps(entry.fields_v1) for entry in forced.metadata.managed_fields if entry.fields_v1}
    assert "f:colour" in owners["bob"]
    assert "f:colour" not in owners.get("alice", "")


# ---------------------------------------------------------------- servingsim ---


def test_vllm_pod_is_served_over_real_http_and_load_changes_its_metrics(
    api: client.ApiClient, namespace: str, servingsim: ServingSim
) -> None:
    model = "google/gemma-3-1b-it"
    create_pod(
        api,
        namespace,
        pod_body("vllm", image="vllm/vllm-openai:v0.19.0", args=[model, "--port", "8000"], ports=(8000,)),
    )
    pod = wait_running(api, namespace, "vllm")
    simulated = servingsim.wait_for_pod(namespace, "vllm")
    assert simulated["ip"] == pod.status.pod_ip
    assert simulated["runtime"] == "vllm"
    assert simulated["model"] == model
    url = base_url(simulated)

    status, text = http_get(f"{url}/metrics")
    assert status == 200
    series = f'vllm:num_requests_waiting{{engine="0",model_name="{model}"}}'
    assert f"{series} 0.0" in text

    servingsim.set_load(namespace, "vllm", waiting=9, running=2)
    _, text = http_get(f"{url}/metrics")
    assert f"{series} 9.0" in text
    assert f'vllm:num_requests_running{{engine="0",model_name="{model}"}} 2.0' in text

    assert http_get(f"{url}/health") == (200, "")
    servingsim.set_load(namespace, "vllm", healthy=False)
    assert http_get(f"{url}/health")[0] == 503

    # Deleting the pod stops its server.
    core_api(api).delete_namespaced_pod("vllm", namespace, grace_period_seconds=0)
    wait_for(
        lambda: servingsim.pod(namespace, "vllm") is None,
        timeout=60,
        message="servingsim to stop serving the deleted pod",
    )
    with pytest.raises(OSError):  # noqa: PT011 - refused or reset, either proves it is gone
        socket.create_connection((simulated["ip"], 8000), timeout=2).close()


def test_tgi_pod_generate_parses_with_the_text_generation_client(
    api: client.ApiClient, namespace: str, servingsim: ServingSim
) -> None:
    create_pod(
        api,
        namespace,
        pod_body(
            "tgi",
            image="ghcr.io/huggingface/text-generation-inference:3.3.5",
            args=["--model-id", "google/gemma-3-27b-it", "--port", "8080", "--max-total-tokens", "8192"],
            ports=(8080,),
        ),
    )
    wait_running(api, namespace, "tgi")
    simulated = servingsim.wait_for_pod(namespace, "tgi")
    assert simulated["runtime"] == "tgi"
    tgi = text_generation.Client(base_url(simulated), timeout=10)
    response = tgi.generate("Why is the sky blue?", max_new_tokens=4)
    assert response.generated_text
    assert response.details.generated_tokens == 4
    chat = tgi.chat(messages=[text_generation.types.Message(role="user", content="Hello")])
    assert chat.model == "google/gemma-3-27b-it"
    assert chat.choices[0].message.content

    status, info = http_get(f"{base_url(simulated)}/info")
    assert status == 200
    assert json.loads(info)["max_total_tokens"] == 8192
    counts = servingsim.pod(namespace, "tgi")
    assert counts is not None
    assert counts["requests"]["completions"] == 2


def test_runtime_label_picks_llamacpp_for_an_edge_pod(
    api: client.ApiClient, simulated_llamacpp: str, servingsim: ServingSim
) -> None:
    namespace = simulated_llamacpp  # its load is set below
    create_pod(
        api,
        namespace,
        pod_body(
            "edge-llama",
            image="example.com/gemma-edge-server:1.0",
            args=["-hf", "ggml-org/gemma-3-1b-it-GGUF", "--port", "8080"],
            ports=(8080,),
            labels={RUNTIME_LABEL: "llamacpp"},
            node_selector={ARCH: "arm64"},
            tolerations=[EDGE_TOLERATION],
        ),
    )
    pod = wait_running(api, namespace, "edge-llama")
    assert EDGE in node_of(api, pod.spec.node_name).metadata.labels
    simulated = servingsim.wait_for_pod(namespace, "edge-llama")
    assert simulated["runtime"] == "llamacpp"
    assert http_get(f"{base_url(simulated)}/health") == (200, '{"status":"ok"}')
    servingsim.set_load(namespace, "edge-llama", loading=True)
    status, body = http_get(f"{base_url(simulated)}/health")
    assert status == 503
    assert json.loads(body)["error"]["message"] == "Loading model"
