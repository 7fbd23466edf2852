"""charts/gemma-operator, rendered by the real helm: lint, Kubernetes schemas, RBAC, hardening, values."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from gemma_operator.api import Runtime, Target
from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.catalog.load import parse_accelerator_classes
from gemma_operator.cli import parser
from gemma_operator.cli.commands import run_options
from gemma_operator.rendering import render as render_children

from .builders import deployment, fitted
from .chart import CHART, NAMESPACE, RELEASE, ROOT, container, find, grants, helm, render, set_flags

KUBERNETES_VERSION = "1.36.0"
CRD = "crds/gemmadeployments.serving.gemma.dev.yaml"
# Kinds outside the Kubernetes schemas: the Prometheus Operator's.
FOREIGN_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor")}
LEADER_ROLE = f"{RELEASE}-leader-election"

VALUE_SETS: dict[str, tuple[dict[str, str], list[str]]] = {
    "defaults": ({}, []),
    "namespaced": ({"watchNamespaces": "{ml,research}"}, []),
    "monitoring": (
        {
            "metrics.serviceMonitor.enabled": "true",
            "servingMetrics.podMonitor.enabled": "true",
            "dashboard.enabled": "true",
        },
        [],
    ),
    "single": ({"replicaCount": "1", "leaderElection.enabled": "false"}, []),
    "own-rbac": ({"rbac.create": "false", "serviceAccount.create": "false", "serviceAccount.name": "ops"}, []),
}

# What the operator does with each kind (reconcile/handlers.py watches and indexes, reconcile/kube.py
# writes, kopf's own needs), as (apiGroup, resource, verb).
NAMESPACED_GRANTS = {
    *(("serving.gemma.dev", "gemmadeployments", verb) for verb in ("get", "list", "watch", "patch")),
    ("serving.gemma.dev", "gemmadeployments/status", "patch"),
    ("serving.gemma.dev", "gemmadeployments/finalizers", "update"),
    *(("apps", "deployments", verb) for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *(("", "services", verb) for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *(("policy", "poddisruptionbudgets", verb) for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *(("monitoring.coreos.com", "servicemonitors", verb) for verb in ("get", "create", "patch", "delete")),
    *(("", "persistentvolumeclaims", verb) for verb in ("get", "create", "patch")),
    # spec.routing.inferencePool: the pool and its endpoint picker, and what the picker's Role grants.
    *(
        ("inference.networking.k8s.io", "inferencepools", verb)
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ),
    *(
        ("", resource, verb)
        for resource in ("serviceaccounts", "configmaps")
        for verb in ("get", "create", "patch", "delete")
    ),
    *(
        ("rbac.authorization.k8s.io", resource, verb)
        for resource in ("roles", "rolebindings")
        for verb in ("get", "create", "patch", "delete")
    ),
    *(
        ("inference.networking.x-k8s.io", resource, verb)
        for resource in ("inferenceobjectives", "inferencemodelrewrites")
        for verb in ("get", "list", "watch")
    ),
    ("", "pods", "get"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("apps", "replicasets", "list"),
    ("apps", "replicasets", "watch"),
    ("", "events", "create"),
}
CLUSTER_GRANTS = {
    ("", "nodes", "list"),
    ("", "nodes", "watch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}


@pytest.fixture(scope="module")
def defaults() -> list[dict[str, Any]]:
    return render()


@pytest.mark.parametrize("name", [name for name, (_, extra) in VALUE_SETS.items() if not extra])
def test_lint_is_clean(name: str) -> None:
    values, _ = VALUE_SETS[name]
    result = helm("lint", "--strict", str(CHART), *set_flags(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_rendered_objects_validate_against_kubernetes_schemas(name: str) -> None:
    values, extra = VALUE_SETS[name]
    objects = render(values, extra)
    assert objects
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in FOREIGN_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_generated_crd_is_valid() -> None:
    # That the chart and manifests/crd/ ship this very file is tests/unit/test_generated.py's check.
    kubernetes_validate.validate(yaml.safe_load((ROOT / CRD).read_text()), KUBERNETES_VERSION, strict=True)


def test_operator_runs_hardened(defaults: list[dict[str, Any]]) -> None:
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(defaults)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == RELEASE


def test_probes_ports_and_resources(defaults: list[dict[str, Any]]) -> None:
    operator = container(defaults)
    ports = {port["name"]: port["containerPort"] for port in operator["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--liveness=http://0.0.0.0:8080/healthz" in operator["args"]
    assert "--metrics-port=9090" in operator["args"]
    assert operator["resources"]["requests"]
    assert operator["resources"]["limits"]["memory"]
    service = find(defaults, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == find(defaults, "Deployment")["spec"]["selector"]["matchLabels"]


def test_operator_pods_are_never_taken_for_serving_pods(defaults: list[dict[str, Any]]) -> None:
    # The operator watches pods labelled managed-by=gemma-operator as its serving pods.
    labels = find(defaults, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels.get("app.kubernetes.io/managed-by") != "gemma-operator"


def test_the_image_is_the_tag_by_default_and_the_digest_when_pinned(defaults: list[dict[str, Any]]) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(defaults)["image"] == f"ghcr.io/gemma-operator/gemma-operator:{app_version}"
    digest = "sha256:" + "0123456789abcdef" * 4
    pinned = render({"image.repository": "registry.example.com/gemma", "image.tag": "9.9.9", "image.digest": digest})
    assert container(pinned)["image"] == f"registry.example.com/gemma@{digest}"


def test_accelerator_classes_reach_the_operator(defaults: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # The defaults in values are the operator's own built-in classes.
    assert parse_accelerator_classes(values["acceleratorClasses"]) == default_accelerator_classes()
    operator = container(defaults)
    path = next(arg.split("=", 1)[1] for arg in operator["args"] if arg.startswith("--accelerator-classes="))
    mount = next(m for m in operator["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config = find(defaults, "ConfigMap", volume["configMap"]["name"])
    rendered = yaml.safe_load(config["data"][path.rsplit("/", 1)[1]])
    assert parse_accelerator_classes(rendered) == default_accelerator_classes()


def test_upgrade_pacing_and_runtime_images_reach_the_operator_as_flags_it_takes() -> None:
    chart = render({"runtimeImages": "{llamacpp=registry.example.com/llama.cpp:server-b11243}"})
    # The classes file is the ConfigMap's, mounted in the pod (test_accelerator_classes_reach_the_operator).
    arguments = [arg for arg in container(chart)["args"] if not arg.startswith("--accelerator-classes=")]
    options = run_options(parser().parse_args(["run", *arguments]))
    assert dict(options.runtime_images) == {
        (Runtime.LLAMACPP, target): "registry.example.com/llama.cpp:server-b11243"
        for target in (Target.CPU, Target.EDGE)
    }
    assert (options.upgrade_rollouts_per_class, options.upgrade_rollout_timeout) == (1, 600.0)


def test_custom_accelerator_classes_restart_the_operator(defaults: list[dict[str, Any]]) -> None:
    changed = render(
        {
            "acceleratorClasses.classes.gb200.product": "NVIDIA-GB200",
            "acceleratorClasses.classes.gb200.memoryMiB": "189471",
        }
    )
    classes = yaml.safe_load(find(changed, "ConfigMap")["data"]["accelerators.yaml"])
    assert parse_accelerator_classes(classes).classes["gb200"].memory_mi_b == 189471

    def checksum(objects: list[dict[str, Any]]) -> str:
        return str(
            find(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/accelerator-classes"]
        )

    assert checksum(changed) != checksum(defaults)


def test_cluster_role_grants_exactly_what_the_operator_uses(defaults: list[dict[str, Any]]) -> None:
    role = find(defaults, "ClusterRole")
    assert grants(role["rules"]) == NAMESPACED_GRANTS | CLUSTER_GRANTS
    binding = find(defaults, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RELEASE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    # The one Role: the leader election Lease's.
    assert [o["metadata"]["name"] for o in defaults if o["kind"] in ("Role", "RoleBinding")] == [LEADER_ROLE] * 2


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_no_role_can_escalate_or_touch_secrets(name: str) -> None:
    values, extra = VALUE_SETS[name]
    for role in (o for o in render(values, extra) if o["kind"] in ("ClusterRole", "Role")):
        for group, resource, verb in grants(role["rules"]):
            assert "*" not in (group, resource, verb), role["metadata"]["name"]
            assert verb not in ("escalate", "bind", "impersonate", "deletecollection", "update") or (
                resource in ("gemmadeployments/finalizers", "leases")
            )
            # RBAC only as the endpoint picker's namespaced Role and RoleBinding; never cluster-wide ones.
            assert group != "rbac.authorization.k8s.io" or resource in ("roles", "rolebindings")
            # The operator never reads a Secret, not even its metadata (docs/security.md).
            assert resource != "secrets", (role["metadata"]["name"], verb)
            assert resource not in ("pods/exec", "pods/attach", "pods/portforward", "nodes/proxy", "namespaces") or (
                (resource, verb) in (("namespaces", "list"), ("namespaces", "watch"))
            )


def test_namespaced_mode_grants_per_namespace() -> None:
    objects = render({"watchNamespaces": "{ml,research}"})
    args = container(objects)["args"]
    assert [arg for arg in args if arg.startswith("--namespace=")] == ["--namespace=ml", "--namespace=research"]
    cluster_role = find(objects, "ClusterRole")
    # Cluster-wide only what is cluster-scoped: nodes, CRDs, and namespaces for kopf to notice them.
    assert grants(cluster_role["rules"]) == CLUSTER_GRANTS | {("", "namespaces", "list"), ("", "namespaces", "watch")}
    roles = sorted(
        (o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] != LEADER_ROLE),
        key=lambda o: o["metadata"]["namespace"],
    )
    assert [r["metadata"]["namespace"] for r in roles] == ["ml", "research"]
    for role in roles:
        assert grants(role["rules"]) == NAMESPACED_GRANTS
        binding = find(
            [o for o in objects if o["metadata"].get("namespace") == role["metadata"]["namespace"]], "RoleBinding"
        )
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]


def test_two_replicas_one_leader_by_default(defaults: list[dict[str, Any]]) -> None:
    deployment = find(defaults, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    # Rolling, not Recreate: old and new pods may run side by side, since only the Lease's holder runs.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    arguments = [arg for arg in container(defaults)["args"] if not arg.startswith("--accelerator-classes=")]
    options = run_options(parser().parse_args(["run", *arguments]))
    assert options.leader_election_lease == RELEASE
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container(defaults)["env"]}
    assert env == {"POD_ID": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    # The Lease by name only, in the release's namespace; create cannot name the object.
    role = find(defaults, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [RELEASE],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    binding = find(defaults, "RoleBinding")
    assert (binding["roleRef"]["name"], binding["metadata"]["namespace"]) == (LEADER_ROLE, NAMESPACE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    pdb = find(defaults, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [term] = spread["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == deployment["spec"]["selector"]


def test_without_leader_election_one_replica_recreated_and_no_lease() -> None:
    refused = helm("template", RELEASE, str(CHART), "--set", "leaderElection.enabled=false")
    assert refused.returncode != 0
    assert "needs leaderElection.enabled" in refused.stderr
    single = render({"replicaCount": "1", "leaderElection.enabled": "false"})
    assert find(single, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [arg for arg in container(single)["args"] if arg.startswith("--leader-election")]
    assert not [o for o in single if o["kind"] in ("Role", "RoleBinding", "PodDisruptionBudget")]
    named = render({"leaderElection.leaseName": "gemma-leader"})
    assert "--leader-election-lease=gemma-leader" in container(named)["args"]
    assert find(named, "Role")["rules"][0]["resourceNames"] == ["gemma-leader"]
    node_pool = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    own_affinity = render({f"{node_pool}.nodeSelectorTerms[0].matchExpressions[0].key": "pool"})
    assert "podAntiAffinity" not in find(own_affinity, "Deployment")["spec"]["template"]["spec"]["affinity"]


def test_monitors_select_what_they_should() -> None:
    objects = render({"metrics.serviceMonitor.enabled": "true", "servingMetrics.podMonitor.enabled": "true"})
    service_monitor = find(objects, "ServiceMonitor")
    metrics_service = find(objects, "Service")
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= metrics_service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] == metrics_service["spec"]["ports"][0]["name"]

    # The PodMonitor selects the serving pods the operator renders, on their named port.
    pod_monitor = find(objects, "PodMonitor")
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    for spec in (
        {"model": {"variant": "31b"}},
        {"model": {"variant": "e2b"}},
        {"model": {"family": "gemma-3", "variant": "27b"}},
    ):
        gd = deployment(**spec)
        children = render_children(gd, fitted(gd))
        workload = next(m for m in children if m["kind"] == "Deployment")
        template = workload["spec"]["template"]
        assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
        ports = {port["name"] for c in template["spec"]["containers"] for port in c["ports"]}
        assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
        assert set(pod_monitor["spec"]["podTargetLabels"]) <= set(template["metadata"]["labels"])
        # A GemmaDeployment's own ServiceMonitor copies the same pod labels, so dashboards read either alike.
        own = render_children(deployment(**spec, monitoring={"serviceMonitor": True}), fitted(gd))
        service_monitor_of_gd = next(m for m in own if m["kind"] == "ServiceMonitor")
        assert service_monitor_of_gd["spec"]["podTargetLabels"] == pod_monitor["spec"]["podTargetLabels"]

    scoped = render({"servingMetrics.podMonitor.enabled": "true", "watchNamespaces": "{ml}"})
    assert find(scoped, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--set", "replicaCount=-1"], "/replicaCount"),
        (["--set", "leaderElection.leaseName=Leader"], "/leaderElection/leaseName"),
        (["--set", "podDisruptionBudget.minAvailable=-1"], "/podDisruptionBudget/minAvailable"),
        (["--set", "watchNamespace=ml"], "watchNamespace"),
        (["--set", "watchNamespaces={ML}"], "/watchNamespaces/0"),
        (["--set", "acceleratorClasses.classes.h100.memoryMiB=0"], "/acceleratorClasses/classes/h100/memoryMiB"),
        (["--set", "acceleratorClasses.classes.h100.gpus=8"], "gpus"),
        (["--set", "logFormat=xml"], "/logFormat"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "image.digest=latest"], "/image/digest"),
        (["--set", "dashboard.labelValue=not a label"], "/dashboard/labelValue"),
        (["--set", "dashboard.label=two words"], "/dashboard/label"),
        (["--set", "dashboard.namespace=Monitoring"], "/dashboard/namespace"),
        (["--set", "runtimeImages={llama=x/y:z}"], "/runtimeImages/0"),
        (["--set", "upgrades.rolloutsPerClass=0"], "/upgrades/rolloutsPerClass"),
    ],
)
def test_values_schema_rejects_mistakes(flags: list[str], complaint: str) -> None:
    result = helm("template", RELEASE, str(CHART), *flags)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_the_kustomize_base_lists_files_that_exist() -> None:
    # Its operator.yaml is the chart rendered: tests/unit/test_generated.py compares it.
    kustomization = yaml.safe_load((ROOT / "manifests" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (ROOT / "manifests" / resource).is_file(), resource
    namespace = yaml.safe_load((ROOT / "manifests" / "namespace.yaml").read_text())
    assert namespace["metadata"]["name"] == NAMESPACE
    kubernetes_validate.validate(namespace, KUBERNETES_VERSION, strict=True)


def test_endpoints_bind_the_configured_addresses(defaults: list[dict[str, Any]]) -> None:
    args = container(defaults)["args"]
    assert "--metrics-address=0.0.0.0" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    changed = container(render({"metrics.address": "10.0.0.1", "health.address": "127.0.0.1"}))["args"]
    assert "--metrics-address=10.0.0.1" in changed
    assert "--liveness=http://127.0.0.1:8080/healthz" in changed


def test_network_policy_admits_metrics_from_the_selected_scrapers_and_health_from_the_cluster(
    defaults: list[dict[str, Any]],
) -> None:
    policy = find(defaults, "NetworkPolicy")
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    spec = policy["spec"]
    assert spec["podSelector"] == find(defaults, "Deployment")["spec"]["selector"]
    # Ingress only: the operator's own egress (API server, serving pods) is left alone.
    assert spec["policyTypes"] == ["Ingress"]
    by_port = {rule["ports"][0]["port"]: rule for rule in spec["ingress"]}
    assert set(by_port) == {"metrics", "health"}
    assert all(len(rule["ports"]) == 1 for rule in spec["ingress"])
    # Health: every pod in the cluster. The kubelet's probes come from the node, which Kubernetes always admits.
    assert by_port["health"]["from"] == [{"namespaceSelector": {}}]
    metrics_from = by_port["metrics"]["from"]
    assert metrics_from == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}, "podSelector": {}}
    ]
    scrapers = render(
        {
            "networkPolicy.metrics.namespaceSelector.matchLabels.team": "obs",
            "networkPolicy.metrics.podSelector.matchLabels.app": "prometheus",
        }
    )
    (peer,) = find(scrapers, "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"]["team"] == "obs"
    assert peer["podSelector"] == {"matchLabels": {"app": "prometheus"}}
    assert not [o for o in render({"networkPolicy.enabled": "false"}) if o["kind"] == "NetworkPolicy"]
