"""kopf handlers: glue from watch events and indexes to the Reconciler. No decisions are made here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from gemma_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from gemma_operator.planning import NodeInfo, node_from_object
from gemma_operator.planning.inventory import InventoryError
from gemma_operator.reconcile.observe import TERMINAL_PHASES, gpus_requested
from gemma_operator.reconcile.reconciler import Cluster, Reconciler
from gemma_operator.rendering import label_value
from gemma_operator.rendering.render import MANAGER

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
INSTANCE = "app.kubernetes.io/instance"
log = logging.getLogger("gemma_operator")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
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
    settings.execution.max_workers = 16


# --- indexes: the cluster as the reconciles see it, kept current by watches -------------------


@kopf.index("nodes")
def node_inventory(*, body: kopf.Body, name: str, **_: Any) -> dict[str, NodeInfo] | None:
    try:
        return {name: node_from_object(body)}
    except InventoryError as error:
        log.warning("ignoring node %s: %s", name, error)
        return None


@kopf.index("pods")
def gpu_usage(*, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[str, int] | None:
    node, gpus = spec.get("nodeName"), gpus_requested(body)
    if not node or not gpus or status.get("phase") in TERMINAL_PHASES:
        return None
    return {str(node): gpus}


@kopf.index("pods", labels=MANAGED)
def serving_pods(
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


def _essence(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of what reconciles read; apiVersion and kind let Events name the object."""
    return {"apiVersion": API_VERSION, "kind": KIND} | {
        key: dict(body.get(key) or {}) for key in ("metadata", "spec", "status")
    }


@kopf.index(GROUP, VERSION, PLURAL)
def gemma_deployments(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): _essence(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def gemma_by_instance(*, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
    return {(namespace or "", label_value(name)): name}


def _cluster(gemma: Mapping[str, Any], indexes: Mapping[str, Any]) -> Cluster:
    """What the indexes know of the cluster, as far as one GemmaDeployment is concerned."""
    namespace, name = gemma["metadata"]["namespace"], gemma["metadata"]["name"]
    return Cluster(
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
def forget_deleted(*, type: str, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
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


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("services", labels=MANAGED)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
def child_changed(*, meta: kopf.Meta, namespace: str | None, memo: Any, **indexes: Any) -> None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION:
            _refresh(namespace or "", owner["name"], memo, indexes)


@kopf.on.event("pods", labels=MANAGED)
def pod_changed(*, namespace: str | None, labels: Mapping[str, str], memo: Any, **indexes: Any) -> None:
    for owner in indexes["gemma_by_instance"].get((namespace or "", labels.get(INSTANCE, "")), []):
        _refresh(namespace or "", owner, memo, indexes)


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
