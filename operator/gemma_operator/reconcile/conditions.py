"""The status of a GemmaDeployment, computed from what was planned and what the cluster reports. Pure.

kstatus reads it: observedGeneration with the conditions, Reconciling while a rollout is
under way, Stalled when the spec cannot be satisfied, Ready when the current generation is
rolled out and available. Domain conditions add the detail: Planned, Scheduled, Available.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemma_operator.api import ConditionStatus, PlanReport, Reason
from gemma_operator.planning import Plan, PlanResult, Refused

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE.value, ConditionStatus.FALSE.value, ConditionStatus.UNKNOWN.value


STALLING_FAILURES = frozenset(
    {Reason.PROGRESS_DEADLINE_EXCEEDED, Reason.SECRET_NOT_FOUND, Reason.CREATE_CONTAINER_CONFIG_ERROR}
)


@dataclass(frozen=True)
class PodState:
    """What status needs to know of one serving pod."""

    name: str
    node: str
    ready: bool
    ip: str = ""
    unschedulable_message: str | None = None
    terminating: bool = False
    # Bound to a node that no longer exists: not serving, whatever its last status said.
    node_lost: bool = False
    # The kubelet's message when it cannot make the container's configuration (a Secret or key missing).
    config_error: str | None = None


@dataclass(frozen=True)
class Scaling:
    """The built-in autoscaler's part of the status; conditions as (status, reason, message)."""

    desired: int
    last_scale_time: str = ""
    decisions: tuple[Mapping[str, Any], ...] = ()
    active: tuple[str, Reason, str] = (UNKNOWN, Reason.WAITING_FOR_METRICS, "no scrape yet")
    limited: tuple[str, Reason, str] = (FALSE, Reason.WITHIN_LIMITS, "")


@dataclass(frozen=True)
class Paced:
    """The operator's own rollout of the object (after an upgrade), as status tells it: waiting for a slot, or
    past its slot's timeout and not Ready yet; each a message, empty when not so."""

    waiting: str = ""
    timed_out: str = ""


@dataclass(frozen=True)
class Capacity:
    """How the free GPUs shape the rollout of a new template, as status tells it (rendering.rollout decides)."""

    # The new template waits for a node with a new pod's GPUs free: why, empty when it does not wait.
    waiting: str = ""
    # The template that waits is a spec change's (the spec asks for what no pod runs yet), not the operator's own:
    # Ready waits with it.
    for_spec: bool = False
    # The template rolls without a surge pod: why, while it rolls.
    without_surge: str = ""


@dataclass(frozen=True)
class Observed:
    """Everything the status is computed from."""

    generation: int
    desired_replicas: int
    # What the planner made of the spec (None: the spec could not be read), and that as status.plan reports it.
    plan: PlanResult | None = None
    report: PlanReport | None = None
    # Why the spec cannot be served now: the plan's refusal, an unreadable spec, a missing Secret.
    refusal: Refused | None = None
    deployment: Mapping[str, Any] | None = None
    pods: Sequence[PodState] = field(default_factory=tuple)
    scheduling_hint: str = ""
    selector: str = ""
    endpoint: str = ""
    # Condition Verified as (status, reason, message); None when verification is off.
    verified: tuple[str, Reason, str] | None = None
    scaling: Scaling | None = None
    # status.runtime as the live Deployment's template says (provenance.runtime_of), and its paced rollout.
    running: Mapping[str, Any] | None = None
    paced: Paced = Paced()
    capacity: Capacity = Capacity()


