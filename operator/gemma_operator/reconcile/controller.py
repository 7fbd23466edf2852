"""One reconcile of one GemmaDeployment: plan, apply what differs, prune, and write status when it changed.
Runs in a worker thread (its API calls block), one at a time per object."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gemma_operator.api import RETRYABLE_REFUSALS, GemmaDeployment, InvalidSpec, Reason, parse_deployment
from gemma_operator.catalog import AcceleratorClasses, runtimes
from gemma_operator.planning import (
    CATALOG_IMAGES,
    NodeInfo,
    Plan,
    Refused,
    RuntimeImages,
    plan,
    plan_report,
    sized_plan,
)
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.children import ChildRefused, Children, owner_reference
from gemma_operator.reconcile.clock import Clock, timestamp
from gemma_operator.reconcile.conditions import UNKNOWN, Capacity, Observed, Paced, PodState, Scaling, rollout
from gemma_operator.reconcile.kube import ApiError, KubeApi
from gemma_operator.reconcile.observe import free_gpus_hint, pod_state, with_lost_nodes
from gemma_operator.reconcile.pacing import Budget, Pacer, Turn
from gemma_operator.reconcile.provenance import rendered_for, runtime_of
from gemma_operator.reconcile.queue import DONE, RETRY, Result
from gemma_operator.reconcile.state import Key, ObjectState, Planned
from gemma_operator.reconcile.status import StatusWriter, previous_status
from gemma_operator.reconcile.verification import SmokeOutcome, SmokeRequest, Verdict, adopt, record, verify
from gemma_operator.rendering import Identity, endpoint
from gemma_operator.rendering.rollout import RolloutDecision, RolloutMode, decide_rollout

log = logging.getLogger("gemma_operator")


@dataclass(frozen=True)
class Cluster:
    """What the indexes know, passed in so that a reconcile reads no lists from the API."""

    nodes: Sequence[NodeInfo] = ()
    gpus_in_use: Mapping[str, int] = field(default_factory=dict)
    pods: Sequence[Mapping[str, Any]] = ()
    # The GemmaDeployment's Deployment and Service as the watches last saw them, by kind.
    children: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScalingDecided:
    """The built-in autoscaler's new verdict, handed to the reconcile that applies it."""

    scaling: Scaling


