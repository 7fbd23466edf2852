"""compute_status when the Deployment itself reports failure: ReplicaFailure and ProgressDeadlineExceeded."""

from __future__ import annotations

from typing import Any

from gemma_operator.api import Reason
from gemma_operator.reconcile.conditions import FALSE, TRUE, compute_status
from gemma_operator.reconcile.observe import pod_state, slim_pod

from .test_reconcile_conditions import live_deployment, observed, pods, summary

QUOTA = 'pods "chat-5d9f-x" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0'
RESTRICTED = 'pods "chat-5d9f-x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true'
DEADLINE = 'ReplicaSet "chat-5d9f" has timed out progressing.'


def failing(*conditions: dict[str, str], available: int = 0) -> dict[str, Any]:
    found = live_deployment(updated=0, available=available)
    found["status"]["conditions"] = list(conditions)
    return found


REPLICA_FAILURE = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": QUOTA}
NO_PROGRESS = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": DEADLINE}


def test_pods_the_replica_set_cannot_create_are_reported_with_the_deployments_words() -> None:
    for message in (QUOTA, RESTRICTED):
        status = compute_status(
            observed(deployment=failing({**REPLICA_FAILURE, "message": message}), pods=()), {}, "t0"
        )
        assert summary(status, "Ready")[:2] == (FALSE, Reason.REPLICA_FAILURE)
        assert message in summary(status, "Ready")[2]
        assert summary(status, "Available") == (FALSE, Reason.REPLICA_FAILURE, message)
        assert summary(status, "Reconciling")[:2] == (TRUE, Reason.REPLICA_FAILURE)  # its controller keeps trying
        assert summary(status, "Stalled")[0] == FALSE


def test_a_deployment_past_its_progress_deadline_is_stalled_as_kstatus_says() -> None:
    status = compute_status(observed(deployment=failing(NO_PROGRESS), pods=pods(2, ready=False)), {}, "t0")
    assert summary(status, "Stalled") == (TRUE, Reason.PROGRESS_DEADLINE_EXCEEDED, DEADLINE)
    assert summary(status, "Reconciling")[:2] == (FALSE, Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert summary(status, "Ready")[:2] == (FALSE, Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert summary(status, "Available") == (FALSE, Reason.PROGRESS_DEADLINE_EXCEEDED, DEADLINE)


def test_the_deadline_outranks_a_replica_failure() -> None:
    status = compute_status(observed(deployment=failing(REPLICA_FAILURE, NO_PROGRESS), pods=()), {}, "t0")
    assert summary(status, "Stalled")[1] == Reason.PROGRESS_DEADLINE_EXCEEDED


def test_failure_of_an_older_template_or_of_a_finished_rollout_is_not_reported() -> None:
    stale = failing(REPLICA_FAILURE)
    stale["metadata"]["generation"] = 2  # its controller has not seen the new template yet
    complete = failing(REPLICA_FAILURE, available=2)
    complete["status"]["updatedReplicas"] = 2
    for found in (stale, complete):
        status = compute_status(observed(deployment=found), {}, "t0")
        assert Reason.REPLICA_FAILURE not in {summary(status, kind)[1] for kind in ("Ready", "Available")}


def kubelet_pod(message: str | None, name: str = "chat-0") -> dict[str, Any]:
    """A serving pod as the kubelet reports it, waiting with CreateContainerConfigError when `message` is set."""
    state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}} if message else {"running": {}}
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": "cpu-0"},
        "status": {
            "phase": "Pending" if message else "Running",
            "podIP": "127.0.0.9",
            "conditions": [{"type": "Ready", "status": "False" if message else "True"}],
            "containerStatuses": [{"state": state}],
        },
    }


def test_the_kubelets_report_of_a_missing_secret_stalls_with_its_words() -> None:
    missing = 'secret "hf-token" not found'
    states = [pod_state(slim_pod(kubelet_pod(missing))), pod_state(slim_pod(kubelet_pod(None, "chat-1")))]
    assert states[0].config_error == missing
    assert states[1].config_error is None
    status = compute_status(observed(deployment=live_deployment(updated=2, available=1), pods=states), {}, "t0")
    expected = f"1/2 pods cannot start their container: {missing}"
    assert summary(status, "Stalled") == (TRUE, Reason.SECRET_NOT_FOUND, expected)
    assert summary(status, "Ready")[:2] == (FALSE, Reason.SECRET_NOT_FOUND)
    assert summary(status, "Reconciling")[0] == FALSE


def test_another_config_error_is_reported_under_the_kubelets_reason() -> None:
    missing = 'configmap "settings" not found'
    status = compute_status(
        observed(deployment=live_deployment(updated=1, available=0), pods=[pod_state(kubelet_pod(missing))]), {}, "t0"
    )
    assert summary(status, "Stalled")[:2] == (TRUE, Reason.CREATE_CONTAINER_CONFIG_ERROR)
    assert missing in summary(status, "Stalled")[2]


def test_a_kubelet_message_is_bounded() -> None:
    state = pod_state(kubelet_pod("x" * 10_000))
    assert state.config_error is not None
    assert len(state.config_error) <= 300
