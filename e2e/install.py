"""Installing the operator on the local plane as users do: helm, kustomize, and the chart's ServiceAccount identity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from harness.config import ROOT
from harness.plane import Plane
from harness.tools import gemma_plane, helm, kubectl

CHART = ROOT / "charts" / "gemma-operator"
HEALTH_LUA = ROOT / "manifests" / "gitops" / "argocd" / "health.lua"
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
