"""kopf handlers: glue from watch events and indexes to the work queues (loops.py). No decisions are made here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

import kopf

from gemma_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from gemma_operator.fleet import PodClaim, pod_claim
from gemma_operator.planning import NodeInfo, node_from_object
from gemma_operator.planning.inventory import InventoryError
from gemma_operator.reconcile.controller import Cluster
from gemma_operator.reconcile.observe import controller_uid, owned_pods, slim_pod
from gemma_operator.reconcile.packing import pack, unpack
from gemma_operator.reconcile.state import Key
from gemma_operator.rendering import INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER, child_name, label_value

MANAGED: Final = {MANAGED_BY_LABEL: MANAGER}
# Kinds watched only for the operator's own objects: their watches select the label on the API server, so that
# the cluster's other Deployments, ReplicaSets (ten per Deployment's history), Services and budgets are neither
# sent nor decoded. Pods are not among them: the GPUs held per node count every pod.
MANAGED_ONLY: Final = (("apps", "deployments"), ("apps", "replicasets"), "services", ("policy", "poddisruptionbudgets"))
log = logging.getLogger("gemma_operator")
# Events of one GemmaDeployment's children and pods within this window make one reconcile of it.
REFRESH_DELAY_SECONDS: Final = 0.5
INDEXES: Final = (
    "node_inventory",
    "pod_claims",
    "serving_pods",
    "serving_replica_sets",
    "managed_deployments",
    "managed_services",
    "gemma_deployments",
)


class NoChangeDetection(kopf.DiffBaseStorage):
    """No essence to diff: with no create/update handlers (reconciles are level-based), kopf's default
    would still deep-copy every event's whole body, managedFields and all, only to find no handler."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        raise AssertionError("nothing registers create or update handlers")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    memo.loops.start()
    settings.persistence.diffbase_storage = NoChangeDetection()
    # Events only for what a person must act on; kopf's per-handler chatter would cost a write each.
    settings.posting.level = logging.WARNING
    # A watch that silently dies must be noticed and restarted.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    for resource in MANAGED_ONLY:
        settings.watching.label_selectors[resource] = f"{MANAGED_BY_LABEL}={MANAGER}"


# --- indexes: the cluster as the reconciles see it, kept current by watches -------------------


@kopf.index("nodes")
async def node_inventory(*, body: kopf.Body, name: str, **_: Any) -> dict[str, NodeInfo] | None:
    try:
        return {name: node_from_object(body)}
    except InventoryError as error:
        log.warning("ignoring node %s: %s", name, error)
        return None


# What every pod bound to a node holds there, by node: free GPUs for placement hints, and the fleet gauges.
@kopf.index("pods")
async def pod_claims(*, body: kopf.Body, **_: Any) -> dict[str, PodClaim] | None:
    claim = pod_claim(body)
    return {claim.node: claim} if claim is not None and claim.node else None


