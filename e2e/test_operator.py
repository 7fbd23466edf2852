"""The operator against the real local control plane: placement, refusals, rollouts, restarts, drift, deletion."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from expected import expected_children
from gemma import Gemma, manifest
from harness.config import ROOT
from harness.judge import Judge
from harness.plane import Plane
from harness.simulator import ServingSim
from harness.tools import kubectl
from harness.waiting import wait_for
from kubelet import report_config_error, report_running
from llamapods import assert_serves_the_pod_as_rendered, real_pod
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "manifests" / "examples"
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Gemma:
    return Gemma(plane.api, namespace)


def node_labels(plane: Plane, name: str) -> dict[str, str]:
    core: Any = client.CoreV1Api(plane.api)
    return dict(core.read_node(name).metadata.labels or {})


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    document["metadata"].pop("namespace", None)
    return document


def api_writes(plane: Plane) -> Counter[tuple[str, str, str]]:
    """Writes the API server has served, by verb, resource and subresource, from its own request metrics."""
    text = kubectl(plane, "get", "--raw", "/metrics").stdout
    writes: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("verb") in WRITE_VERBS:
                writes[(labels["verb"], labels.get("resource", ""), labels.get("subresource", ""))] += int(sample.value)
    return writes


def operator_writes(writes: Counter[tuple[str, str, str]]) -> Counter[tuple[str, str, str]]:
    """The writes only the operator makes: to GemmaDeployments, and server-side applies of children.

    The tests write GemmaDeployments too, but not while steady state is measured; other
    components (garbage collector, controllers, kwok) never apply or touch GemmaDeployments.
    """
    return Counter({key: count for key, count in writes.items() if key[1] == "gemmadeployments" or key[0] == "APPLY"})


@pytest.mark.parametrize(
    ("file", "node_class"),
    [
        ("gemma-4-31b-h100.yaml", "h100"),
        ("gemma-4-26b-a4b-h100.yaml", "h100"),
        ("gemma-4-e2b-cpu.yaml", "cpu"),
        ("gemma-4-e4b-edge.yaml", "edge"),
    ],
)
def test_examples_go_ready_on_the_right_nodes(
    plane: Plane,
    gemma: Gemma,
    operator: OperatorProcess,
    servingsim: ServingSim,
    request: pytest.FixtureRequest,
    file: str,
    node_class: str,
) -> None:
    body = example(file)
    name = body["metadata"]["name"]
    gemma.create(body)
    ready = gemma.wait(name, "Ready", timeout=120)
    status = ready["status"]
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    assert status["readyReplicas"] == body["spec"].get("replicas", 1)
    assert status["endpoint"] == f"http://{name}.{gemma.namespace}.svc:8000"
    assert gemma.condition(name, "Reconciling")["status"] == "False"
    assert gemma.condition(name, "Stalled")["status"] == "False"
    # The runtime's own figures: what it admits at maxContextTokens (the plan fits only when that is at least
    # maxConcurrentSequences), what decodes in steady state, its cache in tokens and the release they are for.
    plan, serving = status["plan"], body["spec"].get("serving", {})
    concurrency = plan["concurrency"]
    assert concurrency["guaranteed"] >= serving.get("maxConcurrentSequences", 4)
    assert concurrency["steadyDecode"] >= int(concurrency["guaranteed"])
    assert concurrency["cacheTokens"] >= serving.get("maxContextTokens", 8192)
    assert plan["runtime"]["version"]
    assert gemma.condition(name, "Planned")["message"].startswith(
        f"{plan['runtime']['name']} {plan['runtime']['version']} on "
    )
    pods = gemma.pods(name)
    assert pods
    for pod in pods:
        labels = node_labels(plane, pod.spec.node_name)  # placed by the real kube-scheduler
        if node_class == "h100":
            assert labels.get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3"
        elif node_class == "edge":
            assert "node-role.kubernetes.io/edge" in labels
            assert labels["kubernetes.io/arch"] == "arm64"
        else:
            assert "nvidia.com/gpu.product" not in labels
            assert "node-role.kubernetes.io/edge" not in labels
    assert f"{pods[0].spec.node_name}" in gemma.condition(name, "Scheduled")["message"]
    if plan["runtime"]["name"] == "llamacpp":  # the CPU and edge examples: served by the real llama-server
        request.getfixturevalue("real_llamacpp")
        assert gemma.condition(name, "Verified")["reason"] == "Answered"
        for pod in pods:
            real = real_pod(servingsim, gemma.namespace, pod.metadata.name)
            assert_serves_the_pod_as_rendered(pod, real)
            print(f"\n{name}: {real.served['real']['build']}; {' | '.join(real.kv_cache_lines())}")


ADMISSION_REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("no-model", {}, "spec.model: Required value"),
    ("bad-family", {"model": {"family": "gemma-5", "variant": "31b"}}, "spec.model.family: Unsupported value"),
    ("bad-variant", {"model": {"family": "gemma-3", "variant": "e2b"}}, "spec.model.variant: Invalid value"),
    ("bad-precision", {"model": {"variant": "31b", "precision": "fp4"}}, "spec.model.precision: Unsupported value"),
    (
        "bad-runtime",
        {"model": {"variant": "31b"}, "serving": {"runtime": "sglang"}},
        "spec.serving.runtime: Unsupported value",
    ),
    (
        "tiny-context",
        {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 8}},
        "spec.serving.maxContextTokens",
    ),
    (
        "zero-seqs",
        {"model": {"variant": "31b"}, "serving": {"maxConcurrentSequences": 0}},
        "spec.serving.maxConcurrentSequences",
    ),
    (
        "three-gpus",
        {"model": {"variant": "31b"}, "placement": {"gpusPerReplica": 3}},
        "gpusPerReplica must be 0, 1, 2, 4 or 8",
    ),
    (
        "31b-on-cpu",
        {"model": {"variant": "31b"}, "placement": {"target": "cpu"}},
        "spec.placement.target: Invalid value",
    ),
    (
        "min-over-max",
        {"model": {"variant": "31b"}, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "minReplicas must not exceed maxReplicas",
    ),
    ("negative-replicas", {"model": {"variant": "31b"}, "replicas": -1}, "spec.replicas"),
    (
        "bad-class-name",
        {"model": {"variant": "31b"}, "placement": {"acceleratorClass": "H100!"}},
        "spec.placement.acceleratorClass",
    ),
]

STALLED: list[tuple[str, dict[str, Any], str]] = [
    (
        "tgi-gemma4",
        {"model": {"variant": "31b"}, "serving": {"runtime": "tgi"}},
        "runtime tgi cannot serve gemma-4 31b",
    ),
    (
        "unknown-class",
        {"model": {"variant": "31b"}, "placement": {"acceleratorClass": "h900"}},
        "placement.acceleratorClass h900 is not a configured accelerator class",
    ),
    (
        "over-context",
        {"model": {"variant": "e2b"}, "serving": {"maxContextTokens": 200000}},
        "exceeds gemma-4 e2b's maximum of 131072",
    ),
    (
        "too-big",
        {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 262144, "maxConcurrentSequences": 200}},
        "does not fit 4 x h100",
    ),
    (
        "no-gguf-base",
        {"model": {"variant": "e4b", "instructionTuned": False}},
        "no llamacpp build of the base gemma-4 e4b",
    ),
    (
        "e4b-bf16-edge",
        {
            "model": {"variant": "e4b"},
            "serving": {"maxContextTokens": 131072, "maxConcurrentSequences": 64},
            "placement": {"target": "edge"},
        },
        "does not fit a edge node",
    ),
]


def test_invalid_specs_are_refused_without_side_effects(plane: Plane, gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("bystander", model={"variant": "e2b"}))
    gemma.wait("bystander", "Ready")
    bystander_version = gemma.get("bystander")["metadata"]["resourceVersion"]

    for name, spec, message in ADMISSION_REJECTED:
        with pytest.raises(ApiException) as rejected:
            gemma.create(manifest(name, **spec))
        assert rejected.value.status == 422, name
        assert message in str(rejected.value.body), (name, rejected.value.body)

    for name, spec, _ in STALLED:
        gemma.create(manifest(name, **spec))
    for name, _, message in STALLED:
        stalled = gemma.wait(name, "Stalled")
        condition = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
        assert message in condition["message"], (name, condition["message"])
        assert gemma.condition(name, "Ready")["status"] == "False"
        assert stalled["status"]["observedGeneration"] == stalled["metadata"]["generation"]
        assert any(event.type == "Warning" and message in event.message for event in gemma.events(name)), name

    children = gemma.children()
    for kind, names in children.items():
        assert names == (["bystander"] if kind != "PodDisruptionBudget" else []), (kind, names)
    assert gemma.get("bystander")["metadata"]["resourceVersion"] == bystander_version
    assert operator.alive()


def test_impossible_placement_reports_scheduling(gemma: Gemma, operator: OperatorProcess) -> None:
    # Two H100 nodes of 8 GPUs hold four replicas of 4 GPUs at most: the fifth stays Pending.
    gemma.create(manifest("hungry", model={"variant": "31b"}, placement={"gpusPerReplica": 4}, replicas=5))
    try:
        condition = wait_for(
            lambda: (c := gemma.condition("hungry", "Scheduled")) and c["status"] == "False" and c,
            timeout=90,
            message="Scheduled=False on hungry",
        )
        assert "cannot be scheduled" in condition["message"]
        assert "Insufficient nvidia.com/gpu" in condition["message"]  # the scheduler's own words
        assert "h100 nodes have 4 free nvidia.com/gpu" in condition["message"]
        assert gemma.condition("hungry", "Ready")["status"] == "False"
        assert gemma.condition("hungry", "Reconciling")["status"] == "True"
    finally:
        # Give the GPUs back before the next test: namespace deletion alone is slow to free them.
        gemma.delete("hungry")
        wait_for(lambda: not gemma.pods("hungry"), timeout=60, message="hungry's pods gone")


def test_spec_change_rolls_out_a_new_plan(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("evolving", model={"variant": "26b-a4b"}))
    first = gemma.wait("evolving", "Ready")
    assert (
        first["status"]["plan"]["runtime"]["args"][
            first["status"]["plan"]["runtime"]["args"].index("--max-model-len") + 1
        ]
        == "8192"
    )

    changed = gemma.patch_spec(
        "evolving", {"model": {"variant": "26b-a4b", "precision": "fp8"}, "serving": {"maxContextTokens": 32768}}
    )
    generation = changed["metadata"]["generation"]
    assert generation > first["metadata"]["generation"]
    ready = gemma.wait("evolving", "Ready", generation=generation)
    args = ready["status"]["plan"]["runtime"]["args"]
    assert args[args.index("--max-model-len") + 1] == "32768"
    assert args[args.index("--quantization") + 1] == "fp8"
    deployment = gemma.deployment("evolving")
    assert deployment is not None
    assert deployment.spec.template.spec.containers[0].args == args
    assert all(c["observedGeneration"] == generation for c in ready["status"]["conditions"])


def test_scale_subresource_drives_replicas(plane: Plane, gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("scaled", model={"variant": "e2b"}))
    gemma.wait("scaled", "Ready")
    kubectl(plane, "scale", "-n", gemma.namespace, "gemmadeployment/scaled", "--replicas=3")
    ready = wait_for(
        lambda: (g := gemma.get("scaled"))["status"].get("readyReplicas") == 3 and g,
        timeout=90,
        message="3 ready replicas after kubectl scale",
    )
    assert ready["status"]["selector"] == "app.kubernetes.io/name=gemma,app.kubernetes.io/instance=scaled"
    assert "scaled" in gemma.children()["PodDisruptionBudget"]
    kubectl(plane, "scale", "-n", gemma.namespace, "gemmadeployment/scaled", "--replicas=1")
    wait_for(
        lambda: "scaled" not in gemma.children()["PodDisruptionBudget"],
        timeout=60,
        message="the PDB removed at 1 replica",
    )


def test_restart_mid_rollout_creates_no_duplicates_and_no_churn(gemma: Gemma, operator: OperatorProcess) -> None:
    for index in range(3):
        gemma.create(manifest(f"restart-{index}", model={"variant": "e2b"}, replicas=2))
    wait_for(lambda: gemma.deployment("restart-0"), timeout=30, message="the first Deployment")
    operator.kill()
    operator.start()
    for index in range(3):
        gemma.wait(f"restart-{index}", "Ready")
    pods_before = {pod.metadata.uid for index in range(3) for pod in gemma.pods(f"restart-{index}")}
    deployments_before = {gemma.deployment(f"restart-{index}").metadata.uid for index in range(3)}
    operator.kill()
    operator.start()
    time.sleep(5)  # every object is reconciled from the initial listing right after start
    assert {pod.metadata.uid for index in range(3) for pod in gemma.pods(f"restart-{index}")} == pods_before
    assert {gemma.deployment(f"restart-{index}").metadata.uid for index in range(3)} == deployments_before
    children = gemma.children()
    assert sorted(children["Deployment"]) == ["restart-0", "restart-1", "restart-2"]
    assert sorted(children["Service"]) == ["restart-0", "restart-1", "restart-2"]


def test_delete_leaves_no_children(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("doomed", model={"variant": "e2b"}, replicas=2))
    gemma.wait("doomed", "Ready")
    assert gemma.children()["PodDisruptionBudget"] == ["doomed"]
    gemma.delete("doomed")
    wait_for(
        lambda: not any(gemma.children().values()) and not gemma.pods("doomed"),
        timeout=90,
        message="the garbage collector removing every child",
    )


def test_manual_edit_of_a_managed_field_is_reverted(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("drifty", model={"variant": "e2b"}))
    gemma.wait("drifty", "Ready")
    deployment = gemma.deployment("drifty")
    original = deployment.spec.template.spec.containers[0].args
    gemma.apps.patch_namespaced_deployment(
        "drifty",
        gemma.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "server", "args": ["--tampered"]}]}}}},
    )
    wait_for(
        lambda: gemma.deployment("drifty").spec.template.spec.containers[0].args == original,
        timeout=30,
        message="the operator reverting the tampered args",
    )
    gemma.core.delete_namespaced_service("drifty", gemma.namespace)
    wait_for(lambda: "drifty" in gemma.children()["Service"], timeout=30, message="the deleted Service recreated")


def test_a_service_selector_given_an_extra_key_is_put_back(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("narrowed", model={"variant": "e2b"}))
    gemma.wait("narrowed", "Ready")
    gemma.core.patch_namespaced_service("narrowed", gemma.namespace, {"spec": {"selector": {"x": "y"}}})
    judge = Judge(gemma.api)
    wait_for(
        lambda: all(judge.verdict(child) for child in expected_children(gemma.get("narrowed"))),
        timeout=30,
        message="the operator putting the Service's selector back (judged by a server-side apply dry run)",
    )


def test_long_names_produce_valid_children(gemma: Gemma, operator: OperatorProcess) -> None:
    name = "a-very-long-gemma-deployment-name-" + "x" * 60
    gemma.create(manifest(name, model={"variant": "e2b"}))
    ready = gemma.wait(name, "Ready")
    children = gemma.children()
    (deployment,) = children["Deployment"]
    assert len(deployment) <= 63
    assert ready["status"]["endpoint"] == f"http://{deployment}.{gemma.namespace}.svc:8000"
    assert children["Service"] == [deployment]


def test_token_secret_is_referenced_never_read(plane: Plane, gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("secretive", model={"variant": "e2b", "tokenSecretRef": {"name": "hf-token"}}))
    # The operator reads no Secret: it renders the reference, and the kubelet resolves it.
    deployment = wait_for(lambda: gemma.deployment("secretive"), timeout=60, message="the Deployment")
    token = next(
        variable for variable in deployment.spec.template.spec.containers[0].env if variable.name == "HF_TOKEN"
    )
    assert token.value is None
    assert token.value_from.secret_key_ref.name == "hf-token"
    (pod,) = wait_for(lambda: gemma.pods("secretive"), timeout=60, message="the serving pod")
    report_config_error(plane.api, gemma.namespace, pod, 'secret "hf-token" not found')
    stalled = gemma.wait("secretive", "Stalled")
    condition = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert condition["reason"] == "SecretNotFound"
    assert '1/1 pods cannot start their container: secret "hf-token" not found' in condition["message"]

    secret_value = "hf_e2e" + "Zq7" * 8
    gemma.core.create_namespaced_secret(
        gemma.namespace, {"metadata": {"name": "hf-token"}, "stringData": {"token": secret_value}}
    )
    report_running(plane.api, gemma.namespace, pod)  # the kubelet retries and starts the container
    ready = gemma.wait("secretive", "Ready", timeout=120)
    assert secret_value not in str(ready)
    assert secret_value not in operator.log_text()
    assert all(secret_value not in (event.message or "") for event in gemma.events("secretive"))
    # Retries and handling leave no mark outside status: no progress or last-handled annotations.
    metadata = gemma.get("secretive")["metadata"]
    assert not metadata.get("annotations"), metadata
    assert not metadata.get("finalizers"), metadata


def test_steady_state_makes_no_writes(plane: Plane, gemma: Gemma, operator: OperatorProcess) -> None:
    for index in range(3):
        gemma.create(manifest(f"idle-{index}", model={"variant": "e2b"}, replicas=2))
    for index in range(3):
        gemma.wait(f"idle-{index}", "Ready")
    time.sleep(10)  # let the rollout's last status updates land
    before = api_writes(plane)
    time.sleep(60)
    during = api_writes(plane) - before
    assert operator_writes(during) == Counter(), during


def test_operator_metrics(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("counted", model={"variant": "e2b"}))
    gemma.wait("counted", "Ready")
    text = operator.metrics()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert any(
        s.labels.get("result") == "reconciled" and s.value > 0 for s in families["gemma_operator_reconciles"].samples
    )
    assert "gemma_operator_reconcile_duration_seconds" in families
    census = families["gemma_operator_gemmadeployments"].samples
    assert any(s.labels == {"variant": "e2b", "runtime": "llamacpp", "target": "cpu", "ready": "True"} for s in census)
    # The dashboard's replicas panel: wanted and ready, per GemmaDeployment.
    for family in ("gemma_operator_gemmadeployment_replicas", "gemma_operator_gemmadeployment_ready_replicas"):
        assert [s.value for s in families[family].samples if s.labels["name"] == "counted"] == [1], family