def _condition(
    kind: str,
    status: str,
    reason: Reason,
    message: str,
    observed: Observed,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    before = previous.get(kind, {})
    # The transition time moves only when the status does, as metav1.Condition requires.
    moved = before.get("status") != status or not before.get("lastTransitionTime")
    return {
        "type": kind,
        "status": status,
        "reason": reason.value,
        "message": message,
        "lastTransitionTime": now if moved else before["lastTransitionTime"],
        "observedGeneration": observed.generation,
    }


def rollout(deployment: Mapping[str, Any] | None, desired: int) -> tuple[bool, str]:
    """Whether the Deployment has rolled out its template to every replica, and if not, why."""
    if deployment is None:
        return False, "the Deployment does not exist yet"
    status = deployment.get("status") or {}
    generation = (deployment.get("metadata") or {}).get("generation", 0)
    updated, available, total = (status.get(k, 0) for k in ("updatedReplicas", "availableReplicas", "replicas"))
    if status.get("observedGeneration", 0) < generation:
        return False, "the Deployment controller has not seen the new template yet"
    if updated < desired:
        return False, f"{updated}/{desired} replicas updated"
    if total > updated:
        return False, f"{total - updated} old replicas still terminating"
    if available < desired:
        return False, f"{available}/{desired} replicas available"
    return True, f"{available}/{desired} replicas available"


def deployment_failure(deployment: Mapping[str, Any] | None) -> tuple[Reason, str] | None:
    """What the Deployment's controller reports against rolling out its current template, in its words: the
    progress deadline passed, or the ReplicaSet cannot create pods (a quota, Pod Security)."""
    status = (deployment or {}).get("status") or {}
    if status.get("observedGeneration", 0) < ((deployment or {}).get("metadata") or {}).get("generation", 0):
        return None  # the conditions are about an older template
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing, replica_failure = conditions.get("Progressing", {}), conditions.get("ReplicaFailure", {})
    if progressing.get("status") == FALSE and progressing.get("reason") == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return Reason.PROGRESS_DEADLINE_EXCEEDED, str(progressing.get("message", ""))
    if replica_failure.get("status") == TRUE:
        return Reason.REPLICA_FAILURE, str(replica_failure.get("message", ""))
    return None


def pod_failure(pods: Sequence[PodState]) -> tuple[Reason, str] | None:
    """Why pods cannot start their container, as the kubelet reports it: a human has to act."""
    failing = [pod for pod in pods if pod.config_error]
    if not failing:
        return None
    message = failing[0].config_error or ""
    # The kubelet's words for a missing Secret or key: `secret "hf-token" not found`, `couldn't find key
    # token in Secret ml/hf-token`. The operator never reads Secrets itself.
    reason = Reason.SECRET_NOT_FOUND if "secret" in message.lower() else Reason.CREATE_CONTAINER_CONFIG_ERROR
    return reason, f"{len(failing)}/{len(pods)} pods cannot start their container: {message}"


# Below this the towers are not worth a line (rounded to 0.1 GiB they would read as nothing).
MULTIMODAL_WORTH_NAMING_GIB = 0.05


def _planned(plan: PlanResult | None) -> tuple[str, Reason, str]:
    """Status, reason and message of the Planned condition."""
    if plan is None:
        return FALSE, Reason.NOT_PLANNED, "the spec could not be planned"
    if not isinstance(plan, Plan):
        return FALSE, Reason.DOES_NOT_FIT, plan.message
    placement = plan.placement
    hardware = (
        f"{placement.gpus_per_replica} x {placement.accelerator_class}"
        if placement.gpus_per_replica
        else placement.target.value
    )
    memory = f"{plan.memory.required_gi_b:.1f} of {plan.memory.available_gi_b:.1f} GiB per replica"
    admits = (
        f"admits {plan.concurrency.guaranteed:.2f} sequences at maxContextTokens by its own accounting, "
        f"{plan.concurrency.steady_decode} in steady decode"
    )
    message = f"{plan.runtime.name.value} {plan.runtime.version} on {hardware}: {memory}; {admits}"
    if plan.memory.multimodal_gi_b >= MULTIMODAL_WORTH_NAMING_GIB:
        message += (
            f"; encoder towers and their profile take {plan.memory.multimodal_gi_b:.1f} GiB per replica, which "
            "serving.modalities.textOnly would free"
        )
    return TRUE, Reason.PLANNED, message + (f"; {plan.runtime.auto_choice}" if plan.runtime.auto_choice else "")


def _scheduled(pods: Sequence[PodState], hint: str) -> tuple[str, Reason, str]:
    """Status, reason and message of the Scheduled condition, from the pods that are not terminating."""
    unschedulable = [pod for pod in pods if pod.unschedulable_message]
    lost = [pod for pod in pods if pod.node_lost]
    if lost:
        gone = ", ".join(sorted({pod.node for pod in lost}))
        return FALSE, Reason.NODE_LOST, f"{len(lost)}/{len(pods)} pods on nodes that are gone: {gone}"
    if unschedulable:
        detail = unschedulable[0].unschedulable_message or ""
        suffix = f"; {hint}" if hint else ""
        return (
            FALSE,
            Reason.UNSCHEDULABLE,
            f"{len(unschedulable)}/{len(pods)} pods cannot be scheduled: {detail}{suffix}",
        )
    if pods and all(pod.node for pod in pods):
        nodes = sorted({pod.node for pod in pods})
        return TRUE, Reason.SCHEDULED, f"{len(pods)} pods on {', '.join(nodes)}"
    return UNKNOWN, Reason.PENDING, "waiting for pods"


def _reconciling(
    ready: bool, stalled: bool, reason: Reason, waiting: str, paced: Paced, capacity: Capacity
) -> tuple[str, Reason, str]:
    """Status, reason and message of the Reconciling condition."""
    if paced.waiting and not stalled:
        # Serving as before while the operator's own change of the template waits for its turn.
        return TRUE, Reason.OPERATOR_UPGRADE_PENDING, paced.waiting + ("" if ready else f"; {waiting}")
    if capacity.waiting and not stalled:
        # Serving as before while the new template waits for GPUs.
        unsaid = not ready and waiting != capacity.waiting
        return TRUE, Reason.WAITING_FOR_CAPACITY, capacity.waiting + (f"; {waiting}" if unsaid else "")
    return (FALSE, Reason.READY, "") if ready else (FALSE if stalled else TRUE, reason, waiting)


def _rolling_out(progress: str, failure: tuple[Reason, str] | None, observed: Observed) -> str:
    """What a rollout under way waits for, and what else status knows of it."""
    notes = [f"rolling out: {progress}" + (f": {failure[1]}" if failure else "")]
    notes += [note for note in (observed.paced.timed_out, observed.capacity.without_surge) if note]
    return "; ".join(notes)


def compute_status(observed: Observed, previous_status: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The whole status object for one GemmaDeployment."""
    previous = {c.get("type", ""): c for c in previous_status.get("conditions") or []}

    def condition(kind: str, status: str, reason: Reason, message: str) -> dict[str, Any]:
        return _condition(kind, status, reason, message, observed, previous, now)

    pods = [pod for pod in observed.pods if not pod.terminating]
    ready_pods = sum(1 for pod in pods if pod.ready)
    base: dict[str, Any] = {
        "observedGeneration": observed.generation,
        "replicas": len(pods),
        "readyReplicas": ready_pods,
        "selector": observed.selector,
        "endpoint": observed.endpoint,
    }
    if observed.report is not None:
        base["plan"] = observed.report.to_wire()
    if isinstance(observed.plan, Plan) and observed.plan.runtime.adapters:
        base["adapters"] = list(observed.plan.runtime.adapters)
    scaling_conditions = []
    if observed.scaling is not None:
        scaling = observed.scaling
        base |= {
            "desiredReplicas": scaling.desired,
            "lastScaleTime": scaling.last_scale_time,
            "decisions": [dict(decision) for decision in scaling.decisions],
        }
        scaling_conditions = [
            condition("ScalingActive", *scaling.active),
            condition("ScalingLimited", *scaling.limited),
        ]

    planned = _planned(observed.plan)
    # What the pods run is what the last template rolled out to all of them runs.
    if previous_status.get("runtime"):
        base["runtime"] = previous_status["runtime"]
    if observed.refusal is not None:
        refusal = observed.refusal
        conditions = [
            condition("Ready", FALSE, refusal.reason, refusal.message),
            condition("Reconciling", FALSE, refusal.reason, "waiting for the spec or the cluster to change"),
            condition("Stalled", TRUE, refusal.reason, refusal.message),
            condition("Planned", *planned),
            *scaling_conditions,
        ]
        return {**base, "conditions": conditions}

    scheduled = condition("Scheduled", *_scheduled(pods, observed.scheduling_hint))

    rolled_out, progress = rollout(observed.deployment, observed.desired_replicas)
    if rolled_out and ready_pods < observed.desired_replicas:
        # The Deployment's counts can run ahead of the pod events: Ready waits until readyReplicas
        # agrees, so that status never says Ready with fewer ready replicas than desired.
        rolled_out, progress = False, f"{ready_pods}/{observed.desired_replicas} ready pods seen"
    if rolled_out and observed.running is not None:
        base["runtime"] = dict(observed.running)
    failure = None if rolled_out else pod_failure(pods) or deployment_failure(observed.deployment)
    if observed.desired_replicas == 0:
        available = condition("Available", TRUE, Reason.SCALED_TO_ZERO, "0 replicas desired")
    elif rolled_out:
        available = condition("Available", TRUE, Reason.MINIMUM_REPLICAS_AVAILABLE, progress)
    elif failure:
        available = condition("Available", FALSE, *failure)
    else:
        available = condition("Available", FALSE, Reason.ROLLING_OUT, progress)

    ready = rolled_out or observed.desired_replicas == 0
    reason = (
        failure[0]
        if failure
        else Reason.UNSCHEDULABLE
        if any(pod.unschedulable_message for pod in pods)
        else Reason.ROLLING_OUT
    )
    waiting = _rolling_out(progress, failure, observed)
    # Past the deadline the Deployment is Stalled to kstatus, and pods the kubelet cannot configure wait for a
    # human: the operator's status says so.
    deadline = failure if failure and failure[0] in STALLING_FAILURES else None
    if observed.capacity.for_spec:  # the pods run the template of an older spec
        ready, reason, waiting = False, Reason.WAITING_FOR_CAPACITY, observed.capacity.waiting
    extra = []
    if observed.verified is not None and observed.desired_replicas:
        verified_status, verified_reason, verified_message = observed.verified
        extra.append(condition("Verified", verified_status, verified_reason, verified_message))
        if ready and verified_status != TRUE:
            # Ready includes Verified: the pods are up, but the model has not answered yet.
            ready, reason, waiting = False, verified_reason, f"waiting for the smoke check: {verified_message}"
    reconciling = _reconciling(ready, deadline is not None, reason, waiting, observed.paced, observed.capacity)
    conditions = [
        condition(
            "Ready",
            TRUE if ready else FALSE,
            Reason.READY if ready else reason,
            progress if ready else waiting,
        ),
        condition("Reconciling", *reconciling),
        condition("Stalled", TRUE, *deadline) if deadline else condition("Stalled", FALSE, Reason.PLANNED, ""),
        condition("Planned", *planned),
        scheduled,
        available,
        *extra,
        *scaling_conditions,
    ]
    return {**base, "conditions": conditions}