@kopf.index("pods", labels=MANAGED)
async def serving_pods(
    *, body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", labels.get(INSTANCE_LABEL, "")): slim_pod(body)}


# Which ReplicaSets each Deployment controls, by uid: a pod counts only if one of its Deployment's made it.
@kopf.index("apps", "v1", "replicasets", labels=MANAGED)
async def serving_replica_sets(
    *, meta: kopf.Meta, namespace: str | None, uid: str | None, **_: Any
) -> dict[tuple[str, str], str] | None:
    deployment = controller_uid(meta)
    return {(namespace or "", deployment): uid or ""} if deployment else None


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    await memo.loops.stop()


def _child(body: kopf.Body) -> str:
    """The child as reconciles compare it, without managedFields (the largest part, and never compared)."""
    metadata = {key: value for key, value in body.metadata.items() if key != "managedFields"}
    return pack(
        {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": metadata,
            "spec": dict(body.spec),
            "status": dict(body.status),
        }
    )


# The live children, so that reconciles triggered by pod and child events need no GET.
@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def managed_deployments(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, str]:
    return {(namespace or "", name): _child(body)}


@kopf.index("services", labels=MANAGED)
async def managed_services(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, str]:
    return {(namespace or "", name): _child(body)}


# The metadata reconciles and Events read. managedFields and the annotations that repeat the spec
# (kubectl's last-applied-configuration, kopf's last-handled-configuration) are most of an object's
# size and are not kept: at a thousand GemmaDeployments that is tens of MiB.
ESSENTIAL_METADATA = ("name", "namespace", "uid", "generation", "resourceVersion", "deletionTimestamp", "labels")


def _essence(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of what reconciles read; apiVersion and kind let Events name the object."""
    metadata = body.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {key: metadata[key] for key in ESSENTIAL_METADATA if key in metadata},
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


@kopf.index(GROUP, VERSION, PLURAL)
async def gemma_deployments(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, str]:
    return {(namespace or "", name): pack(_essence(body))}


@kopf.index(GROUP, VERSION, PLURAL)
async def gemma_by_instance(*, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
    return {(namespace or "", label_value(name)): name}


# The indexes of children and GemmaDeployments hold packed JSON, decoded when a reconcile reads it:
# at a thousand GemmaDeployments the parsed copies were the largest part of the operator's memory.
def _unpacked(found: Iterable[str]) -> dict[str, Any] | None:
    first = next(iter(found), None)
    return None if first is None else cast(dict[str, Any], unpack(first))


class IndexView:
    """The cluster as kopf's indexes show it. Every handler hands over its live views of the indexes; workers
    read them on the event loop, when a job starts."""

    def __init__(self) -> None:
        self._indexes: Mapping[str, Any] = {}

    def capture(self, indexes: Mapping[str, Any]) -> None:
        if not self._indexes:
            self._indexes = {index: indexes[index] for index in INDEXES}

    def lookup(self, key: Key) -> tuple[Mapping[str, Any], Cluster] | None:
        """A GemmaDeployment and what the indexes know of the cluster around it; None when it is gone or going."""
        if not self._indexes:
            return None
        gemma = _unpacked(self._indexes["gemma_deployments"].get(key, []))
        if gemma is None or gemma["metadata"].get("deletionTimestamp"):
            return None
        return gemma, self._cluster(gemma)

    def inventory(self) -> tuple[list[NodeInfo], list[PodClaim]]:
        """The nodes, and the claims of the pods bound to them (none before the first event)."""
        if not self._indexes:
            return [], []
        return self._nodes(), [claim for store in self._indexes["pod_claims"].values() for claim in store]

    def _nodes(self) -> list[NodeInfo]:
        return [node for store in self._indexes["node_inventory"].values() for node in store]

    def _cluster(self, gemma: Mapping[str, Any]) -> Cluster:
        indexes = self._indexes
        namespace, name = gemma["metadata"]["namespace"], gemma["metadata"]["name"]
        children = (namespace, child_name(name))
        live = {
            kind: child
            for kind, index in (("Deployment", "managed_deployments"), ("Service", "managed_services"))
            if (child := _unpacked(indexes[index].get(children, []))) is not None
        }
        deployment = live.get("Deployment")
        deployment_uid = (deployment or {}).get("metadata", {}).get("uid", "")
        return Cluster(
            children=live,
            nodes=self._nodes(),
            gpus_in_use={
                node: sum(claim.requests.gpus for claim in store) for node, store in indexes["pod_claims"].items()
            },
            pods=owned_pods(
                list(indexes["serving_pods"].get((namespace, label_value(name)), [])),
                deployment,
                gemma["metadata"].get("uid", ""),
                set(indexes["serving_replica_sets"].get((namespace, deployment_uid), [])),
            ),
        )


# --- the GemmaDeployment's own changes ----------------------------------------------------------


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gemma_changed(
    *, type: str, meta: kopf.Meta, namespace: str | None, name: str, memo: Any, **indexes: Any
) -> None:
    memo.view.capture(indexes)
    key = (namespace or "", name)
    if type == "DELETED":
        memo.loops.forget(key)
    else:  # the initial listing (after a start or restart), additions and modifications
        memo.loops.changed(key, meta)


# --- children and pods: their changes flow into the owner's status, and drift is reverted -------


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("services", labels=MANAGED)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
async def child_changed(*, meta: kopf.Meta, namespace: str | None, memo: Any, **indexes: Any) -> None:
    memo.view.capture(indexes)
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION:
            memo.loops.refresh((namespace or "", owner["name"]), REFRESH_DELAY_SECONDS)


@kopf.on.event("nodes")
async def node_changed(*, type: str, name: str, memo: Any, **indexes: Any) -> None:
    """A node gone: the GemmaDeployments with pods on it report the loss now, not when the pod GC acts."""
    memo.view.capture(indexes)
    memo.loops.fleet_changed()
    if type != "DELETED":
        return
    for (namespace, instance), pods in indexes["serving_pods"].items():
        if any(pod["spec"].get("nodeName") == name for pod in pods):
            for owner in indexes["gemma_by_instance"].get((namespace, instance), []):
                memo.loops.refresh((namespace, owner), REFRESH_DELAY_SECONDS)


@kopf.on.event("pods")
async def pod_seen(*, memo: Any, **indexes: Any) -> None:
    """Any pod: what it holds may have changed the fleet's free resources."""
    memo.view.capture(indexes)
    memo.loops.fleet_changed()


@kopf.on.event("pods", labels=MANAGED)
async def pod_changed(*, namespace: str | None, labels: Mapping[str, str], memo: Any, **indexes: Any) -> None:
    memo.view.capture(indexes)
    for owner in indexes["gemma_by_instance"].get((namespace or "", labels.get(INSTANCE_LABEL, "")), []):
        memo.loops.refresh((namespace or "", owner), REFRESH_DELAY_SECONDS)


@kopf.on.probe(id="gemmadeployments")
def tracked(*, memo: Any, **_: Any) -> int:
    return len(memo.loops.states)
