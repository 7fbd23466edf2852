"""One reconcile of one GemmaDeployment: plan, apply what differs, prune, and write status when it changed."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gemma_operator.api import API_VERSION, KIND, GemmaDeployment, InvalidSpec, PlanReport, parse_deployment
from gemma_operator.catalog import AcceleratorClasses, runtimes
from gemma_operator.planning import NodeInfo, plan
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.conditions import Observed, PodState, Refusal, Scaling, compute_status, rollout
from gemma_operator.reconcile.deferral import Deferred
from gemma_operator.reconcile.diffing import drifted, merge_patch
from gemma_operator.reconcile.kube import ApiError, KubeApi, ObjectRef
from gemma_operator.reconcile.observe import free_gpus_hint, pod_state
from gemma_operator.reconcile.packing import pack, unpack
from gemma_operator.reconcile.verification import Verification, Verifier
from gemma_operator.rendering import Identity, child_name, endpoint, render

# Children that exist only for some specs; the others (Deployment, Service) always do.
OPTIONAL_CHILDREN: tuple[tuple[str, str], ...] = (
    ("policy/v1", "PodDisruptionBudget"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)
# Children whose live state reconciles take from the watches (handlers' indexes), not from a GET.
WATCHED_KINDS = frozenset({"Deployment", "Service"})
# Refusals that a change in the cluster (not the spec) can lift: retried with backoff.
RETRYABLE = frozenset({"SecretNotFound", "NoNodeFits"})
MAX_BACKOFF_SECONDS = 600
# What kstatus reads (observedGeneration, Ready, Reconciling, Stalled) and the autoscaler's verdict
# are written at once. A change of detail only (messages, counts, Scheduled, Available, Verified)
# waits STATUS_DETAIL_DELAY seconds, and at least until STATUS_DETAIL_SECONDS after the object's last
# status write, so that the detail of a rollout is folded into the write that ends it: a create is
# two status writes, not one per pod and Deployment event, and a long rollout writes its progress
# at most every STATUS_DETAIL_SECONDS (its conditions' lastTransitionTime is when it was written).
STATUS_DETAIL_DELAY = 15.0
STATUS_DETAIL_SECONDS = 30.0
IMMEDIATE_CONDITIONS = ("Ready", "Reconciling", "Stalled", "ScalingActive", "ScalingLimited")
IMMEDIATE_FIELDS = ("observedGeneration", "desiredReplicas")

Key = tuple[str, str]
Warn = Callable[[str, str], None]


@dataclass(frozen=True)
class Cluster:
    """What the indexes know, passed in so that reconcile reads no lists from the API."""

    nodes: Sequence[NodeInfo] = ()
    gpus_in_use: Mapping[str, int] = field(default_factory=dict)
    pods: Sequence[Mapping[str, Any]] = ()
    # The GemmaDeployment's Deployment and Service as the watches last saw them, by kind.
    children: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    result: str
    retry_after: float | None = None


@dataclass
class Reconciler:
    """Shared state of the operator's reconciles: the API, the configuration and per-object memory."""

    api: KubeApi
    classes: AcceleratorClasses
    locks: defaultdict[Key, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # Per child: the manifest last applied and the resourceVersion the API server answered with.
    applied: dict[ObjectRef, tuple[str, str]] = field(default_factory=dict)
    # What the last reconcile of each object saw, so a finished smoke check can update its status.
    last_seen: dict[Key, tuple[Mapping[str, Any], Observed]] = field(default_factory=dict)
    # The built-in autoscaler's latest word per object (it sets replicas when autoscaling is on).
    scaling: dict[Key, Scaling] = field(default_factory=dict)
    # Per object: the children rendered for one (uid, generation, replicas, plan), as JSON text (a fifth
    # of their parsed size); rendering is most of a reconcile's CPU, and most reconciles (child and pod
    # events) would render the same thing again.
    rendered: dict[Key, tuple[str, str]] = field(default_factory=dict)
    # Optional children known to be absent (or not ours), so that no reconcile GETs them again.
    unwanted_checked: set[ObjectRef] = field(default_factory=set)
    # Status detail held back (see STATUS_DETAIL_SECONDS): when each object's status was last written,
    # and the latest one not yet written.
    status_written_at: dict[Key, float] = field(default_factory=dict)
    held: dict[Key, tuple[Mapping[str, Any], Observed]] = field(default_factory=dict)
    verifier: Verifier = field(init=False)
    later: Deferred[Key] = field(init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.verifier = Verifier(on_done=self._verification_done)
        self.later = Deferred(self._write_held)

    def lock(self, key: Key) -> threading.Lock:
        with self._guard:
            return self.locks[key]

    def forget(self, key: Key) -> None:
        with self._guard:
            self.locks.pop(key, None)
            self.written.pop(key, None)
            self.last_seen.pop(key, None)
            self.scaling.pop(key, None)
            self.rendered.pop(key, None)
            self.status_written_at.pop(key, None)
            self.held.pop(key, None)
            children = (key[0], child_name(key[1]))
            for ref in [ref for ref in self.applied if (ref.namespace, ref.name) == children]:
                self.applied.pop(ref, None)
            self.unwanted_checked -= {ref for ref in self.unwanted_checked if (ref.namespace, ref.name) == children}
        self.later.cancel(key)
        metrics.CENSUS.forget(key)
        metrics.forget_autoscaling(key)
        self.verifier.forget(key)

    def reconcile(self, body: Mapping[str, Any], cluster: Cluster, warn: Warn, retry: int = 0) -> Outcome:
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        started = time.monotonic()
        with self.lock(key):
            try:
                outcome = self._reconcile(key, body, cluster, warn, retry)
            except ApiError as error:
                metrics.API_ERRORS.labels(error.operation, str(error.status)).inc()
                outcome = Outcome("error", retry_after=backoff(retry))
                warn("ApiError", str(error))
        metrics.RECONCILES.labels(outcome.result).inc()
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        return outcome

    def _reconcile(self, key: Key, body: Mapping[str, Any], cluster: Cluster, warn: Warn, retry: int) -> Outcome:
        metadata = body["metadata"]
        generation = int(metadata.get("generation", 0))
        try:
            deployment = parse_deployment(body)
            report = plan(deployment, self.classes, cluster.nodes or None)
        except InvalidSpec as error:
            return self._refuse(key, body, Observed(generation, 0), Refusal("InvalidSpec", str(error)), warn, retry)

        scaling = self._scaling(key, deployment, body)
        replicas = scaling.desired if scaling else deployment.spec.replicas
        identity = Identity.of(deployment)
        observed = Observed(
            generation=generation,
            desired_replicas=replicas,
            scaling=scaling,
            plan=report,
            pods=_with_lost_nodes([pod_state(pod) for pod in cluster.pods], cluster.nodes),
            selector=identity.selector_string,
            endpoint=endpoint(deployment, report) if report.runtime else "",
        )
        refusal = _plan_refusal(report) or self._missing_secret(deployment)
        if refusal is not None:
            return self._refuse(key, body, observed, refusal, warn, retry)

        manifests = self._manifests(key, body, deployment, report, replicas)
        live_deployment = self._apply_children(deployment, manifests, cluster.children, _owner(body), warn)
        hint = free_gpus_hint(report, cluster.nodes, cluster.gpus_in_use)
        observed = replace(observed, deployment=live_deployment, scheduling_hint=hint)
        if deployment.spec.serving.verify:
            self._adopt_verification(key, body, generation)
            observed = replace(observed, verified=self._verified(key, observed, report))
        self.last_seen[key] = (body, observed)
        self._write_status(key, body, observed)
        return Outcome("reconciled")

    def _scaling(self, key: Key, deployment: GemmaDeployment, body: Mapping[str, Any]) -> Scaling | None:
        """With autoscaling on, the autoscaler's replicas (after a restart, the ones status kept), within bounds."""
        autoscaling = deployment.spec.autoscaling
        if not autoscaling.enabled:
            self.scaling.pop(key, None)
            return None
        known = self.scaling.get(key)
        if known is None:
            status = body.get("status") or {}
            persisted = status.get("desiredReplicas")
            known = Scaling(
                desired=deployment.spec.replicas if persisted is None else int(persisted),
                last_scale_time=str(status.get("lastScaleTime", "")),
                decisions=tuple(status.get("decisions") or ()),
            )
        bounded = replace(known, desired=max(autoscaling.min_replicas, min(autoscaling.max_replicas, known.desired)))
        self.scaling[key] = bounded
        return bounded

    def _verified(self, key: Key, observed: Observed, report: PlanReport) -> tuple[str, str, str]:
        """Condition Verified: a smoke check once this generation is rolled out, against one ready pod."""
        complete, progress = rollout(observed.deployment, observed.desired_replicas)
        pod = next((pod for pod in observed.pods if pod.ready and pod.ip and not pod.terminating), None)
        if not complete or pod is None or report.runtime is None:
            return "Unknown", "WaitingForRollout", progress if not complete else "waiting for a ready pod"
        base_url = f"http://{pod.ip}:{runtimes()[report.runtime.name].port}"
        verification = self.verifier.current(key, observed.generation, base_url)
        return verification.status, verification.reason, verification.message

    def _adopt_verification(self, key: Key, body: Mapping[str, Any], generation: int) -> None:
        """After a restart, a smoke check that already passed for this generation (status says so) stands."""
        conditions = self._previous_status(key, body).get("conditions") or []
        verified: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Verified"), {})
        if verified.get("status") == "True" and verified.get("observedGeneration") == generation:
            self.verifier.adopt(
                key, Verification(generation, "True", str(verified.get("reason", "")), str(verified.get("message", "")))
            )

    def _verification_done(self, key: Key) -> None:
        with self.lock(key):
            seen = self.last_seen.get(key)
            if seen is None:
                return
            body, observed = seen
            plan_report = observed.plan
            if plan_report is None:
                return
            observed = replace(observed, verified=self._verified(key, observed, plan_report))
            self.last_seen[key] = (body, observed)
            try:
                self._write_status(key, body, observed)
            except ApiError as error:
                metrics.API_ERRORS.labels(error.operation, str(error.status)).inc()

    def _refuse(
        self, key: Key, body: Mapping[str, Any], observed: Observed, refusal: Refusal, warn: Warn, retry: int
    ) -> Outcome:
        previous = self._previous_status(key, body)
        conditions = previous.get("conditions") or []
        stalled_before: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Stalled"), {})
        if stalled_before.get("status") != "True" or stalled_before.get("message") != refusal.message:
            warn(refusal.reason, refusal.message)
        self._write_status(key, body, replace(observed, refusal=refusal))
        return Outcome("stalled", retry_after=backoff(retry) if refusal.reason in RETRYABLE else None)

    def _missing_secret(self, deployment: GemmaDeployment) -> Refusal | None:
        reference = deployment.spec.model.token_secret_ref
        if reference is None:
            return None
        ref = ObjectRef("v1", "Secret", deployment.metadata.namespace, reference.name)
        if self.api.exists(ref):
            return None
        return Refusal(
            "SecretNotFound",
            f"Secret {ref.namespace}/{ref.name} (key {reference.key}) named by spec.model.tokenSecretRef "
            "does not exist; create it and the rollout continues",
        )

    def _manifests(
        self, key: Key, body: Mapping[str, Any], deployment: GemmaDeployment, report: PlanReport, replicas: int
    ) -> list[dict[str, Any]]:
        """The children with their owner reference, rendered once per uid, generation, replicas and plan."""
        metadata = body["metadata"]
        token = json.dumps([metadata["uid"], metadata.get("generation"), replicas, report.to_wire()], default=str)
        cached = self.rendered.get(key)
        if cached is not None and cached[0] == token:
            manifests: list[dict[str, Any]] = unpack(cached[1])
            return manifests
        owner = _owner(body)
        manifests = render(deployment, report, replicas)
        for manifest in manifests:
            manifest["metadata"]["ownerReferences"] = [owner]
        self.rendered[key] = (token, pack(manifests))
        return manifests

    def _apply_children(
        self,
        deployment: GemmaDeployment,
        manifests: list[dict[str, Any]],
        watched: Mapping[str, Mapping[str, Any]],
        owner: dict[str, Any],
        warn: Warn,
    ) -> Mapping[str, Any] | None:
        """Apply each child that is missing or drifted; delete optional children no longer wanted."""
        live_deployment = None
        wanted_kinds = set()
        for manifest in manifests:
            ref = ObjectRef.of(manifest)
            self.unwanted_checked.discard(ref)
            wanted_kinds.add((ref.api_version, ref.kind))
            live = self._live(ref, manifest, watched)
            if live is None or self._needs_apply(ref, manifest, live):
                try:
                    live = self.api.apply(manifest)
                except ApiError as error:
                    if ref.kind == "ServiceMonitor" and error.status == 404:
                        warn(
                            "ServiceMonitorUnavailable",
                            "the ServiceMonitor CRD is not installed; no ServiceMonitor created",
                        )
                        continue
                    raise
                metrics.API_WRITES.labels("apply").inc()
                self.applied[ref] = (_fingerprint(manifest), str(live.get("metadata", {}).get("resourceVersion", "")))
            if ref.kind == "Deployment":
                live_deployment = live
        for api_version, kind in OPTIONAL_CHILDREN:
            if (api_version, kind) in wanted_kinds:
                continue
            ref = ObjectRef(api_version, kind, deployment.metadata.namespace, Identity.of(deployment).name)
            if ref in self.unwanted_checked:
                continue  # only this operator creates them, and it has not since it last looked
            existing = self.api.get(ref)
            if existing is not None and _owned_by(existing, owner):
                self.api.delete(ref)
                metrics.API_WRITES.labels("delete").inc()
            self.unwanted_checked.add(ref)
        return live_deployment

    def _live(
        self, ref: ObjectRef, manifest: Mapping[str, Any], watched: Mapping[str, Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """The child as the watches saw it; a GET only when that looks missing or drifted.

        A watch can lag behind our own apply. When this very manifest was applied already, the
        API server is asked before applying again, so a lagging watch costs a read, not a write.
        """
        if ref.kind not in WATCHED_KINDS:
            return self.api.get(ref)
        live = watched.get(ref.kind)
        if live is not None and not drifted(manifest, live):
            return live
        if live is None and ref not in self.applied:
            return None  # never applied by this process and not seen: create it
        return self.api.get(ref)

    def _needs_apply(self, ref: ObjectRef, manifest: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
        """Drift, unless the live object is exactly what our last apply of this very manifest produced.

        The guard keeps a value the API server normalises differently from how we render it
        from turning into an apply on every event.
        """
        if not drifted(manifest, live):
            return False
        version = str((live.get("metadata") or {}).get("resourceVersion", ""))
        return self.applied.get(ref) != (_fingerprint(manifest), version)

    def _previous_status(self, key: Key, body: Mapping[str, Any]) -> dict[str, Any]:
        known = self.written.get(key)
        if known:
            return known
        # An empty string read back is the schema's default (status.lastScaleTime), not something to remove.
        return {name: value for name, value in (body.get("status") or {}).items() if value != ""}

    def _write_status(self, key: Key, body: Mapping[str, Any], observed: Observed, hold: bool = True) -> None:
        previous = self._previous_status(key, body)
        status = compute_status(observed, previous, _now())
        # Only conditions whose content changed get a new transition time, so an unchanged
        # status compares equal and is not written.
        patch = merge_patch(previous, status)
        if patch:
            seconds = self._hold_seconds(key, previous, status) if hold else 0.0
            if seconds > 0:
                self.held[key] = (body, observed)
                self.later.schedule(key, seconds)
            else:
                self.api.patch_status(key[0], key[1], patch)
                metrics.API_WRITES.labels("status").inc()
                self.status_written_at[key] = time.monotonic()
                self.written[key] = status
                self.held.pop(key, None)
        else:
            self.written[key] = status
            self.held.pop(key, None)
        ready = next((c["status"] for c in status["conditions"] if c["type"] == "Ready"), "Unknown")
        spec = body.get("spec") or {}
        placement = observed.plan.placement if observed.plan else None
        metrics.CENSUS.record(
            key,
            str((spec.get("model") or {}).get("variant", "")),
            observed.plan.runtime.name.value if observed.plan and observed.plan.runtime else "",
            placement.target.value if placement else "",
            ready,
        )

    def _hold_seconds(self, key: Key, previous: Mapping[str, Any], status: Mapping[str, Any]) -> float:
        """How long this status may wait: 0 when kstatus would read it differently, else the detail interval."""
        if _immediate(previous) != _immediate(status):
            return 0.0
        if key not in self.status_written_at:
            return 0.0  # the first write of this process: whatever the previous one left is replaced now
        since_write = time.monotonic() - self.status_written_at[key]
        return max(STATUS_DETAIL_DELAY, STATUS_DETAIL_SECONDS - since_write)

    def _write_held(self, key: Key) -> None:
        """Write the status held back for one object, if a newer write has not made it moot."""
        with self.lock(key):
            held = self.held.pop(key, None)
            if held is None:
                return
            try:
                self._write_status(key, *held, hold=False)
            except ApiError as error:
                metrics.API_ERRORS.labels(error.operation, str(error.status)).inc()


def _immediate(status: Mapping[str, Any]) -> tuple[object, ...]:
    """What kstatus (Flux, Argo CD's health, kubectl wait) and scaling read of a status: written at once."""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return (
        *(status.get(name) for name in IMMEDIATE_FIELDS),
        *(conditions.get(kind) for kind in IMMEDIATE_CONDITIONS),
    )


def _with_lost_nodes(pods: list[PodState], nodes: Sequence[NodeInfo]) -> list[PodState]:
    """Pods bound to a node the inventory no longer has are lost, until the pod GC replaces them."""
    if not nodes:
        return pods  # no inventory known (yet): nothing to judge by
    known = {node.name for node in nodes}
    return [
        replace(pod, ready=False, node_lost=True) if pod.node and pod.node not in known and not pod.terminating else pod
        for pod in pods
    ]


def _plan_refusal(report: PlanReport) -> Refusal | None:
    if report.fits:
        return None
    if report.runtime is None:
        reason = "Unsatisfiable"
    elif any(problem.startswith("no node can host") for problem in report.problems):
        reason = "NoNodeFits"
    else:
        reason = "DoesNotFit"
    return Refusal(reason, "; ".join(report.problems))


def _owner(body: Mapping[str, Any]) -> dict[str, Any]:
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


def _fingerprint(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def backoff(retry: int) -> float:
    return float(min(MAX_BACKOFF_SECONDS, 15 * 2 ** min(retry, 6)))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
