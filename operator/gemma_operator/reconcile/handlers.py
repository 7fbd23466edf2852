"""kopf handlers: glue from watch events and indexes to the Reconciler. No decisions are made here."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from gemma_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from gemma_operator.planning import NodeInfo, node_from_object
from gemma_operator.planning.inventory import InventoryError
from gemma_operator.reconcile.deferral import Deferred
from gemma_operator.reconcile.observe import TERMINAL_PHASES, gpus_requested
from gemma_operator.reconcile.packing import pack, unpack
from gemma_operator.reconcile.reconciler import Cluster, Key, Outcome, Reconciler, backoff
from gemma_operator.rendering import child_name, label_value
from gemma_operator.rendering.render import MANAGER

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
INSTANCE = "app.kubernetes.io/instance"
log = logging.getLogger("gemma_operator")
# Threads for reconciles; the API client's connection pool is sized to match (run.py).
WORKERS = 16
BATCH_WINDOW_SECONDS = 0.5
# Events of one GemmaDeployment's children and pods within this window make one reconcile of it.
REFRESH_DELAY_SECONDS = 0.5
INDEXES = (
    "node_inventory",
    "gpu_usage",
    "serving_pods",
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
def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    memo.reconciles = Reconciles(memo)
    settings.persistence.diffbase_storage = NoChangeDetection()
    # Events only for what a person must act on; kopf's per-handler chatter would cost a write each.
    settings.posting.level = logging.WARNING
    # A watch that silently dies must be noticed and restarted.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    # Bursts of events on one object (a pod being scheduled, started, made ready) are handled once.
    settings.batching.batch_window = BATCH_WINDOW_SECONDS


# --- indexes: the cluster as the reconciles see it, kept current by watches -------------------


@kopf.index("nodes")
async def node_inventory(*, body: kopf.Body, name: str, **_: Any) -> dict[str, NodeInfo] | None:
    try:
        return {name: node_from_object(body)}
    except InventoryError as error:
        log.warning("ignoring node %s: %s", name, error)
        return None


@kopf.index("pods")
async def gpu_usage(*, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[str, int] | None:
    node, gpus = spec.get("nodeName"), gpus_requested(body)
    if not node or not gpus or status.get("phase") in TERMINAL_PHASES:
        return None
    return {str(node): gpus}


@kopf.index("pods", labels=MANAGED)
async def serving_pods(
    *, body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    slim = {
        "metadata": {"name": body.metadata.name, "deletionTimestamp": body.metadata.get("deletionTimestamp")},
        "spec": {"nodeName": body.spec.get("nodeName")},
        "status": {
            "phase": body.status.get("phase"),
            "podIP": body.status.get("podIP"),
            "conditions": list(body.status.get("conditions") or []),
        },
    }
    return {(namespace or "", labels.get(INSTANCE, "")): slim}


# The indexes of children and GemmaDeployments hold packed JSON, decoded when a reconcile reads it:
# at a thousand GemmaDeployments the parsed copies were the largest part of the operator's memory.
def _unpacked(found: Iterable[str]) -> dict[str, Any] | None:
    first = next(iter(found), None)
    return None if first is None else cast(dict[str, Any], unpack(first))


def _version(metadata: Mapping[str, Any]) -> tuple[str, int]:
    """What a reconcile of the object depends on in its metadata (the spec is behind the generation)."""
    return str(metadata.get("uid", "")), int(metadata.get("generation") or 0)


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


def _cluster(gemma: Mapping[str, Any], indexes: Mapping[str, Any]) -> Cluster:
    """What the indexes know of the cluster, as far as one GemmaDeployment is concerned."""
    namespace, name = gemma["metadata"]["namespace"], gemma["metadata"]["name"]
    children = (namespace, child_name(name))
    live = {
        kind: child
        for kind, index in (("Deployment", "managed_deployments"), ("Service", "managed_services"))
        if (child := _unpacked(indexes[index].get(children, []))) is not None
    }
    return Cluster(
        children=live,
        nodes=[node for store in indexes["node_inventory"].values() for node in store],
        gpus_in_use={node: sum(store) for node, store in indexes["gpu_usage"].items()},
        pods=list(indexes["serving_pods"].get((namespace, label_value(name)), [])),
    )


def _warner(gemma: Mapping[str, Any]) -> Callable[[str, str], None]:
    def warn(reason: str, message: str) -> None:
        kopf.warn(cast(kopf.Body, gemma), reason=reason, message=message)

    return warn


# --- reconciles: one scheduler for every cause ------------------------------------------------


class Reconciles:
    """Every reconcile of a GemmaDeployment, whatever caused it: its own events, its children's and pods', retries.

    Requests for one object coalesce (the earliest due time wins) and run on a pool of WORKERS
    threads; each reads the object from the index when it runs, so a burst of events costs one
    reconcile. Reconciles are level-based: they compare the cluster with the spec, and status says
    which generation was handled. So nothing about handling is written to the object (kopf's
    create/update handlers would patch a last-handled-configuration annotation per change, and
    progress annotations per retry), and retries back off in memory.
    """

    def __init__(self, memo: Any) -> None:
        self.memo = memo
        self.indexes: Mapping[str, Any] = {}
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="reconcile")
        self.context = contextvars.copy_context()
        self.later: Deferred[Key] = Deferred(self._submit)
        # Per object: the (uid, generation) last reconciled, and the failed attempts since it succeeded.
        self.handled: dict[Key, tuple[str, int]] = {}
        self.retries: dict[Key, int] = {}

    def changed(self, key: Key, metadata: Mapping[str, Any], indexes: Mapping[str, Any]) -> None:
        """The object itself changed: reconcile now, unless this generation was handled (our own status writes)."""
        if self.handled.get(key) != _version(metadata):
            self.retries.pop(key, None)
            self.request(key, indexes, 0.0)

    def request(self, key: Key, indexes: Mapping[str, Any], delay: float = REFRESH_DELAY_SECONDS) -> None:
        # The indexes are kopf's live views: any handler's are current when the reconcile runs. The
        # context carries kopf's event queue, so that the reconcile can post Events (kopf.warn).
        self.indexes = {index: indexes[index] for index in INDEXES}
        self.context = contextvars.copy_context()
        self.later.schedule(key, delay)

    def forget(self, key: Key) -> None:
        self.later.cancel(key)
        self.handled.pop(key, None)
        self.retries.pop(key, None)

    def _submit(self, key: Key) -> None:
        # A context can be entered by one thread at a time: each reconcile runs in a copy of it.
        self.pool.submit(self.context.copy().run, self._run, key)

    def _run(self, key: Key) -> None:
        gemma = _unpacked(self.indexes["gemma_deployments"].get(key, []))
        if gemma is None or gemma["metadata"].get("deletionTimestamp"):
            return  # the object is gone or going: the garbage collector takes the children
        retry = self.retries.get(key, 0)
        reconciler: Reconciler = self.memo.reconciler
        try:
            outcome = reconciler.reconcile(gemma, _cluster(gemma, self.indexes), _warner(gemma), retry)
        except Exception:
            log.exception("reconcile of %s/%s failed", *key)
            outcome = Outcome("error", retry_after=backoff(retry))
        self.handled[key] = _version(gemma["metadata"])
        if outcome.retry_after is None:
            self.retries.pop(key, None)
        else:
            self.retries[key] = retry + 1
            self.later.schedule(key, outcome.retry_after)


# --- the GemmaDeployment's own changes ----------------------------------------------------------


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gemma_changed(
    *, type: str, meta: kopf.Meta, namespace: str | None, name: str, memo: Any, **indexes: Any
) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        memo.reconciles.forget(key)
        memo.reconciler.forget(key)
        memo.autoscaler.forget(key)
    else:  # the initial listing (after a start or restart), additions and modifications
        memo.reconciles.changed(key, meta, indexes)


# --- children and pods: their changes flow into the owner's status, and drift is reverted -------


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("services", labels=MANAGED)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
async def child_changed(*, meta: kopf.Meta, namespace: str | None, memo: Any, **indexes: Any) -> None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION:
            memo.reconciles.request((namespace or "", owner["name"]), indexes)


@kopf.on.event("nodes")
async def node_changed(*, type: str, name: str, memo: Any, **indexes: Any) -> None:
    """A node gone: the GemmaDeployments with pods on it report the loss now, not when the pod GC acts."""
    if type != "DELETED":
        return
    for (namespace, instance), pods in indexes["serving_pods"].items():
        if any(pod["spec"].get("nodeName") == name for pod in pods):
            for owner in indexes["gemma_by_instance"].get((namespace, instance), []):
                memo.reconciles.request((namespace, owner), indexes)


@kopf.on.event("pods", labels=MANAGED)
async def pod_changed(*, namespace: str | None, labels: Mapping[str, str], memo: Any, **indexes: Any) -> None:
    for owner in indexes["gemma_by_instance"].get((namespace or "", labels.get(INSTANCE, "")), []):
        memo.reconciles.request((namespace or "", owner), indexes)


# --- the built-in autoscaler: a timer per GemmaDeployment with autoscaling on ------------------
# Registered by run.py, which knows the interval.


def autoscaling_enabled(*, spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("autoscaling") or {}).get("enabled"))


async def autoscale(*, body: kopf.Body, memo: Any, **indexes: Any) -> None:
    gemma = _essence(body)
    await memo.autoscaler.tick(gemma, _cluster(gemma, indexes), _warner(gemma))


@kopf.on.probe(id="gemmadeployments")
def tracked(*, memo: Any, **_: Any) -> int:
    return len(memo.reconciler.written)
