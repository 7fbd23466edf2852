"""A GemmaDeployment's children: rendered once per input, applied only when missing or drifted, and optional
ones deleted when no longer wanted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gemma_operator.api import API_VERSION, KIND, GemmaDeployment, Reason
from gemma_operator.planning import Plan
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.diffing import drifted
from gemma_operator.reconcile.kube import ApiError, KubeApi, ObjectRef
from gemma_operator.reconcile.packing import pack, unpack
from gemma_operator.rendering import Identity, render

# Children that exist only for some specs; the others (Deployment, Service) always do.
OPTIONAL_CHILDREN: Final[tuple[tuple[str, str], ...]] = (
    ("policy/v1", "PodDisruptionBudget"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)
# Children whose live state reconciles take from the watches (the handlers' indexes), not from a GET.
WATCHED_KINDS: Final = frozenset({"Deployment", "Service"})
# Maps the API schema declares atomic (x-kubernetes-map-type: atomic): an apply replaces them whole, so a
# key added by someone else is drift to revert, not a field to leave alone.
ATOMIC_MAPS: Final[dict[str, frozenset[tuple[str, ...]]]] = {
    "Service": frozenset({("spec", "selector")}),
    "Deployment": frozenset({("spec", "template", "spec", "nodeSelector")}),
}

Manifest = dict[str, Any]
Warn = Callable[[Reason, str], None]


@dataclass
class ChildMemory:
    """What this process knows of one GemmaDeployment's children."""

    # The children rendered for one (uid, generation, replicas, plan), as JSON text (a fifth of their parsed
    # size): rendering is most of a reconcile's CPU, and most reconciles (child and pod events) render the same.
    rendered: tuple[str, str] | None = None
    # Per child: the fingerprint of the manifest last applied and the resourceVersion the API server answered.
    applied: dict[ObjectRef, tuple[str, str]] = field(default_factory=dict)
    # Optional children known to be absent (or not ours), so that no reconcile GETs them again.
    absent: set[ObjectRef] = field(default_factory=set)


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(child: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    return any(ref.get("uid") == owner["uid"] for ref in (child.get("metadata") or {}).get("ownerReferences") or [])


def _drifted(manifest: Manifest, live: Mapping[str, Any]) -> bool:
    return drifted(manifest, live, ATOMIC_MAPS.get(manifest["kind"], frozenset()))


def _fingerprint(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


class Children:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def manifests(
        self, memory: ChildMemory, body: Mapping[str, Any], deployment: GemmaDeployment, plan: Plan, replicas: int
    ) -> list[Manifest]:
        """The children with their owner reference, rendered once per uid, generation, replicas and plan."""
        metadata = body["metadata"]
        token = _fingerprint([metadata["uid"], metadata.get("generation"), replicas, repr(plan)])
        if memory.rendered is not None and memory.rendered[0] == token:
            cached: list[Manifest] = unpack(memory.rendered[1])
            return cached
        owner = owner_reference(body)
        manifests = render(deployment, plan, replicas)
        for manifest in manifests:
            manifest["metadata"]["ownerReferences"] = [owner]
        memory.rendered = (token, pack(manifests))
        return manifests

    def apply(
        self,
        memory: ChildMemory,
        deployment: GemmaDeployment,
        manifests: list[Manifest],
        watched: Mapping[str, Mapping[str, Any]],
        owner: Mapping[str, Any],
        warn: Warn,
    ) -> Mapping[str, Any] | None:
        """Apply each child that is missing or drifted, delete optional children no longer wanted, and return
        the live Deployment."""
        live_deployment = None
        wanted_kinds = set()
        for manifest in manifests:
            ref = ObjectRef.of(manifest)
            memory.absent.discard(ref)
            wanted_kinds.add((ref.api_version, ref.kind))
            live = self._live(memory, ref, manifest, watched)
            if live is None or self._needs_apply(memory, ref, manifest, live):
                try:
                    live = self._api.apply(manifest)
                except ApiError as error:
                    if ref.kind == "ServiceMonitor" and error.status == 404:
                        warn(
                            Reason.SERVICE_MONITOR_UNAVAILABLE,
                            "the ServiceMonitor CRD is not installed; no ServiceMonitor created",
                        )
                        continue
                    raise
                metrics.API_WRITES.labels("apply").inc()
                version = str(live.get("metadata", {}).get("resourceVersion", ""))
                memory.applied[ref] = (_fingerprint(manifest), version)
            if ref.kind == "Deployment":
                live_deployment = live
        for api_version, kind in OPTIONAL_CHILDREN:
            if (api_version, kind) not in wanted_kinds:
                self._prune(
                    memory,
                    ObjectRef(api_version, kind, deployment.metadata.namespace, Identity.of(deployment).name),
                    owner,
                )
        return live_deployment

    def _prune(self, memory: ChildMemory, ref: ObjectRef, owner: Mapping[str, Any]) -> None:
        if ref in memory.absent:
            return  # only this operator creates them, and it has not since it last looked
        existing = self._api.get(ref)
        if existing is not None and _owned_by(existing, owner):
            self._api.delete(ref)
            metrics.API_WRITES.labels("delete").inc()
        memory.absent.add(ref)

    def _live(
        self, memory: ChildMemory, ref: ObjectRef, manifest: Manifest, watched: Mapping[str, Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """The child as the watches saw it; a GET only when that looks missing or drifted.

        A watch can lag behind our own apply. When this very manifest was applied already, the API server is
        asked before applying again, so a lagging watch costs a read, not a write.
        """
        if ref.kind not in WATCHED_KINDS:
            return self._api.get(ref)
        live = watched.get(ref.kind)
        if live is not None and not _drifted(manifest, live):
            return live
        if live is None and ref not in memory.applied:
            return None  # never applied by this process and not seen: create it
        return self._api.get(ref)

    @staticmethod
    def _needs_apply(memory: ChildMemory, ref: ObjectRef, manifest: Manifest, live: Mapping[str, Any]) -> bool:
        """Drift, unless the live object is exactly what our last apply of this very manifest produced.

        The guard keeps a value the API server normalises differently from how we render it from turning into
        an apply on every event.
        """
        if not _drifted(manifest, live):
            return False
        version = str((live.get("metadata") or {}).get("resourceVersion", ""))
        return memory.applied.get(ref) != (_fingerprint(manifest), version)
