"""kopf handlers: glue from watch events and indexes to the Reconciler. No decisions are made here."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from gemma_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from gemma_operator.planning import NodeInfo, node_from_object
from gemma_operator.planning.inventory import InventoryError
from gemma_operator.reconcile.deferral import Deferred
from gemma_operator.reconcile.observe import TERMINAL_PHASES, gpus_requested
from gemma_operator.reconcile.reconciler import Cluster, Reconciler
from gemma_operator.rendering import child_name, label_value
from gemma_operator.rendering.render import MANAGER

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
INSTANCE = "app.kubernetes.io/instance"
log = logging.getLogger("gemma_operator")
# Threads for the synchronous handlers; the API client's connection pool is sized to match (run.py).
WORKERS = 16
BATCH_WINDOW_SECONDS = 0.5
# Events of one GemmaDeployment's children and pods within this window make one reconcile of it.
REFRESH_DELAY_SECONDS = 0.5
REFRESH_WORKERS = 8
INDEXES = (
    "node_inventory",
    "gpu_usage",
    "serving_pods",
    "managed_deployments",
    "managed_services",
    "gemma_deployments",
)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    memo.refresher = Refresher(memo)
    # Progress and the last handled spec live in annotations: status is ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Events only for what a person must act on; kopf's per-handler chatter would cost a write each.
    settings.posting.level = logging.WARNING
    # A watch that silently dies must be noticed and restarted.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.execution.max_workers = WORKERS
    # Bursts of events on one object (a pod being scheduled, started, made ready) are handled once.
    settings.batching.batch_window = BATCH_WINDOW_SECONDS
    # After its own annotation patch kopf waits for that version before running create/update handlers
    # again; under load (a thousand CRs rolling out) the 5 s default expires and the create handler
    # ran twice for about half of the objects. Longer is safe: the version always arrives.
    settings.persistence.consistency_timeout = 60


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


def _child(body: kopf.Body) -> dict[str, Any]:
    """The child as reconciles compare it, without managedFields (the largest part, and never compared)."""
    metadata = {key: value for key, value in body.metadata.items() if key != "managedFields"}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": metadata,
        "spec": dict(body.spec),
        "status": dict(body.status),
    }


# The live children, so that reconciles triggered by pod and child events need no GET.
@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def managed_deployments(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): _child(body)}


@kopf.index("services", labels=MANAGED)
async def managed_services(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
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
async def gemma_deployments(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): _essence(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def gemma_by_instance(*, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
    return {(namespace or "", label_value(name)): name}


def _cluster(gemma: Mapping[str, Any], indexes: Mapping[str, Any]) -> Cluster:
    """What the indexes know of the cluster, as far as one GemmaDeployment is concerned."""
    namespace, name = gemma["metadata"]["namespace"], gemma["metadata"]["name"]
    children = (namespace, child_name(name))
    live = {
        kind: found[0]
        for kind, index in (("Deployment", "managed_deployments"), ("Service", "managed_services"))
        if (found := list(indexes[index].get(children, [])))
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


def _reconcile(memo: Any, gemma: Mapping[str, Any], retry: int, indexes: Mapping[str, Any]) -> None:
    """Reconcile one GemmaDeployment with what the indexes know of the cluster."""
    reconciler: Reconciler = memo.reconciler
    outcome = reconciler.reconcile(gemma, _cluster(gemma, indexes), _warner(gemma), retry)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(f"{outcome.result}; retrying", delay=outcome.retry_after)


# --- the GemmaDeployment's own changes ----------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_gemma(*, body: kopf.Body, retry: int, memo: Any, **indexes: Any) -> None:
    _reconcile(memo, _essence(body), retry, indexes)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def forget_deleted(*, type: str, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    if type == "DELETED":
        memo.reconciler.forget((namespace or "", name))
        memo.autoscaler.forget((namespace or "", name))


# --- children and pods: their changes flow into the owner's status, and drift is reverted -------


def _refresh(namespace: str, name: str, memo: Any, indexes: Mapping[str, Any]) -> None:
    found = list(indexes["gemma_deployments"].get((namespace, name), []))
    if not found or found[0]["metadata"].get("deletionTimestamp"):
        return  # the owner is gone or going: the garbage collector takes the children
    with contextlib.suppress(kopf.TemporaryError):  # the owner's own handler retries with backoff
        _reconcile(memo, found[0], 0, indexes)


class Refresher:
    """Reconciles of GemmaDeployments whose children or pods changed: one per owner per REFRESH_DELAY_SECONDS.

    A rollout brings a dozen events per GemmaDeployment (Deployment status, pod scheduled, started,
    ready); each used to cost a reconcile in kopf's thread pool. The event handlers now only note
    the owner, and one reconcile a little later sees the sum of them.
    """

    def __init__(self, memo: Any) -> None:
        self.memo = memo
        self.indexes: Mapping[str, Any] = {}
        self.pool = ThreadPoolExecutor(max_workers=REFRESH_WORKERS, thread_name_prefix="refresh")
        self.context = contextvars.copy_context()
        self.later: Deferred[tuple[str, str]] = Deferred(self._submit)

    def _submit(self, key: tuple[str, str]) -> None:
        # A context can be entered by one thread at a time: each reconcile runs in a copy of it.
        self.pool.submit(self.context.copy().run, self._run, key)

    def schedule(self, namespace: str, name: str, indexes: Mapping[str, Any]) -> None:
        # The indexes are kopf's live views: any handler's are current when the reconcile runs. The
        # context carries kopf's event queue, so that the reconcile can post Events (kopf.warn).
        self.indexes = {index: indexes[index] for index in INDEXES}
        self.context = contextvars.copy_context()
        self.later.schedule((namespace, name), REFRESH_DELAY_SECONDS)

    def _run(self, key: tuple[str, str]) -> None:
        try:
            _refresh(key[0], key[1], self.memo, self.indexes)
        except Exception:
            log.exception("reconcile of %s/%s after a change of its children failed", *key)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("services", labels=MANAGED)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
async def child_changed(*, meta: kopf.Meta, namespace: str | None, memo: Any, **indexes: Any) -> None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION:
            memo.refresher.schedule(namespace or "", owner["name"], indexes)


@kopf.on.event("nodes")
async def node_changed(*, type: str, name: str, memo: Any, **indexes: Any) -> None:
    """A node gone: the GemmaDeployments with pods on it report the loss now, not when the pod GC acts."""
    if type != "DELETED":
        return
    for (namespace, instance), pods in indexes["serving_pods"].items():
        if any(pod["spec"].get("nodeName") == name for pod in pods):
            for owner in indexes["gemma_by_instance"].get((namespace, instance), []):
                memo.refresher.schedule(namespace, owner, indexes)


@kopf.on.event("pods", labels=MANAGED)
async def pod_changed(*, namespace: str | None, labels: Mapping[str, str], memo: Any, **indexes: Any) -> None:
    for owner in indexes["gemma_by_instance"].get((namespace or "", labels.get(INSTANCE, "")), []):
        memo.refresher.schedule(namespace or "", owner, indexes)


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
