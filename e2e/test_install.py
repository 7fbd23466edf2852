"""Installing on the local plane: helm install/upgrade/uninstall, kubectl -k, least-privilege RBAC, kstatus.

There is no container runtime: the chart's operator pod is "Running" under kwok but nothing runs
in it. So the operator runs here as a local process under the chart's ServiceAccount identity
(a TokenRequest token), which proves the chart's RBAC is enough, and `kubectl auth can-i` proves
it is no more than that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gemma import Gemma, manifest
from harness.config import ROOT
from harness.namespaces import create_namespace, delete_namespace, unique_name
from harness.plane import Plane
from harness.simulator import ServingSim
from harness.tools import helm, kubectl
from harness.waiting import condition_status, wait_for
from install import (
    ARGOCD_FOR_KSTATUS,
    Release,
    accelerator_classes,
    argocd_health,
    can_i,
    install,
    kstatus,
    service_account_kubeconfig,
)
from kubelet import report_config_error, report_running
from operator_process import CRD, OperatorProcess, operator_env

pytestmark = pytest.mark.e2e

GEMMA = "gemmadeployments.serving.gemma.dev"
# What the operator needs (reconcile/handlers.py, reconcile/kube.py, kopf), as `kubectl auth can-i` asks.
NAMESPACED_NEEDS = [
    *((verb, GEMMA) for verb in ("get", "list", "watch", "patch")),
    ("patch", f"{GEMMA}/status"),
    ("update", f"{GEMMA}/finalizers"),
    *((verb, "deployments.apps") for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *((verb, "services") for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *((verb, "poddisruptionbudgets.policy") for verb in ("get", "list", "watch", "create", "patch", "delete")),
    *((verb, "servicemonitors.monitoring.coreos.com") for verb in ("get", "create", "patch", "delete")),
    *((verb, "persistentvolumeclaims") for verb in ("get", "create", "patch")),
    # spec.routing.inferencePool: the pool, the endpoint picker's objects, and what its Role grants.
    *((verb, "inferencepools.inference.networking.k8s.io") for verb in ("get", "list", "watch", "create", "patch")),
    ("delete", "inferencepools.inference.networking.k8s.io"),
    *((verb, kind) for kind in ("serviceaccounts", "configmaps") for verb in ("get", "create", "patch", "delete")),
    *(
        (verb, f"{kind}.rbac.authorization.k8s.io")
        for kind in ("roles", "rolebindings")
        for verb in ("get", "create", "patch", "delete")
    ),
    *(
        (verb, f"{kind}.inference.networking.x-k8s.io")
        for kind in ("inferenceobjectives", "inferencemodelrewrites")
        for verb in ("get", "list", "watch")
    ),
    ("get", "pods"),
    ("list", "pods"),
    ("watch", "pods"),
    ("list", "replicasets.apps"),
    ("watch", "replicasets.apps"),
    ("create", "events"),
]
CLUSTER_NEEDS = [
    ("list", "nodes"),
    ("watch", "nodes"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
]
NEVER = [
    ("*", "*"),
    ("delete", "nodes"),
    ("patch", "nodes"),
    ("get", "nodes/proxy"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("impersonate", "serviceaccounts"),
    ("create", "pods/exec"),
    ("get", "pods/exec"),
    ("create", "pods/portforward"),
    ("create", "pods"),
    ("delete", "pods"),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("delete", GEMMA),
    ("update", "deployments.apps"),
    ("update", "roles.rbac.authorization.k8s.io"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "serviceaccounts/token"),
]
# RBAC's words for a missing permission (`User "..." cannot list resource "pods" ...`), and kopf's.
# Not any 403: creating an Event in a namespace being deleted is refused with 403 too.
DENIED = re.compile(r"cannot [a-z]+ resource|Not enough permissions")


def restricted_namespace(plane: Plane, prefix: str) -> str:
    """A fresh namespace that enforces the restricted Pod Security Standard, as manifests/namespace.yaml does."""
    name = create_namespace(plane.api, prefix)
    kubectl(plane, "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    return name


@pytest.fixture(scope="module")
def release(plane: Plane) -> Iterator[tuple[Release, str]]:
    """The chart installed cluster-wide, and the NOTES helm printed."""
    installed = Release(unique_name("gemma-operator"), restricted_namespace(plane, "gemma-install"))
    notes = install(plane, installed)
    yield installed, notes
    helm(plane, "uninstall", installed.name, "-n", installed.namespace, "--wait", check=False)
    delete_namespace(plane.api, installed.namespace)


@pytest.fixture(scope="module")
def sole_operator(operator: OperatorProcess) -> Iterator[None]:
    """Pause the suite's own (admin) operator: with two operators reconciling one object, a Ready
    GemmaDeployment would prove nothing about the chart's RBAC."""
    operator.stop()
    yield
    operator.start()


