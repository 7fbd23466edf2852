"""A GemmaDeployment's children: rendered once per input, applied only when missing or drifted, and optional
ones deleted when no longer wanted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gemma_operator.api import API_VERSION, KIND, GemmaDeployment, Reason
from gemma_operator.planning import Plan, Refused
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.diffing import drifted
from gemma_operator.reconcile.kube import ApiError, KubeApi, ObjectRef
from gemma_operator.reconcile.packing import pack, unpack
from gemma_operator.reconcile.provenance import rendered_for, stamp
from gemma_operator.rendering import Identity, optional_children, render
from gemma_operator.rendering.rollout import RolloutDecision, RolloutMode

# Children whose live state reconciles take from the watches (the handlers' indexes), not from a GET: the serving
# Deployment and Service, named like the GemmaDeployment's children (the endpoint picker's are not indexed).
WATCHED_KINDS: Final = frozenset({"Deployment", "Service"})
# Maps the API schema declares atomic (x-kubernetes-map-type: atomic): an apply replaces them whole, so a
# key added by someone else is drift to revert, not a field to leave alone.
ATOMIC_MAPS: Final[dict[str, frozenset[tuple[str, ...]]]] = {
    "Service": frozenset({("spec", "selector")}),
    "Deployment": frozenset({("spec", "template", "spec", "nodeSelector")}),
}

CONFLICT: Final = 409
# Answers to an apply that are about the moment, not the child: the caller retries them as API errors.
NOT_ABOUT_THE_CHILD: Final = frozenset({404, CONFLICT, 429})
# Server-side apply answers 500 to an apply configuration it cannot type, such as duplicate env names.
UNTYPEABLE: Final = "failed to create typed patch object"

Manifest = dict[str, Any]
Warn = Callable[[Reason, str], None]


class ChildRefused(Exception):
    """A child the operator will not or cannot apply, as the refusal status reports. Every such refusal is retried
    with the queue's backoff: a quota, RBAC or a policy (403) may change, and the API server answers 422 for
    failures of its own too (a Service whose cluster IP it could not allocate while etcd was away)."""

    def __init__(self, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


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
    # How the serving Deployment's new template rolls, by the template's fingerprint, once decided: a rollout keeps
    # the strategy it started with, though its own surge pod takes the free GPUs it was decided from.
    rollout: tuple[str, RolloutDecision] | None = None


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


def _controller(child: Mapping[str, Any]) -> Mapping[str, Any] | None:
    references = (child.get("metadata") or {}).get("ownerReferences") or []
    return next((ref for ref in references if ref.get("controller")), None)


def _controlled_by(child: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether the child is this very GemmaDeployment's (its uid, not its name: a name can be reused)."""
    controller = _controller(child)
    return controller is not None and controller.get("uid") == owner["uid"]


def _taken(live: Mapping[str, Any] | None, owner: Mapping[str, Any]) -> bool:
    """Whether a child's name is taken by an object this GemmaDeployment does not control."""
    return live is not None and not _controlled_by(live, owner)


def _name_in_use(lives: Mapping[ObjectRef, Mapping[str, Any] | None], owner: Mapping[str, Any]) -> ChildRefused:
    """Children's names taken by objects this GemmaDeployment does not control: left alone, and said so."""
    taken = []
    for ref, live in lives.items():
        if live is None or not _taken(live, owner):
            continue
        controller = _controller(live)
        whose = (
            f"controlled by {controller.get('kind')} {ref.namespace}/{controller.get('name')}"
            if controller
            else ("with no controller")
        )
        taken.append(f"{ref} exists, {whose}")
    message = "; ".join(taken) + ": the operator leaves it alone; rename the GemmaDeployment or remove the object"
    return ChildRefused(Refused.because(Reason.NAME_IN_USE, message))


def _refused_child(error: ApiError) -> ChildRefused | None:
    """The API server's refusal of the child itself, with its words; None for errors of the moment."""
    untypeable = error.status == 500 and error.message.startswith(UNTYPEABLE)
    if not untypeable and (error.status in NOT_ABOUT_THE_CHILD or not 400 <= error.status < 500):
        return None
    message = f"the API server refused {error.ref} ({error.status}): {error.message}"
    return ChildRefused(Refused.because(Reason.INVALID_CHILD, message))


def _no_inference_pool_crd(ref: ObjectRef) -> ChildRefused:
    message = (
        f"spec.routing.inferencePool: the API server does not serve {ref.api_version} InferencePools; install the "
        "InferencePool CRD of the Gateway API Inference Extension (docs/routing.md), or turn routing.inferencePool off"
    )
    return ChildRefused(Refused.because(Reason.INFERENCE_POOL_UNAVAILABLE, message))


def _drifted(manifest: Manifest, live: Mapping[str, Any]) -> bool:
    return drifted(manifest, live, ATOMIC_MAPS.get(manifest["kind"], frozenset()))


def _serving(manifest: Manifest, gd: GemmaDeployment) -> bool:
    """The serving Deployment (the endpoint picker's is another)."""
    return bool(manifest["kind"] == "Deployment" and manifest["metadata"]["name"] == Identity.of(gd).name)


