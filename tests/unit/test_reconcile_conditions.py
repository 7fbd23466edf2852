"""compute_status: the kstatus conditions and the domain ones, from what was planned and observed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Reason
from gemma_operator.planning import Refused
from gemma_operator.reconcile.conditions import FALSE, TRUE, UNKNOWN, Observed, PodState, compute_status, rollout

from .builders import deployment, fitted

PLAN = fitted(deployment())
GENERATION = 3
SCHEDULER = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
HINT = "0/2 h100 nodes have 1 free nvidia.com/gpu (most free: 0)"


def live_deployment(
    updated: int = 2, available: int = 2, total: int | None = None, seen: int = 1, generation: int = 1
) -> dict[str, Any]:
    """A Deployment as the API server returns it; `seen` is the generation its controller has observed."""
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": seen,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "replicas": updated if total is None else total,
        },
    }


def pods(count: int, ready: bool = True, **state: Any) -> tuple[PodState, ...]:
    return tuple(PodState(name=f"chat-{i}", node=f"gpu-{i}", ready=ready, **state) for i in range(count))


def observed(**overrides: Any) -> Observed:
    """Two replicas of the default plan, rolled out and ready, unless overridden."""
    base = Observed(
        generation=GENERATION,
        desired_replicas=2,
        plan=PLAN,
        deployment=live_deployment(),
        pods=pods(2),
    )
    return replace(base, **overrides)


def by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {condition["type"]: condition for condition in status["conditions"]}


def summary(status: dict[str, Any], kind: str) -> tuple[str, str, str]:
    condition = by_type(status)[kind]
    return condition["status"], condition["reason"], condition["message"]


def status_of(obs: Observed, previous: dict[str, Any] | None = None, now: str = "t0") -> dict[str, Any]:
    return compute_status(obs, previous or {}, now)


REFUSAL = Refused.because(Reason.SECRET_NOT_FOUND, 'Secret "hf-token" not found in ml')


@pytest.mark.parametrize(
    "obs",
    [observed(), observed(refusal=REFUSAL), observed(deployment=None, pods=())],
    ids=["ready", "refused", "rolling-out"],
)
def test_every_condition_and_the_status_carry_the_observed_generation(obs: Observed) -> None:
    status = status_of(obs)
    assert status["observedGeneration"] == GENERATION
    assert {condition["observedGeneration"] for condition in status["conditions"]} == {GENERATION}


def test_a_rolled_out_generation_is_ready_not_reconciling_and_not_stalled() -> None:
    status = status_of(observed())
    assert summary(status, "Ready") == (TRUE, "Ready", "2/2 replicas available")
    assert summary(status, "Reconciling") == (FALSE, "Ready", "")
    assert summary(status, "Stalled") == (FALSE, "Planned", "")
    assert summary(status, "Available") == (TRUE, "MinimumReplicasAvailable", "2/2 replicas available")
    assert summary(status, "Scheduled") == (TRUE, "Scheduled", "2 pods on gpu-0, gpu-1")
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)


def test_status_names_the_adapters_the_plan_serves() -> None:
    served = fitted(deployment(adapters=[{"name": "sql", "repository": "example/sql-lora"}]))
    assert compute_status(observed(plan=served), {}, "t")["adapters"] == ["sql"]
    assert "adapters" not in compute_status(observed(), {}, "t")
    # A refused spec serves none, whatever it asks for.
    refused = Refused.because(Reason.UNSATISFIABLE, "no")
    assert "adapters" not in compute_status(observed(plan=refused, refusal=refused), {}, "t")


def test_a_refusal_stalls_with_its_reason_and_message() -> None:
    status = status_of(observed(refusal=REFUSAL))
    message = 'Secret "hf-token" not found in ml'
    assert summary(status, "Stalled") == (TRUE, "SecretNotFound", message)
    assert summary(status, "Ready") == (FALSE, "SecretNotFound", message)
    assert summary(status, "Reconciling") == (
        FALSE,
        "SecretNotFound",
        "waiting for the spec or the cluster to change",
    )
    # Nothing was applied, so there is nothing to say of pods or availability.
    assert [condition["type"] for condition in status["conditions"]] == ["Ready", "Reconciling", "Stalled", "Planned"]


@pytest.mark.parametrize(
    ("live", "done", "message"),
    [
        (None, False, "the Deployment does not exist yet"),
        (live_deployment(seen=1, generation=2), False, "the Deployment controller has not seen the new template yet"),
        (live_deployment(updated=1, available=1), False, "1/2 replicas updated"),
        (live_deployment(total=3), False, "1 old replicas still terminating"),
        (live_deployment(available=1), False, "1/2 replicas available"),
        (live_deployment(), True, "2/2 replicas available"),
    ],
    ids=["no-deployment", "controller-behind", "updating", "old-terminating", "becoming-available", "complete"],
)
def test_rollout_says_how_far_the_deployment_is(live: dict[str, Any] | None, done: bool, message: str) -> None:
    assert rollout(live, desired=2) == (done, message)


def test_an_unfinished_rollout_is_reconciling_with_its_progress() -> None:
    status = status_of(observed(deployment=live_deployment(updated=1, available=1)))
    assert summary(status, "Ready") == (FALSE, "RollingOut", "rolling out: 1/2 replicas updated")
    assert summary(status, "Reconciling") == (TRUE, "RollingOut", "rolling out: 1/2 replicas updated")
    assert summary(status, "Stalled") == (FALSE, "Planned", "")
    assert summary(status, "Available") == (FALSE, "RollingOut", "1/2 replicas updated")


def test_ready_waits_until_the_ready_pods_are_seen() -> None:
    # The Deployment counts both replicas available, but one pod's Ready event has not arrived yet.
    status = status_of(observed(pods=(*pods(1), PodState(name="chat-1", node="gpu-1", ready=False))))
    assert summary(status, "Ready") == (FALSE, "RollingOut", "rolling out: 1/2 ready pods seen")
    assert summary(status, "Available") == (FALSE, "RollingOut", "1/2 ready pods seen")
    assert status["readyReplicas"] == 1


def test_terminating_pods_are_not_counted() -> None:
    status = status_of(observed(pods=(*pods(2), PodState(name="old", node="gpu-9", ready=True, terminating=True))))
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert summary(status, "Scheduled") == (TRUE, "Scheduled", "2 pods on gpu-0, gpu-1")


def test_a_pending_verification_holds_ready_back() -> None:
    status = status_of(observed(verified=(UNKNOWN, Reason.VERIFYING, "asking chat-0")))
    assert summary(status, "Ready") == (FALSE, "Verifying", "waiting for the smoke check: asking chat-0")
    assert summary(status, "Reconciling") == (TRUE, "Verifying", "waiting for the smoke check: asking chat-0")
    assert summary(status, "Verified") == (UNKNOWN, "Verifying", "asking chat-0")
    assert summary(status, "Available")[0] == TRUE


def test_an_answered_verification_lets_ready_through() -> None:
    status = status_of(observed(verified=(TRUE, Reason.ANSWERED, "Hello! (0.4 s)")))
    assert summary(status, "Ready") == (TRUE, "Ready", "2/2 replicas available")
    assert summary(status, "Verified") == (TRUE, "Answered", "Hello! (0.4 s)")


def test_verification_during_a_rollout_keeps_the_rollout_reason() -> None:
    status = status_of(
        observed(deployment=live_deployment(available=1), verified=(UNKNOWN, Reason.WAITING_FOR_ROLLOUT, "no pod"))
    )
    assert summary(status, "Ready") == (FALSE, "RollingOut", "rolling out: 1/2 replicas available")


def test_scaled_to_zero_is_ready_and_available_without_verification() -> None:
    status = status_of(
        observed(
            desired_replicas=0,
            deployment=live_deployment(updated=0, available=0),
            pods=(),
            verified=(UNKNOWN, Reason.WAITING_FOR_ROLLOUT, "no pod"),
        )
    )
    assert summary(status, "Ready") == (TRUE, "Ready", "0/0 replicas available")
    assert summary(status, "Available") == (TRUE, "ScaledToZero", "0 replicas desired")
    assert summary(status, "Scheduled") == (UNKNOWN, "Pending", "waiting for pods")
    assert "Verified" not in by_type(status)


def test_unschedulable_pods_quote_the_scheduler_and_the_hint() -> None:
    stuck = PodState(name="chat-1", node="", ready=False, unschedulable_message=SCHEDULER)
    status = status_of(observed(deployment=live_deployment(available=1), pods=(*pods(1), stuck), scheduling_hint=HINT))
    message = f"1/2 pods cannot be scheduled: {SCHEDULER}; {HINT}"
    assert summary(status, "Scheduled") == (FALSE, "Unschedulable", message)
    assert summary(status, "Ready") == (FALSE, "Unschedulable", "rolling out: 1/2 replicas available")
    assert summary(status, "Reconciling")[:2] == (TRUE, "Unschedulable")


def test_unschedulable_without_a_hint_quotes_the_scheduler_alone() -> None:
    stuck = PodState(name="chat-0", node="", ready=False, unschedulable_message=SCHEDULER)
    status = status_of(observed(deployment=live_deployment(available=0), pods=(stuck,)))
    assert summary(status, "Scheduled")[2] == f"1/1 pods cannot be scheduled: {SCHEDULER}"


def test_pods_on_a_lost_node_name_it() -> None:
    lost = PodState(name="chat-1", node="gpu-7", ready=False, node_lost=True)
    status = status_of(observed(pods=(*pods(1), lost)))
    assert summary(status, "Scheduled") == (FALSE, "NodeLost", "1/2 pods on nodes that are gone: gpu-7")
    assert summary(status, "Ready")[:2] == (FALSE, "RollingOut")


def test_unbound_pods_leave_scheduling_pending() -> None:
    status = status_of(observed(pods=(*pods(1), PodState(name="chat-1", node="", ready=False))))
    assert summary(status, "Scheduled") == (UNKNOWN, "Pending", "waiting for pods")


def test_planned_describes_the_plan_in_effect() -> None:
    # The example docs/troubleshooting.md gives for the default 31b spec.
    status = status_of(observed())
    assert summary(status, "Planned") == (
        TRUE,
        "Planned",
        "vllm 0.33.0 on 2 x h100: 92.9 of 143.4 GiB per replica; admits 11.33 sequences at maxContextTokens by "
        "its own accounting, 55 in steady decode; encoder towers and their profile take 2.3 GiB per replica, "
        "which serving.modalities.textOnly would free",
    )


def test_planned_names_no_towers_for_a_text_only_plan() -> None:
    text_only = fitted(deployment(serving={"modalities": {"textOnly": True}}))
    message = summary(status_of(observed(plan=text_only)), "Planned")[2]
    assert "textOnly" not in message
    assert message.startswith("vllm 0.33.0 on ")


def test_planned_says_why_runtime_auto_chose_as_it_did() -> None:
    gemma3 = fitted(deployment(model={"family": "gemma-3", "variant": "27b"}))
    message = summary(status_of(observed(plan=gemma3)), "Planned")[2]
    assert message.startswith("vllm 0.33.0 on 1 x h100")
    assert message.endswith("runtime auto: vllm, because tgi needs 2 GPUs per replica where vllm needs 1")


def test_planned_off_gpus_names_the_target() -> None:
    status = status_of(observed(plan=fitted(deployment(model={"variant": "e2b"}))))
    assert summary(status, "Planned")[2].startswith("llamacpp b11243 on cpu: ")


def test_planned_for_a_refused_plan_carries_its_problems() -> None:
    refused = Refused(Reason.UNSATISFIABLE, ("no runtime serves e2b at 1M tokens", "try 128k"))
    status = status_of(observed(plan=refused, refusal=refused))
    assert summary(status, "Planned") == (FALSE, "DoesNotFit", "no runtime serves e2b at 1M tokens; try 128k")
    assert summary(status, "Stalled") == (TRUE, "Unsatisfiable", "no runtime serves e2b at 1M tokens; try 128k")


def test_planned_without_a_plan_says_the_spec_was_not_planned() -> None:
    refusal = Refused.because(Reason.INVALID_SPEC, "spec.model.variant: unknown")
    status = status_of(observed(plan=None, refusal=refusal))
    assert summary(status, "Planned") == (FALSE, "NotPlanned", "the spec could not be planned")


def test_transition_time_moves_with_the_status_only() -> None:
    first = status_of(observed(deployment=live_deployment(updated=0, available=0)), now="t0")
    # Still rolling out, further along: the message changes, the status does not.
    second = status_of(observed(deployment=live_deployment(updated=2, available=1)), first, now="t1")
    assert by_type(second)["Ready"]["message"] != by_type(first)["Ready"]["message"]
    assert by_type(second)["Ready"]["lastTransitionTime"] == "t0"
    third = status_of(observed(), second, now="t2")
    assert by_type(third)["Ready"]["lastTransitionTime"] == "t2"
    assert by_type(third)["Reconciling"]["lastTransitionTime"] == "t2"
    assert by_type(third)["Stalled"]["lastTransitionTime"] == "t0"


def test_transition_time_stays_when_only_the_reason_changes() -> None:
    first = status_of(observed(deployment=live_deployment(available=1)), now="t0")
    second = status_of(observed(verified=(UNKNOWN, Reason.VERIFYING, "asking chat-0")), first, now="t1")
    assert by_type(second)["Ready"]["reason"] == "Verifying"
    assert by_type(second)["Ready"]["lastTransitionTime"] == "t0"


def test_a_condition_without_a_transition_time_gets_one() -> None:
    previous = {"conditions": [{"type": "Ready", "status": TRUE, "lastTransitionTime": ""}]}
    assert by_type(status_of(observed(), previous, now="t5"))["Ready"]["lastTransitionTime"] == "t5"


# One reconcile's view: refused or not, replicas updated, ready pods, the smoke check's status (None: off).
steps = st.tuples(
    st.booleans(),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([None, TRUE, FALSE, UNKNOWN]),
)


def step_observed(refused: bool, updated: int, ready: int, verified: str | None) -> Observed:
    return observed(
        refusal=REFUSAL if refused else None,
        deployment=live_deployment(updated=updated, available=updated),
        pods=pods(ready) + pods(2 - ready, ready=False),
        verified=None if verified is None else (verified, Reason.VERIFYING, "asking"),
    )


@given(st.lists(steps, min_size=1, max_size=10))
def test_transition_time_is_when_the_status_last_changed(sequence: list[tuple[bool, int, int, str | None]]) -> None:
    status: dict[str, Any] = {}
    since: dict[str, tuple[str, str]] = {}  # type -> (status, the step it took that status)
    for index, step in enumerate(sequence):
        now = f"t{index}"
        status = compute_status(step_observed(*step), status, now)
        before, since = since, {}
        for condition in status["conditions"]:
            kind = condition["type"]
            # A condition absent from the last status (Scheduled after a refusal) starts afresh.
            same = before.get(kind, ("", ""))[0] == condition["status"]
            since[kind] = before[kind] if same else (condition["status"], now)
            assert condition["lastTransitionTime"] == since[kind][1], (kind, index)
