"""Who wrote what, from the API server's own metrics.

``apiserver_request_total`` counts requests by verb and resource but not by client. To count one
client's requests, the client runs as its own ServiceAccount, and two FlowSchemas (API Priority
and Fairness) match that ServiceAccount: one its writes, one its reads. The API server then
counts them in ``apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}``. The
FlowSchemas use the ``exempt`` priority level, so they never queue or throttle the client.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.kube import AsyncKube, load_kubeconfig, write_token_kubeconfig

SYSTEM_NAMESPACE = "gemma-bench-system"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
METRIC_WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
FLOW_API = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas"


@dataclass(frozen=True)
class Client:
    """A ServiceAccount whose requests are counted: its kubeconfig and its two FlowSchemas."""

    name: str
    kubeconfig: Path

    @property
    def writes_schema(self) -> str:
        return f"bench-{self.name}-writes"

    @property
    def reads_schema(self) -> str:
        return f"bench-{self.name}-reads"


def _flow_schema(name: str, account: str, verbs: tuple[str, ...], precedence: int) -> dict[str, Any]:
    rule = {"verbs": list(verbs), "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": precedence,
            "rules": [
                {
                    "subjects": [
                        {"kind": "ServiceAccount", "serviceAccount": {"name": account, "namespace": SYSTEM_NAMESPACE}}
                    ],
                    "resourceRules": [rule],
                    "nonResourceRules": [{"verbs": list(verbs), "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


async def counted_client(admin: AsyncKube, name: str, folder: Path) -> Client:
    """A cluster-admin ServiceAccount ``name``, its FlowSchemas, and a kubeconfig with a fresh token."""
    await admin.create("/api/v1/namespaces", {"metadata": {"name": SYSTEM_NAMESPACE}}, exist_ok=True)
    await admin.create(
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts", {"metadata": {"name": name}}, exist_ok=True
    )
    await admin.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": f"bench-{name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": SYSTEM_NAMESPACE}],
        },
        exist_ok=True,
    )
    client = Client(name, folder / f"{name}.kubeconfig")
    await admin.create(FLOW_API, _flow_schema(client.writes_schema, name, WRITE_VERBS, 50), exist_ok=True)
    await admin.create(FLOW_API, _flow_schema(client.reads_schema, name, READ_VERBS, 51), exist_ok=True)
    token = await admin.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
    )
    write_token_kubeconfig(client.kubeconfig, admin.credentials, name, token["status"]["token"])
    return client


@dataclass(frozen=True)
class Snapshot:
    """Counters read from the API server's /metrics at one moment."""

    by_schema: Counter[str]
    by_verb: Counter[tuple[str, str, str]]

    def writes(self, client: Client) -> int:
        return self.by_schema[client.writes_schema]

    def reads(self, client: Client) -> int:
        return self.by_schema[client.reads_schema]

    def __sub__(self, before: Snapshot) -> Snapshot:
        return Snapshot(self.by_schema - before.by_schema, self.by_verb - before.by_verb)


async def snapshot(admin: AsyncKube) -> Snapshot:
    text = await admin.text("/metrics")
    by_schema: Counter[str] = Counter()
    by_verb: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "apiserver_flowcontrol_dispatched_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    by_schema[sample.labels.get("flow_schema", "")] += int(sample.value)
        elif family.name == "apiserver_request":
            for sample in family.samples:
                labels = sample.labels
                if sample.name.endswith("_total") and labels.get("verb") in METRIC_WRITE_VERBS:
                    key = (labels["verb"], labels.get("resource", ""), labels.get("subresource", ""))
                    by_verb[key] += int(sample.value)
    return Snapshot(by_schema, by_verb)


def operator_write_breakdown(delta: Snapshot) -> dict[str, int]:
    """Writes by verb/resource[/subresource] that only the operator makes: applies and GemmaDeployment writes."""
    return {
        "/".join(part for part in key if part): count
        for key, count in sorted(delta.by_verb.items())
        if count and (key[0] == "APPLY" or key[1] == "gemmadeployments")
    }


def admin_kube(kubeconfig: Path, limit: int = 64) -> AsyncKube:
    return AsyncKube(load_kubeconfig(kubeconfig), limit=limit)