def operator_as(plane: Plane, installed: Release, tmp_path: Path, *args: str) -> OperatorProcess:
    """`gemma-operator run` as the chart's ServiceAccount, with the accelerator classes the chart rendered."""
    kubeconfig = service_account_kubeconfig(plane, installed, tmp_path / "operator.kubeconfig")
    classes = accelerator_classes(plane, installed, tmp_path / "accelerators.yaml")
    env = operator_env(plane.env) | {"KUBECONFIG": str(kubeconfig)}
    return OperatorProcess(env, tmp_path / "operator.log", args=("--accelerator-classes", str(classes), *args))


def operator_args(plane: Plane, installed: Release) -> list[str]:
    deployment = kubectl(plane, "get", "deployment", installed.name, "-n", installed.namespace, "-o", "yaml").stdout
    args: list[str] = yaml.safe_load(deployment)["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_helm_install_creates_a_valid_restricted_operator(plane: Plane, release: tuple[Release, str]) -> None:
    installed, notes = release
    assert f"installed in namespace {installed.namespace}" in notes
    assert "watching every namespace" in notes
    for kind in ("serviceaccount", "configmap", "service", "deployment"):
        kubectl(
            plane,
            "get",
            kind,
            installed.name if kind != "service" else f"{installed.name}-metrics",
            "-n",
            installed.namespace,
        )
    for kind in ("clusterrole", "clusterrolebinding"):
        kubectl(plane, "get", kind, installed.name)
    kubectl(plane, "get", "crd", GEMMA)
    # The pod passed restricted Pod Security admission (no kubelet runs it, but it was admitted).
    pods = kubectl(
        plane,
        "get",
        "pods",
        "-n",
        installed.namespace,
        "-l",
        f"app.kubernetes.io/instance={installed.name}",
        "-o",
        "name",
    )
    assert pods.stdout.strip()
    assert kstatus(plane, installed.namespace, "deployment", installed.name)["status"] == "Current"


def test_the_service_account_may_do_what_the_operator_needs(plane: Plane, release: tuple[Release, str]) -> None:
    installed, _ = release
    missing = [
        (verb, resource)
        for verb, resource in NAMESPACED_NEEDS
        if not can_i(plane, installed, verb, resource, "default")
    ]
    missing += [(verb, resource) for verb, resource in CLUSTER_NEEDS if not can_i(plane, installed, verb, resource)]
    assert not missing


def test_the_service_account_may_do_nothing_more(plane: Plane, release: tuple[Release, str]) -> None:
    installed, _ = release
    allowed = [
        (verb, resource) for verb, resource in NEVER if can_i(plane, installed, verb, resource, installed.namespace)
    ]
    allowed += [(verb, resource) for verb, resource in NEVER if can_i(plane, installed, verb, resource)]
    assert not allowed


def test_the_operator_runs_on_the_chart_rbac_and_kstatus_reads_its_status(
    plane: Plane, release: tuple[Release, str], sole_operator: None, servingsim: ServingSim, tmp_path: Path
) -> None:
    installed, _ = release
    assert "--accelerator-classes=/etc/gemma-operator/accelerators.yaml" in operator_args(plane, installed)
    process = operator_as(plane, installed, tmp_path)
    namespace = create_namespace(plane.api, "t-chart-identity")
    servingsim.serve_llamacpp(namespace, "simulated")  # a rollout held back by a pod that is loading
    gemma = Gemma(plane.api, namespace)
    process.start()
    try:
        # Ready: kstatus Current, Argo CD Healthy.
        gemma.create(manifest("chat", model={"variant": "e2b"}))
        assert_health(plane, namespace, "chat", gemma.wait("chat", "Ready", timeout=120), "Current")

        # Two replicas get a PodDisruptionBudget, deleted again at one replica.
        gemma.create(manifest("pair", model={"variant": "e2b"}, replicas=2, serving={"verify": False}))
        wait_for(lambda: gemma.children()["PodDisruptionBudget"] == ["pair"], timeout=60, message="the PDB")
        gemma.patch_spec("pair", {"replicas": 1})
        wait_for(lambda: not gemma.children()["PodDisruptionBudget"], timeout=60, message="the PDB deleted")

        # Rolling out: a new generation whose smoke check cannot pass yet is InProgress / Progressing.
        for pod in gemma.pods("chat"):
            servingsim.set_load(namespace, pod.metadata.name, loading=True)
        generation = gemma.patch_spec("chat", {"autoscaling": {"maxReplicas": 2}})["metadata"]["generation"]
        rolling = gemma.wait("chat", "Reconciling", timeout=60, generation=generation)
        assert condition_status(rolling, "Ready") == "False"
        assert_health(plane, namespace, "chat", rolling, "InProgress")

        # Stalled: a token Secret that does not exist yet (the kubelet says so; the operator, which may not
        # read Secrets, learns it from the pod) is Failed / Degraded, and lifts once it does.
        gemma.create(manifest("gated", model={"variant": "e2b", "tokenSecretRef": {"name": "hf-token"}}))
        (pod,) = wait_for(lambda: gemma.pods("gated"), timeout=60, message="the gated pod")
        report_config_error(plane.api, namespace, pod, 'secret "hf-token" not found')
        stalled = gemma.wait("gated", "Stalled", timeout=60)
        assert next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")["reason"] == "SecretNotFound"
        assert_health(plane, namespace, "gated", stalled, "Failed")
        secret: Any = {"metadata": {"name": "hf-token"}, "stringData": {"token": "hf_e2e_placeholder"}}
        client.CoreV1Api(plane.api).create_namespaced_secret(namespace, secret)
        report_running(plane.api, namespace, pod)
        assert_health(plane, namespace, "gated", gemma.wait("gated", "Ready", timeout=150), "Current")

        # A ServiceMonitor without its CRD: the API says 404 (not 403), and the operator says so.
        gemma.create(manifest("monitored", model={"variant": "e2b"}, monitoring={"serviceMonitor": True}))
        gemma.wait("monitored", "Ready", timeout=120)
        assert "ServiceMonitorUnavailable" in {event.reason for event in gemma.events("monitored")}

        # The weight cache: a claim the operator creates.
        gemma.create(manifest("cached", model={"variant": "e2b"}, serving={"cache": {"size": "20Gi"}}))
        claims = wait_for(
            lambda: (
                client.CoreV1Api(plane.api)
                .list_namespaced_persistent_volume_claim(namespace, label_selector="app.kubernetes.io/instance=cached")
                .items
            ),
            timeout=60,
            message="the cache claim",
        )
        assert len(claims) == 1

        log = process.log_text()
        assert not DENIED.findall(log), [line for line in log.splitlines() if DENIED.search(line)]
        for name in ("chat", "pair", "gated", "monitored", "cached"):
            assert "ApiError" not in {event.reason for event in gemma.events(name)}, name
    finally:
        process.stop()
        delete_namespace(plane.api, namespace)
        servingsim.serve_llamacpp(namespace, "real")


def assert_health(plane: Plane, namespace: str, name: str, live: dict[str, Any], expected: str) -> None:
    """kstatus (Flux) calls the live object `expected`, and the Argo CD health check agrees."""
    computed = kstatus(plane, namespace, "gemmadeployments", name)
    assert computed["status"] == expected, computed
    assert argocd_health(plane, live) == ARGOCD_FOR_KSTATUS[expected]


def test_namespaced_install_sees_only_its_namespaces(plane: Plane, sole_operator: None, tmp_path: Path) -> None:
    watched = create_namespace(plane.api, "t-watched")
    unwatched = create_namespace(plane.api, "t-unwatched")
    installed = Release(unique_name("gemma-operator-ns"), restricted_namespace(plane, "gemma-install-ns"))
    try:
        notes = install(plane, installed, "--set", f"watchNamespaces={{{watched}}}")
        assert f"watching namespaces {watched}" in notes
        assert f"--namespace={watched}" in operator_args(plane, installed)
        for verb, resource in NAMESPACED_NEEDS:
            assert can_i(plane, installed, verb, resource, watched), (verb, resource)
            assert not can_i(plane, installed, verb, resource, unwatched), (verb, resource)
        for verb, resource in [*CLUSTER_NEEDS, ("list", "namespaces"), ("watch", "namespaces")]:
            assert can_i(plane, installed, verb, resource), (verb, resource)

        process = operator_as(plane, installed, tmp_path, "--namespace", watched)
        process.start()
        try:
            Gemma(plane.api, watched).create(manifest("chat", model={"variant": "e2b"}))
            Gemma(plane.api, unwatched).create(manifest("ignored", model={"variant": "e2b"}))
            ready = Gemma(plane.api, watched).wait("chat", "Ready", timeout=120)
            assert ready["status"]["readyReplicas"] == 1
            assert "status" not in Gemma(plane.api, unwatched).get("ignored")
            log = process.log_text()
            assert not DENIED.findall(log), [line for line in log.splitlines() if DENIED.search(line)]
        finally:
            process.stop()
    finally:
        helm(plane, "uninstall", installed.name, "-n", installed.namespace, "--wait", check=False)
        for namespace in (watched, unwatched, installed.namespace):
            delete_namespace(plane.api, namespace)


def test_helm_upgrade_then_uninstall(plane: Plane) -> None:
    installed = Release(unique_name("gemma-operator-life"), restricted_namespace(plane, "gemma-lifecycle"))
    try:
        install(plane, installed)
        before = deployment_of(plane, installed)
        helm(
            plane, "upgrade", installed.name, str(ROOT / "charts" / "gemma-operator"), "-n", installed.namespace,
            "--reuse-values", "--wait", "--timeout", "2m", "--set", "logFormat=plain",
            "--set", "acceleratorClasses.classes.gb200.product=NVIDIA-GB200",
            "--set", "acceleratorClasses.classes.gb200.memoryMiB=189471",
        )  # fmt: skip
        after = deployment_of(plane, installed)
        assert "--log-format=plain" in after["spec"]["template"]["spec"]["containers"][0]["args"]
        annotation = "checksum/accelerator-classes"
        assert (
            after["spec"]["template"]["metadata"]["annotations"][annotation]
            != before["spec"]["template"]["metadata"]["annotations"][annotation]
        )
        classes = kubectl(plane, "get", "configmap", installed.name, "-n", installed.namespace, "-o", "yaml").stdout
        assert "NVIDIA-GB200" in classes
        history = helm(plane, "history", installed.name, "-n", installed.namespace, "-o", "yaml").stdout
        assert [entry["status"] for entry in yaml.safe_load(history)] == ["superseded", "deployed"]

        helm(plane, "uninstall", installed.name, "-n", installed.namespace, "--wait")
        for kind, name, namespace in [
            ("deployment", installed.name, installed.namespace),
            ("serviceaccount", installed.name, installed.namespace),
            ("configmap", installed.name, installed.namespace),
            ("service", f"{installed.name}-metrics", installed.namespace),
            ("clusterrole", installed.name, None),
            ("clusterrolebinding", installed.name, None),
        ]:
            where = ["-n", namespace] if namespace else []
            gone = kubectl(plane, "get", kind, name, *where, "--ignore-not-found", "-o", "name")
            assert not gone.stdout.strip(), f"{kind} {name} survived helm uninstall"
        # Helm never deletes a CRD from crds/: every GemmaDeployment (and its workload) stays.
        kubectl(plane, "get", "crd", GEMMA)
    finally:
        helm(plane, "uninstall", installed.name, "-n", installed.namespace, check=False)
        delete_namespace(plane.api, installed.namespace)


def deployment_of(plane: Plane, installed: Release) -> dict[str, Any]:
    text = kubectl(plane, "get", "deployment", installed.name, "-n", installed.namespace, "-o", "yaml").stdout
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def test_kubectl_apply_k_installs_and_deletes(plane: Plane) -> None:
    kubectl(plane, "apply", "-k", str(ROOT / "manifests"))
    try:
        kubectl(plane, "rollout", "status", "deployment/gemma-operator", "-n", "gemma-system", "--timeout", "90s")
        assert kstatus(plane, "gemma-system", "deployment", "gemma-operator")["status"] == "Current"
        labels = kubectl(plane, "get", "namespace", "gemma-system", "-o", "jsonpath={.metadata.labels}").stdout
        assert '"pod-security.kubernetes.io/enforce":"restricted"' in labels
        assert kubectl(plane, "get", "pods", "-n", "gemma-system", "-o", "name").stdout.strip()
        installed = Release("gemma-operator", "gemma-system")
        # As a person would check it.
        as_operator = f"--as={installed.user}"
        assert kubectl(plane, "auth", "can-i", "list", "nodes", as_operator, check=False).stdout.strip() == "yes"
        assert kubectl(plane, "auth", "can-i", "delete", "nodes", as_operator, check=False).stdout.strip() == "no"
        assert can_i(plane, installed, "list", "nodes")
        assert can_i(plane, installed, "patch", f"{GEMMA}/status", "default")
        assert not can_i(plane, installed, "list", "secrets", "default")
        assert (ROOT / "manifests" / "crd" / CRD.name).read_text() == CRD.read_text()
    finally:
        # Everything but the CRD: deleting it would delete every GemmaDeployment on the plane,
        # other suites' included. (A user's `kubectl delete -k manifests/` deletes it too.)
        rendered = kubectl(plane, "kustomize", str(ROOT / "manifests")).stdout
        kept = [doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] != "CustomResourceDefinition"]
        kubectl(
            plane,
            "delete",
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "120s",
            "-f",
            "-",
            input=yaml.safe_dump_all(kept),
            timeout=150,
        )
    assert not kubectl(plane, "get", "namespace", "gemma-system", "--ignore-not-found", "-o", "name").stdout.strip()


