"""rendering: children valid against the Kubernetes 1.36 schemas, safe, labelled and named within limits."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from gemma_operator.api import Family, GemmaDeployment, Reason, Runtime, Target
from gemma_operator.catalog import default_accelerator_classes, runtimes
from gemma_operator.planning import Refused, plan
from gemma_operator.rendering import cache_claim_name, child_name, endpoint, label_value, render

from .builders import MATRIX_PRECISION, MATRIX_VARIANTS, SERVED, SERVED_IDS, deployment, fitted

KUBERNETES_VERSION = "1.36.0"
SCENARIOS: dict[str, dict[str, Any]] = {
    # 31B bf16 holds two sequences of 8K on one H100 by vLLM's own accounting (four need two GPUs).
    "31b-h100": {
        "model": {"variant": "31b", "tokenSecretRef": {"name": "hf", "key": "tok"}},
        "serving": {"maxConcurrentSequences": 2},
    },
    "31b-tp2-replicas": {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 131072}, "replicas": 3},
    "26b-monitored": {"model": {"variant": "26b-a4b"}, "monitoring": {"serviceMonitor": True}},
    "e2b-cpu": {"model": {"variant": "e2b"}, "placement": {"target": "cpu"}},
    "e4b-edge": {"model": {"variant": "e4b", "precision": "int4"}, "placement": {"target": "edge"}},
    "gemma3-tgi": {
        "model": {"family": "gemma-3", "variant": "27b", "tokenSecretRef": {"name": "hf"}},
        "serving": {"runtime": "tgi"},
    },
    "gemma3-tgi-cpu": {
        "model": {"family": "gemma-3", "variant": "4b"},
        "serving": {"runtime": "tgi"},
        "placement": {"target": "cpu"},
    },
}


def children(
    spec: dict[str, Any], name: str = "chat", replicas: int | None = None
) -> tuple[GemmaDeployment, list[dict[str, Any]]]:
    gd = deployment(name=name, **spec)
    return gd, render(gd, fitted(gd), replicas)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_children_validate_against_kubernetes_schemas(scenario: str) -> None:
    _, objects = children(SCENARIOS[scenario])
    builtin = [obj for obj in objects if obj["kind"] != "ServiceMonitor"]
    assert {obj["kind"] for obj in builtin} >= {"Deployment", "Service"}
    for obj in builtin:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_each_runtime_renders_a_workload_that_would_start() -> None:
    images = {scenario: pod_spec(children(spec)[1])["containers"][0] for scenario, spec in SCENARIOS.items()}
    vllm = images["31b-h100"]
    assert vllm["command"] == ["vllm"]
    assert vllm["args"][0] == "serve"
    assert vllm["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert vllm["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    tgi = images["gemma3-tgi"]
    assert "command" not in tgi  # the image's entrypoint is text-generation-launcher
    assert tgi["image"].startswith("ghcr.io/huggingface/text-generation-inference:3.3.")
    assert tgi["args"][tgi["args"].index("--port") + 1] == "8000"
    assert images["gemma3-tgi-cpu"]["image"].endswith("-intel-cpu")
    llama = images["e4b-edge"]
    assert "--metrics" in llama["args"]
    assert llama["resources"]["requests"]["memory"] == llama["resources"]["limits"]["memory"]
    for container in images.values():
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
        # Patient startup: at least ten minutes for a download and load.
        assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 600


def test_startup_patience_grows_with_the_weights() -> None:
    def patience(spec: dict[str, Any]) -> int:
        probe = pod_spec(children(spec)[1])["containers"][0]["startupProbe"]
        return int(probe["failureThreshold"] * probe["periodSeconds"])

    assert patience(SCENARIOS["31b-h100"]) > patience(SCENARIOS["e2b-cpu"]) + 1000


def test_token_only_by_secret_reference() -> None:
    for scenario in ("31b-h100", "gemma3-tgi"):
        env = pod_spec(children(SCENARIOS[scenario])[1])["containers"][0]["env"]
        tokens = [variable for variable in env if "TOKEN" in variable["name"]]
        assert tokens
        for variable in tokens:
            assert "value" not in variable
            assert variable["valueFrom"]["secretKeyRef"]["name"] == "hf"
    env = pod_spec(children(SCENARIOS["31b-h100"])[1])["containers"][0]["env"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "tok"}}} in env
    tgi_env = pod_spec(children(SCENARIOS["gemma3-tgi"])[1])["containers"][0]["env"]
    assert {v["name"] for v in tgi_env} >= {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME"}
    no_token = pod_spec(children(SCENARIOS["e2b-cpu"])[1])["containers"][0]["env"]
    assert not [variable for variable in no_token if "TOKEN" in variable["name"]]


def test_user_env_overrides_and_extends() -> None:
    spec = {
        "model": {"variant": "31b"},
        "serving": {"env": [{"name": "HF_HOME", "value": "/cache"}, {"name": "X", "value": "1"}]},
    }
    env = pod_spec(children(spec)[1])["containers"][0]["env"]
    assert [v for v in env if v["name"] == "HF_HOME"] == [{"name": "HF_HOME", "value": "/cache"}]
    assert {"name": "X", "value": "1"} in env


def test_hardened_security_context() -> None:
    for spec in SCENARIOS.values():
        pod = pod_spec(children(spec)[1])
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = pod["containers"][0]["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_labels_on_every_child_and_the_pod_template() -> None:
    gd, objects = children(SCENARIOS["26b-monitored"], replicas=2)
    wanted = {
        "app.kubernetes.io/name": "gemma",
        "app.kubernetes.io/instance": "chat",
        "app.kubernetes.io/component": "inference-server",
        "app.kubernetes.io/managed-by": "gemma-operator",
        "app.kubernetes.io/version": "gemma-4-26b-a4b",
    }
    assert {obj["kind"] for obj in objects} == {"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"}
    for obj in objects:
        assert obj["metadata"]["labels"] == wanted
        assert obj["metadata"]["namespace"] == "ml"
    template = by_kind(objects)["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert template == {**wanted, "serving.gemma.dev/runtime": "vllm"}
    assert endpoint(gd, fitted(gd)) == "http://chat.ml.svc:8000"


def test_placement_reaches_the_pod() -> None:
    gpu = pod_spec(children(SCENARIOS["31b-h100"])[1])
    assert gpu["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu = pod_spec(children(SCENARIOS["e2b-cpu"])[1])
    expressions = cpu["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"]
    assert {e["key"] for e in expressions} == {"nvidia.com/gpu.product", "node-role.kubernetes.io/edge"}
    assert all(e["operator"] == "DoesNotExist" for e in expressions)
    edge = pod_spec(children(SCENARIOS["e4b-edge"])[1])
    assert edge["nodeSelector"] == {"node-role.kubernetes.io/edge": ""}
    assert edge["tolerations"][0]["key"] == "node-role.kubernetes.io/edge"


def test_shared_memory_only_when_sharded() -> None:
    sharded = pod_spec(children(SCENARIOS["31b-tp2-replicas"])[1])
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in sharded["volumes"]
    assert sharded["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    single = pod_spec(children(SCENARIOS["31b-h100"])[1])
    assert all(volume["name"] != "dshm" for volume in single["volumes"])


def test_pdb_only_with_more_than_one_replica() -> None:
    assert "PodDisruptionBudget" not in by_kind(children(SCENARIOS["31b-h100"])[1])
    assert "PodDisruptionBudget" in by_kind(children(SCENARIOS["31b-tp2-replicas"])[1])
    assert "PodDisruptionBudget" not in by_kind(children(SCENARIOS["31b-tp2-replicas"], replicas=1)[1])
    assert by_kind(children(SCENARIOS["31b-h100"], replicas=5)[1])["Deployment"]["spec"]["replicas"] == 5


@pytest.mark.parametrize("replicas", [0, 1, 3])
@pytest.mark.parametrize("monitored", [False, True])
def test_which_children_exist_follows_the_spec_and_replicas_never_the_plan(replicas: int, monitored: bool) -> None:
    """The reconcile relies on it: at generation 1 with no autoscaler an optional child not wanted now never was
    (reconcile/children.py), whatever plans the nodes gave meanwhile."""
    gd = deployment(model={"variant": "31b"}, replicas=replicas, monitoring={"serviceMonitor": monitored})
    classes = default_accelerator_classes()
    plans = [plan(gd, classes.model_copy(update={"default_class": name}), None) for name in classes.classes]
    assert len({repr(each) for each in plans}) == len(plans)  # each accelerator gives another plan
    kinds = {frozenset(child["kind"] for child in render(gd, each)) for each in plans if not isinstance(each, Refused)}
    assert len(kinds) == 1


def test_service_monitor_is_opt_in() -> None:
    assert "ServiceMonitor" not in by_kind(children(SCENARIOS["31b-h100"])[1])
    monitor = by_kind(children(SCENARIOS["26b-monitored"])[1])["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


@pytest.mark.parametrize(
    "name",
    ["chat", "a" * 63, "b" * 253, "9lives", "chat.v2.example", "x" * 40 + "." + "y" * 100],
)
def test_names_stay_valid_however_long(name: str) -> None:
    gd, objects = children(SCENARIOS["31b-tp2-replicas"], name=name)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert len(obj["metadata"]["name"]) <= 63
        assert obj["metadata"]["name"][0].isalpha()
        assert len(obj["metadata"]["labels"]["app.kubernetes.io/instance"]) <= 63
    service = by_kind(objects)["Service"]
    assert endpoint(gd, fitted(gd)).startswith(f"http://{service['metadata']['name']}.ml.svc:")


def test_truncated_names_are_stable_and_distinct() -> None:
    long_a, long_b = "a" * 100 + "x", "a" * 100 + "y"
    assert child_name(long_a) == child_name(long_a)
    assert child_name(long_a) != child_name(long_b)
    assert child_name("chat.v2") != child_name("chat-v2")
    assert child_name("chat") == "chat"
    assert label_value("short") == "short"
    assert len(label_value("z" * 300)) == 63


def test_a_refused_spec_has_no_plan_to_render() -> None:
    refused = plan(deployment(model={"variant": "31b"}, placement={"target": "cpu"}), default_accelerator_classes())
    assert isinstance(refused, Refused)
    assert refused.reason is Reason.UNSATISFIABLE
    assert refused.closest is None
    assert "runs on GPUs only" in refused.message


@pytest.mark.parametrize(("runtime", "family", "target"), SERVED, ids=SERVED_IDS)
def test_every_served_combination_renders_a_valid_workload(runtime: Runtime, family: Family, target: Target) -> None:
    spec = {
        "model": {"family": family.value, "variant": MATRIX_VARIANTS[(family, target)], "precision": MATRIX_PRECISION},
        "serving": {"runtime": runtime.value},
        "placement": {"target": target.value},
    }
    _, objects = children(spec)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    facts = runtimes()[runtime]
    template = by_kind(objects)["Deployment"]["spec"]["template"]
    pod, container = template["spec"], template["spec"]["containers"][0]
    assert template["metadata"]["labels"]["serving.gemma.dev/runtime"] == runtime.value
    assert container["image"] == facts.images[target].image
    assert container["ports"][0]["containerPort"] == facts.port
    assert container["readinessProbe"]["httpGet"]["path"] == facts.health_path
    assert {variable["name"] for variable in container["env"]} >= set(facts.cache_env)
    assert {"name": "model-cache", "mountPath": next(iter(facts.cache_env.values()))} in container["volumeMounts"]
    architectures = facts.images[target].architectures
    assert pod.get("nodeSelector", {}).get("kubernetes.io/arch") == (
        architectures[0] if len(architectures) == 1 else None
    )
    assert ("nvidia.com/gpu" in container["resources"]["limits"]) == (target is Target.GPU)


def cache_spec(runtime: str, **cache: str) -> dict[str, Any]:
    spec = {
        "tgi": SCENARIOS["gemma3-tgi"],
        "vllm": SCENARIOS["31b-h100"],
        "llamacpp": SCENARIOS["e4b-edge"],
    }[runtime]
    return {**spec, "serving": {**spec.get("serving", {}), "cache": cache}}


def test_no_cache_is_an_empty_dir_and_a_rolling_update() -> None:
    objects = children(SCENARIOS["31b-h100"])[1]
    assert {"name": "model-cache", "emptyDir": {}} in pod_spec(objects)["volumes"]
    assert by_kind(objects)["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "PersistentVolumeClaim" not in by_kind(objects)


@pytest.mark.parametrize(("runtime", "cache_dir"), [("tgi", "/data"), ("vllm", "/data"), ("llamacpp", "/data")])
def test_an_existing_claim_is_mounted_at_the_runtime_cache_dir(runtime: str, cache_dir: str) -> None:
    objects = children(cache_spec(runtime, claimName="gemma-weights"))[1]
    pod = pod_spec(objects)
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "gemma-weights"}} in pod["volumes"]
    assert {"name": "model-cache", "mountPath": cache_dir} in pod["containers"][0]["volumeMounts"]
    assert "PersistentVolumeClaim" not in by_kind(objects)
    # The user's claim may be ReadWriteMany: keep zero-downtime rollouts.
    assert by_kind(objects)["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("runtime", ["tgi", "vllm", "llamacpp"])
def test_a_size_creates_a_claim_before_the_deployment(runtime: str) -> None:
    objects = children(cache_spec(runtime, size="200Gi", storageClassName="fast-ssd"))[1]
    assert [obj["kind"] for obj in objects][:2] == ["PersistentVolumeClaim", "Deployment"]
    claim = objects[0]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert claim["metadata"]["name"] == "chat-cache"
    assert claim["metadata"]["labels"] == by_kind(objects)["Service"]["metadata"]["labels"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "200Gi"}},
    }
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "chat-cache"}} in pod_spec(objects)["volumes"]
    # ReadWriteOnce attaches to one node: a surge pod elsewhere could never start.
    assert by_kind(objects)["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}


def test_a_created_claim_without_a_class_uses_the_default_and_a_short_name() -> None:
    claim = children(cache_spec("vllm", size="1.5Ti"), name="x" * 80)[1][0]
    kubernetes_validate.validate(claim, KUBERNETES_VERSION, strict=True)
    assert "storageClassName" not in claim["spec"]
    assert len(claim["metadata"]["name"]) <= 63
    assert claim["metadata"]["name"] == cache_claim_name(deployment(name="x" * 80)) == child_name("x" * 80, "cache")