def _new_template(manifest: Manifest, live: Mapping[str, Any]) -> bool:
    """Whether applying the Deployment would change its live pod template (and so start a rollout)."""
    return drifted({"spec": {"template": manifest["spec"]["template"]}}, live, ATOMIC_MAPS["Deployment"])


def _fingerprint(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


class Children:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def manifests(
        self, memory: ChildMemory, body: Mapping[str, Any], gd: GemmaDeployment, plan: Plan, replicas: int
    ) -> list[Manifest]:
        """The children with their owner reference, rendered once per uid, generation, replicas and plan."""
        metadata = body["metadata"]
        token = _fingerprint([metadata["uid"], metadata.get("generation"), replicas, repr(plan)])
        if memory.rendered is not None and memory.rendered[0] == token:
            cached: list[Manifest] = unpack(memory.rendered[1])
            return cached
        owner = owner_reference(body)
        manifests = render(gd, plan, replicas)
        for manifest in manifests:
            manifest["metadata"]["ownerReferences"] = [owner]
            if _serving(manifest, gd):
                stamp(manifest, gd.metadata.generation)
        memory.rendered = (token, pack(manifests))
        return manifests

    def operator_change(
        self, memory: ChildMemory, gd: GemmaDeployment, manifests: list[Manifest], watched: Mapping[str, Any]
    ) -> bool:
        """Whether applying the serving Deployment would change its pod template, and the change comes from the
        operator (an upgrade: new pins, new defaults), not from the spec: the live Deployment was rendered for this
        very generation (or by an operator that did not record one) with the same replicas, and this process has
        not applied this manifest already (the watch may not show that apply yet)."""
        manifest = next((m for m in manifests if _serving(m, gd)), None)
        live = watched.get("Deployment")
        if manifest is None or live is None or live.get("metadata", {}).get("name") != manifest["metadata"]["name"]:
            return False  # to be created: nothing of it runs yet
        if rendered_for(live) not in (None, gd.metadata.generation):
            return False  # a spec change: it rolls at once
        if (live.get("spec") or {}).get("replicas") != manifest["spec"]["replicas"]:
            return False  # a change of replicas applies at once, and the template with it: one Deployment, whole
        if memory.applied.get(ObjectRef.of(manifest), ("",))[0] == _fingerprint(manifest):
            return False
        return _new_template(manifest, live)

    @staticmethod
    def settled_rollout(
        memory: ChildMemory, gd: GemmaDeployment, manifests: list[Manifest], watched: Mapping[str, Any]
    ) -> bool:
        """Give the serving Deployment the strategy its template rolls with where that is settled, and say whether
        it is: the one decided for this very template, or the live Deployment's while it has this template (its
        rollout under way or done), or the rendered one for a Deployment to be created. False: applying it would
        change the live pod template, and how that rolls is to be decided (decide_rollout)."""
        manifest = next((m for m in manifests if _serving(m, gd)), None)
        live = watched.get("Deployment")
        if manifest is None or live is None or live.get("metadata", {}).get("name") != manifest["metadata"]["name"]:
            return True
        decided = memory.rollout
        if decided is not None and decided[0] == _fingerprint(manifest["spec"]["template"]):
            manifest["spec"]["strategy"] = decided[1].strategy
            return True
        if _new_template(manifest, live):
            return False
        strategy = (live.get("spec") or {}).get("strategy")
        if strategy:
            manifest["spec"]["strategy"] = strategy
        return True

    @staticmethod
    def decide_rollout(
        memory: ChildMemory, gd: GemmaDeployment, manifests: list[Manifest], decision: RolloutDecision
    ) -> None:
        """Roll the serving Deployment's new template as decided (a wait is decided again at the next reconcile)."""
        if decision.mode is RolloutMode.WAIT:
            return
        manifest = next(m for m in manifests if _serving(m, gd))
        manifest["spec"]["strategy"] = decision.strategy
        memory.rollout = (_fingerprint(manifest["spec"]["template"]), decision)

    @staticmethod
    def rolling(memory: ChildMemory, gd: GemmaDeployment, manifests: list[Manifest]) -> RolloutDecision | None:
        """How the serving Deployment's template as rendered now rolls, if this process decided it."""
        manifest = next((m for m in manifests if _serving(m, gd)), None)
        decided = memory.rollout
        if manifest is None or decided is None or decided[0] != _fingerprint(manifest["spec"]["template"]):
            return None
        return decided[1]

    def apply(
        self,
        memory: ChildMemory,
        gd: GemmaDeployment,
        manifests: list[Manifest],
        watched: Mapping[str, Mapping[str, Any]],
        owner: Mapping[str, Any],
        warn: Warn,
        *,
        keep_deployment: bool = False,
    ) -> Mapping[str, Any] | None:
        """Apply each child that is missing or drifted, delete optional children no longer wanted, and return
        the live Deployment; with `keep_deployment`, the serving Deployment is left as it is (its paced rollout
        waits). Raises ChildRefused when the API server refuses a child, and when a child's name is
        taken by an object this GemmaDeployment does not control: that object is left as it is, and no Deployment
        is created (others may be, when their names were free)."""
        # The workload last: a name found taken on the way stops the reconcile before anything runs.
        children = sorted(((ObjectRef.of(m), m) for m in manifests), key=lambda child: child[0].kind == "Deployment")
        unseen = [ref for ref, _ in children if self._unseen(memory, ref, watched)]
        lives = {ref: self._live(ref, manifest, watched) for ref, manifest in children if ref not in unseen}
        if any(_taken(live, owner) for live in lives.values()):
            raise _name_in_use(lives | {ref: self._api.get(ref) for ref in unseen}, owner)
        live_deployment = None
        for ref, manifest in children:
            memory.absent.discard(ref)
            live = self._create(memory, ref, manifest) if ref in unseen else lives[ref]
            if _taken(live, owner):
                later = unseen[unseen.index(ref) + 1 :]
                raise _name_in_use({ref: live} | {ref: self._api.get(ref) for ref in later}, owner)
            serving = _serving(manifest, gd)
            kept = keep_deployment and serving and live is not None
            if not kept and (live is None or self._needs_apply(memory, ref, manifest, live)):
                live = self._apply(memory, ref, manifest, warn)
            if serving:
                live_deployment = live
        wanted = {ref for ref, _ in children}
        namespace = gd.metadata.namespace
        # Optional children follow the spec and the replicas alone (rendering.render). At generation 1 with no
        # autoscaler, both are as they always were: an optional child not wanted now never was, and is not looked for.
        only_spec = gd.metadata.generation == 1 and not gd.spec.autoscaling.enabled
        for group in optional_children(gd):
            unwanted = [
                ref
                for ref in (ObjectRef(api_version, kind, namespace, name) for api_version, kind, name in group)
                if ref not in wanted
            ]
            if only_spec:
                memory.absent.update(unwanted)
            else:
                self._prune(memory, unwanted, owner)
        return live_deployment

    def _create(self, memory: ChildMemory, ref: ObjectRef, manifest: Manifest) -> Mapping[str, Any]:
        """A child no watch shows and this process never applied, created by a create-only apply: one write and
        no read. Its name may yet be taken, by an object without the operator's labels (which the watches do not
        see): then the API server changes nothing and answers 409, and the object is read to learn whose it is."""
        try:
            return self._write(memory, ref, manifest, create_only=True)
        except ApiError as error:
            if error.status != CONFLICT:
                raise _refused_child(error) or error from None
            existing = self._api.get(ref)
            if existing is None:
                raise  # gone again: retried, create-only again
            return existing

    def _apply(self, memory: ChildMemory, ref: ObjectRef, manifest: Manifest, warn: Warn) -> Mapping[str, Any] | None:
        try:
            return self._write(memory, ref, manifest)
        except ApiError as error:
            if ref.kind == "InferencePool" and error.status == 404:
                raise _no_inference_pool_crd(ref) from None
            if ref.kind == "ServiceMonitor" and error.status == 404:
                warn(
                    Reason.SERVICE_MONITOR_UNAVAILABLE,
                    "the ServiceMonitor CRD is not installed; no ServiceMonitor created",
                )
                return None
            raise _refused_child(error) or error from None

    def _write(
        self, memory: ChildMemory, ref: ObjectRef, manifest: Manifest, *, create_only: bool = False
    ) -> Mapping[str, Any]:
        live = self._api.apply(manifest, create_only=create_only)
        metrics.API_WRITES.labels("apply").inc()
        version = str(live.get("metadata", {}).get("resourceVersion", ""))
        memory.applied[ref] = (_fingerprint(manifest), version)
        return live

    def _prune(self, memory: ChildMemory, group: list[ObjectRef], owner: Mapping[str, Any]) -> None:
        """Delete the unwanted children of one optional group that this GemmaDeployment controls.

        Only this operator creates them, in the group's order: once the first is known absent, so are the rest,
        and no reconcile GETs them again until the group is applied.
        """
        for position, ref in enumerate(group):
            if ref in memory.absent:
                continue  # absent since this process last looked, and not applied since
            existing = self._api.get(ref)
            if existing is not None and _controlled_by(existing, owner):
                self._api.delete(ref)
                metrics.API_WRITES.labels("delete").inc()
            elif existing is None and position == 0:
                memory.absent.update(group)
                return
            memory.absent.add(ref)

    @staticmethod
    def _unseen(memory: ChildMemory, ref: ObjectRef, watched: Mapping[str, Mapping[str, Any]]) -> bool:
        """A child of a watched kind that the watches do not show and this process has not applied."""
        return ref.kind in WATCHED_KINDS and ref.kind not in watched and ref not in memory.applied

    def _live(
        self, ref: ObjectRef, manifest: Manifest, watched: Mapping[str, Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """The child as the watches saw it; a GET when that looks missing or drifted, and for kinds not watched.

        The watches can lag behind our own apply: a child applied already that they do not show yet is asked
        of the API server, so that a lagging watch costs a read, not a write.
        """
        live = watched.get(ref.kind) if ref.kind in WATCHED_KINDS else None
        if live is not None and live.get("metadata", {}).get("name") == ref.name and not _drifted(manifest, live):
            return live
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