def test_leader_election_runs_on_the_chart_rbac(
    plane: Plane, release: tuple[Release, str], sole_operator: None, tmp_path: Path
) -> None:
    """The operator, as the chart's ServiceAccount and with the chart's --leader-election-lease, takes the Lease in the
    release's namespace (the chart's Role: create, then get and update by name) and reconciles."""
    installed, _ = release
    lease = next(
        arg.split("=", 1)[1] for arg in operator_args(plane, installed) if arg.startswith("--leader-election-lease=")
    )
    namespace = create_namespace(plane.api, "t-leader")
    process = operator_as(plane, installed, tmp_path, "--leader-election-lease", lease,
                          "--leader-election-namespace", installed.namespace)  # fmt: skip
    process.start()
    try:
        Gemma(plane.api, namespace).create(manifest("chat", model={"variant": "e2b"}))
        Gemma(plane.api, namespace).wait("chat", "Ready", timeout=120)
        held: Any = client.CoordinationV1Api(plane.api).read_namespaced_lease(lease, installed.namespace)
        assert held.spec.holder_identity
        assert held.spec.lease_duration_seconds == 15
        log = process.log_text()
        assert not DENIED.findall(log), [line for line in log.splitlines() if DENIED.search(line)]
    finally:
        process.stop()
        delete_namespace(plane.api, namespace)
    # A SIGTERM released it.
    released: Any = client.CoordinationV1Api(plane.api).read_namespaced_lease(lease, installed.namespace)
    assert not released.spec.holder_identity
