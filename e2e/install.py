"""Installing the operator on the local plane as users do: helm, kustomize, and the chart's ServiceAccount identity."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from harness.config import ROOT
from harness.plane import Plane
from harness.tools import gemma_plane, helm, kubectl
from operator_process import OperatorProcess

CHART = ROOT / "charts" / "gemma-operator"
HEALTH_LUA = ROOT / "manifests" / "gitops" / "argocd" / "health.lua"
# The flags of `gemma-operator run` that bind a port: OperatorProcess binds them on loopback ports of its own.
BOUND_LOCALLY = ("--liveness", "--metrics-port", "--metrics-address")
# What Argo CD would say for each kstatus status (kstatus Terminating has no Argo CD twin).
ARGOCD_FOR_KSTATUS = {"Current": "Healthy", "InProgress": "Progressing", "Failed": "Degraded"}


def kstatus(plane: Plane, namespace: str, resource: str, name: str) -> dict[str, str]:
    """kstatus (sigs.k8s.io/cli-utils) of a live object, as Flux computes it: {"status": ..., "message": ...}."""
    out = gemma_plane(plane, "kstatus", "--kubeconfig", str(plane.kubeconfig), "-n", namespace, resource, name)
    result: dict[str, str] = json.loads(out.stdout)
    return result


def argocd_health(plane: Plane, obj: dict[str, Any]) -> str:
    """The Argo CD health check (manifests/gitops/argocd/health.lua) on a live object, in Argo CD's gopher-lua."""
    out = gemma_plane(plane, "argocd-health", str(HEALTH_LUA), input=json.dumps([obj]))
    [answer] = json.loads(out.stdout)
    assert "error" not in answer, f"health.lua raised in gopher-lua: {answer['error']}"
    return str(answer["status"])


@dataclass(frozen=True)
class Release:
    """A helm release of the chart, and the ServiceAccount its operator runs as."""

    name: str
    namespace: str

    @property
    def service_account(self) -> str:
        return self.name  # release names here contain the chart's name, so the full name is the release name

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def install(plane: Plane, release: Release, *flags: str) -> str:
    """helm install, waiting until every object is ready (kstatus, Helm 4's default); the NOTES come back."""
    return helm(
        plane, "install", release.name, str(CHART), "-n", release.namespace, "--wait", "--timeout", "2m", *flags
    ).stdout


def can_i(plane: Plane, release: Release, verb: str, resource: str, namespace: str | None = None) -> bool:
    """What `kubectl auth can-i VERB RESOURCE --as=<ServiceAccount>` asks: a SubjectAccessReview for the
    release's ServiceAccount, with the groups its tokens carry. RESOURCE is `plural[.group][/subresource]`,
    and a type the API server does not serve (ServiceMonitor without its CRD) is asked about all the same.
    """
    kind, _, subresource = resource.partition("/")
    plural, _, group = kind.partition(".")
    attributes = {"verb": verb, "resource": plural, "group": group, "subresource": subresource}
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}", "system:authenticated"]
    review: Any = {
        "spec": {
            "user": release.user,
            "groups": groups,
            "resourceAttributes": attributes | ({"namespace": namespace} if namespace else {}),
        }
    }
    answer = client.AuthorizationV1Api(plane.api).create_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)


def service_account_kubeconfig(plane: Plane, release: Release, path: Path) -> Path:
    """A kubeconfig that authenticates as the release's ServiceAccount, with a token from the TokenRequest API."""
    token = kubectl(plane, "create", "token", release.service_account, "-n", release.namespace, "--duration", "2h")
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": release.user, "user": {"token": token.stdout.strip()}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": release.user}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def accelerator_classes(plane: Plane, release: Release, path: Path) -> Path:
    """The accelerator classes the chart rendered into its ConfigMap, as the operator's pod would read them."""
    data = kubectl(plane, "get", "configmap", release.name, "-n", release.namespace, "-o", "jsonpath={.data}").stdout
    path.write_text(json.loads(data)["accelerators.yaml"])
    return path