Note = ScalingDecided | SmokeOutcome


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended (the metric's label), when to come back, and what to start next."""

    result: str
    queue: Result = DONE
    smoke: SmokeRequest | None = None
    autoscaling: bool = False
    # Other objects to reconcile now: a rollout slot they wait for was freed.
    wake: tuple[Key, ...] = ()


def planned(
    known: Planned | None,
    gd: GemmaDeployment,
    classes: AcceleratorClasses,
    nodes: Sequence[NodeInfo],
    images: RuntimeImages = CATALOG_IMAGES,
) -> Planned:
    """The known plan while the spec and the node inventory are those it was made from, else a new one."""
    inventory = tuple(nodes)
    if known is not None and known.spec == gd.spec and known.nodes == inventory:
        return known
    return Planned(gd.spec, inventory, plan(gd, classes, inventory or None, images))


def pool_of(result: Plan) -> str:
    """The pool whose rollout slots a GemmaDeployment's paced rollout takes: its accelerator class, else its target."""
    return result.placement.accelerator_class or result.placement.target.value


class Controller:
    def __init__(
        self,
        api: KubeApi,
        classes: AcceleratorClasses,
        clock: Clock,
        *,
        images: RuntimeImages = CATALOG_IMAGES,
        pacer: Pacer | None = None,
    ) -> None:
        self.classes = classes
        self.images = images
        self._api = api
        self._clock = clock
        self._children = Children(api)
        self._status = StatusWriter(api, clock)
        self._pacer = pacer or Pacer(Budget(), clock)
        # Reconciles run in worker threads; the table of those waiting for GPUs is read from the event loop.
        self._lock = threading.Lock()
        self._waiting_for_capacity: set[Key] = set()

    def reconcile(
        self, key: Key, body: Mapping[str, Any], cluster: Cluster, state: ObjectState, notes: Sequence[Note]
    ) -> Outcome:
        started = self._clock.monotonic()
        for note in notes:
            if isinstance(note, ScalingDecided):
                state.scaling = note.scaling
            else:
                record(state.verification, note, started)
        try:
            outcome = self._reconcile(key, body, cluster, state)
        except ApiError as error:
            metrics.API_ERRORS.labels(error.operation, str(error.status)).inc()
            self._warn(body, Reason.API_ERROR, str(error))
            outcome = Outcome("error", RETRY)
        metrics.RECONCILES.labels(outcome.result).inc()
        metrics.RECONCILE_SECONDS.observe(self._clock.monotonic() - started)
        return outcome

    def _reconcile(self, key: Key, body: Mapping[str, Any], cluster: Cluster, state: ObjectState) -> Outcome:
        generation = int(body["metadata"].get("generation", 0))
        try:
            gd = parse_deployment(body)
            state.planned = planned(state.planned, gd, self.classes, cluster.nodes, self.images)
            result = state.planned.result
        except InvalidSpec as error:
            refused = Refused.because(Reason.INVALID_SPEC, str(error))
            return self._refuse(key, body, state, Observed(generation, 0), refused)

        scaling = self._scaling(state, gd, body)
        replicas = scaling.desired if scaling else gd.spec.replicas
        sized = sized_plan(result)
        observed = Observed(
            generation=generation,
            desired_replicas=replicas,
            scaling=scaling,
            plan=result,
            report=plan_report(gd, result),
            pods=with_lost_nodes([pod_state(pod) for pod in cluster.pods], cluster.nodes),
            selector=Identity.of(gd).selector_string,
            endpoint=endpoint(gd, sized) if sized else "",
        )
        if isinstance(result, Refused):
            return self._refuse(key, body, state, observed, result)

        manifests = self._children.manifests(state.children, body, gd, result, replicas)
        warn = lambda reason, message: self._warn(body, reason, message)  # noqa: E731
        decision = self._rollout(key, state, gd, manifests, cluster, result, replicas, observed.pods)
        waits = decision is not None and decision.mode is RolloutMode.WAIT
        turn, wake = self._turn(key, state, gd, manifests, cluster, pool_of(result), waits)
        held = waits or (turn is not None and not turn.rolls)
        if decision is not None and not held:
            self._children.decide_rollout(state.children, gd, manifests, decision)
        try:
            live = self._children.apply(
                state.children,
                gd,
                manifests,
                cluster.children,
                owner_reference(body),
                warn,
                keep_deployment=held,
            )
        except ChildRefused as refused:
            return self._refuse(key, body, state, observed, refused.refusal, retry=True)
        observed = replace(
            observed,
            deployment=live,
            scheduling_hint=free_gpus_hint(result, cluster.nodes, cluster.gpus_in_use),
            capacity=self._capacity(state, gd, manifests, cluster, decision if waits else None),
        )
        paced, paced_due, freed = self._paced(key, body, observed, turn, pool_of(result))
        observed = replace(observed, running=runtime_of(live), paced=paced)
        smoke = None
        if gd.spec.serving.verify:
            verdict, smoke = self._verified(state, body, observed, result)
            observed = replace(observed, verified=verdict)
        written_in = self._status.write(key, state.status, body, observed)
        due = [seconds for seconds in (written_in, self._recheck_in(state), paced_due) if seconds > 0]
        return Outcome(
            "reconciled",
            Result(after=min(due)) if due else DONE,
            smoke,
            autoscaling=gd.spec.autoscaling.enabled,
            wake=tuple(dict.fromkeys((*wake, *freed))),
        )

    def _rollout(
        self,
        key: Key,
        state: ObjectState,
        gd: GemmaDeployment,
        manifests: list[dict[str, Any]],
        cluster: Cluster,
        result: Plan,
        replicas: int,
        pods: Sequence[PodState],
    ) -> RolloutDecision | None:
        """How the new template about to be applied rolls, from the free GPUs now (None: none is, and the serving
        Deployment keeps the strategy it has); an object whose template waits for GPUs is reconciled again when
        nodes or pods change."""
        decision = None
        if not self._children.settled_rollout(state.children, gd, manifests, cluster.children):
            live = cluster.children["Deployment"]
            decision = decide_rollout(
                gd,
                result.placement,
                replicas,
                cluster.nodes,
                cluster.gpus_in_use,
                current=int((live.get("spec") or {}).get("replicas") or 0),
                ready=sum(1 for pod in pods if pod.ready and not pod.terminating),
            )
        self._wait_for_capacity(key, decision is not None and decision.mode is RolloutMode.WAIT)
        return decision

    def _wait_for_capacity(self, key: Key, waits: bool) -> None:
        with self._lock:
            if waits:
                self._waiting_for_capacity.add(key)
            else:
                self._waiting_for_capacity.discard(key)

    def waiting_for_capacity(self) -> tuple[Key, ...]:
        """The objects whose new template waits for GPUs: a node or pod change may have freed them."""
        with self._lock:
            return tuple(self._waiting_for_capacity)

    def _capacity(
        self,
        state: ObjectState,
        gd: GemmaDeployment,
        manifests: list[dict[str, Any]],
        cluster: Cluster,
        waiting: RolloutDecision | None,
    ) -> Capacity:
        """What status says of how the free GPUs shape the rollout: the wait, or the rollout without a surge pod."""
        if waiting is not None:
            live = cluster.children["Deployment"]
            return Capacity(waiting=waiting.why, for_spec=rendered_for(live) not in (None, gd.metadata.generation))
        rolling = self._children.rolling(state.children, gd, manifests)
        return Capacity(without_surge=rolling.why if rolling else "")

    def _turn(
        self,
        key: Key,
        state: ObjectState,
        gd: GemmaDeployment,
        manifests: list[dict[str, Any]],
        cluster: Cluster,
        pool: str,
        waits: bool,
    ) -> tuple[Turn | None, tuple[Key, ...]]:
        """The turn of a template change the operator makes on its own (None: there is none, or it `waits` for
        GPUs and takes no slot meanwhile, and the Deployment is applied as always), and the waiters a timed-out
        slot freed."""
        if waits or not self._children.operator_change(state.children, gd, manifests, cluster.children):
            self._pacer.withdraw(key)
            return None, ()
        return self._pacer.request(key, pool)

    def _paced(
        self, key: Key, body: Mapping[str, Any], observed: Observed, turn: Turn | None, pool: str
    ) -> tuple[Paced, float, tuple[Key, ...]]:
        """Status of the paced rollout, the seconds until it is due again (0: not), and the waiters it frees."""
        complete, _ = rollout(observed.deployment, observed.desired_replicas)
        ready_pods = sum(1 for pod in observed.pods if pod.ready and not pod.terminating)
        progress = self._pacer.progress(key, complete and ready_pods >= observed.desired_replicas)
        budget = self._pacer.budget
        timed_out = ""
        if progress.timed_out:
            timed_out = (
                f"operator upgrade: not Ready within {budget.timeout_seconds:.0f} s of taking its rollout slot of "
                f"{pool}; the slot went to the next in line"
            )
            if progress.first:
                self._warn(body, Reason.OPERATOR_UPGRADE_TIMED_OUT, timed_out)
        waiting = ""
        if turn is not None and not turn.rolls:
            waiting = (
                f"operator upgrade: the new template waits for a rollout slot of {pool}: position {turn.position} of "
                f"{turn.queued} waiting, {turn.rolling} of {budget.per_pool} slots in use"
            )
        due = next((seconds for seconds in (turn.due if turn else None, progress.due) if seconds is not None), 0.0)
        return Paced(waiting=waiting, timed_out=timed_out), max(due, 0.0), progress.wake

    def forget(self, key: Key) -> tuple[Key, ...]:
        """The object is gone: out of the rollout line; the waiters its slot, if it held one, frees."""
        with self._lock:
            self._waiting_for_capacity.discard(key)
        return self._pacer.forget(key)

    def _scaling(self, state: ObjectState, gd: GemmaDeployment, body: Mapping[str, Any]) -> Scaling | None:
        """With autoscaling on, the autoscaler's replicas (after a restart, the ones status kept), within bounds."""
        autoscaling = gd.spec.autoscaling
        if not autoscaling.enabled:
            state.scaling = None
            return None
        known = state.scaling
        if known is None:
            status = body.get("status") or {}
            persisted = status.get("desiredReplicas")
            known = Scaling(
                desired=gd.spec.replicas if persisted is None else int(persisted),
                last_scale_time=str(status.get("lastScaleTime", "")),
                decisions=tuple(status.get("decisions") or ()),
            )
        bounds = autoscaling.min_replicas, autoscaling.max_replicas
        state.scaling = replace(known, desired=max(bounds[0], min(bounds[1], known.desired)))
        return state.scaling

    def _verified(
        self, state: ObjectState, body: Mapping[str, Any], observed: Observed, result: Plan
    ) -> tuple[Verdict, SmokeRequest | None]:
        """Condition Verified, and the smoke check to start: once this generation is rolled out, against a ready pod."""
        if observed.capacity.for_spec:
            return (UNKNOWN, Reason.WAITING_FOR_ROLLOUT, "the new template waits for GPUs"), None
        complete, progress = rollout(observed.deployment, observed.desired_replicas)
        pod = next((pod for pod in observed.pods if pod.ready and pod.ip and not pod.terminating), None)
        if not complete or pod is None:
            return (UNKNOWN, Reason.WAITING_FOR_ROLLOUT, progress if not complete else "waiting for a ready pod"), None
        memory = state.verification
        adopt(memory, previous_status(state.status, body), observed.generation)
        base_url = f"http://{pod.ip}:{runtimes()[result.runtime.name].port}"
        request = verify(memory, observed.generation, base_url, self._clock.monotonic(), tuple(result.runtime.adapters))
        assert memory.current is not None
        return memory.current.verdict, request

    def _recheck_in(self, state: ObjectState) -> float:
        """Seconds until a failed smoke check is due again (0: none is)."""
        current = state.verification.current
        if current is None or current.retry_at == float("inf"):
            return 0.0
        return max(current.retry_at - self._clock.monotonic(), 0.001)

    def _refuse(
        self,
        key: Key,
        body: Mapping[str, Any],
        state: ObjectState,
        observed: Observed,
        refusal: Refused,
        *,
        retry: bool | None = None,
    ) -> Outcome:
        """Stalled, with one Event per new refusal; retried with backoff when `retry` (by default: when a change
        in the cluster can lift the refusal's reason), never sooner."""
        self._wait_for_capacity(key, False)
        conditions = previous_status(state.status, body).get("conditions") or []
        stalled_before: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Stalled"), {})
        if stalled_before.get("status") != "True" or stalled_before.get("message") != refusal.message:
            self._warn(body, refusal.reason, refusal.message)
        held = self._status.write(key, state.status, body, replace(observed, refusal=refusal))
        if retry is None:
            retry = refusal.reason in RETRYABLE_REFUSALS
        # No rollout of the operator's own is waited for while the spec cannot be served: its slot, if it held
        # one, goes to the next in line.
        return Outcome("stalled", Result(retry=retry, after=held or None), wake=self._pacer.forget(key))

    def _warn(self, body: Mapping[str, Any], reason: Reason, message: str) -> None:
        try:
            self._api.warn(body, reason, message, timestamp(self._clock.now()))
            metrics.API_WRITES.labels("event").inc()
        except ApiError as error:  # an Event is worth no retry of the reconcile
            metrics.API_ERRORS.labels(error.operation, str(error.status)).inc()
            log.warning("could not post Event %s: %s", reason.value, error)