def chart_operator(plane: Plane, release: Release, workdir: Path, env: Mapping[str, str]) -> OperatorProcess:
    """The release's operator Deployment as a local process, as its pod would run: the container's args and
    environment as the live Deployment renders them (whatever flags a chart version adds), the ServiceAccount's
    identity, and its mounted ConfigMaps as local files. Only the flags that bind a port are the process's own.
    `env` says which code runs (its PYTHONPATH). A volume or variable source it cannot stand in for fails loudly."""
    deployment = json.loads(
        kubectl(plane, "get", "deployment", release.name, "-n", release.namespace, "-o", "json").stdout
    )
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == release.service_account, pod_spec["serviceAccountName"]
    [container] = pod_spec["containers"]
    assert "command" not in container, "the image's entrypoint is `gemma-operator run`: only args are passed"
    local_dirs = _local_volumes(plane, release, pod_spec, container, workdir / "volumes")
    args: list[str] = []
    for arg in container.get("args") or []:
        flag, _, value = arg.partition("=")
        if flag in BOUND_LOCALLY:
            assert value, f"{arg}: the chart passes its flags as --flag=value"
            continue
        mount = max((path for path in local_dirs if value == path or value.startswith(f"{path}/")), key=len, default="")
        if mount:
            value = str(local_dirs[mount]) + value[len(mount) :]
        args.append(f"{flag}={value}" if value else flag)
    variables = _environment(plane, release, deployment, container)
    kubeconfig = service_account_kubeconfig(plane, release, workdir / "operator.kubeconfig")
    return OperatorProcess(
        {**env, **variables, "KUBECONFIG": str(kubeconfig)}, workdir / "operator.log", args=tuple(args)
    )


def _local_volumes(
    plane: Plane, release: Release, pod_spec: Mapping[str, Any], container: Mapping[str, Any], root: Path
) -> dict[str, Path]:
    """Each mount path of the container, and the local directory that stands in for it: a ConfigMap's keys as
    files, an emptyDir empty."""
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes") or []}
    local: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        directory = root / mount["name"]
        directory.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            data = kubectl(plane, "get", "configmap", name, "-n", release.namespace, "-o", "jsonpath={.data}").stdout
            for key, text in json.loads(data).items():
                (directory / key).write_text(text)
        else:
            assert "emptyDir" in volume, f"the operator mounts volume {volume}, which the test cannot stand in for"
        local[mount["mountPath"]] = directory
    return local


def _environment(
    plane: Plane, release: Release, deployment: Mapping[str, Any], container: Mapping[str, Any]
) -> dict[str, str]:
    """The container's variables; one from a field of its pod (the downward API) read from a live pod of the
    Deployment (under kwok it exists, though nothing runs in it)."""
    assert not container.get("envFrom"), f"envFrom {container['envFrom']}: the test cannot stand it in"
    selector = ",".join(f"{key}={value}" for key, value in deployment["spec"]["selector"]["matchLabels"].items())
    pods = json.loads(kubectl(plane, "get", "pods", "-n", release.namespace, "-l", selector, "-o", "json").stdout)[
        "items"
    ]
    live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    assert live, f"no pod of deployment {release.name} to read the downward API's fields from"
    pod = max(live, key=lambda pod: str(pod["metadata"]["creationTimestamp"]))
    variables: dict[str, str] = {}
    for variable in container.get("env") or []:
        if "value" in variable or "valueFrom" not in variable:
            variables[variable["name"]] = str(variable.get("value", ""))
            continue
        source = variable["valueFrom"]
        assert set(source) == {"fieldRef"}, f"{variable}: only fieldRef is stood in for"
        value: Any = pod
        for part in source["fieldRef"]["fieldPath"].split("."):
            value = value[part]
        variables[variable["name"]] = str(value)
    return variables
