"""Hostile and careless input that reaches the children (#14), on the real API server (the in-process tier).

The standard: a clear answer (Stalled with a reason and the server's words or the numbers), nothing created
for it, no object the operator did not create touched, and no hot loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gemma_operator.api import Reason
from gemma_operator.reconcile.state import ObjectState
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER, child_name
from harness.plane import Plane
from harness.waiting import wait_for
from inprocess import Harness, writes

pytestmark = pytest.mark.e2e

SMALL: Mapping[str, Any] = {"model": {"variant": "e2b"}, "serving": {"verify": False}}


def _metadata(found: Mapping[str, Any] | None) -> Mapping[str, Any]:
    assert found is not None
    metadata: Mapping[str, Any] = found["metadata"]
    return metadata


def test_a_users_service_and_claim_of_the_childrens_names_are_left_alone(harness: Harness) -> None:
    service_name, claim_name = child_name(harness.name), child_name(harness.name, "cache")
    harness.create_object(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service_name}},
        spec={"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    )
    harness.create_object(
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim_name}},
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    )
    service = _metadata(harness.service())
    claim = _metadata(
        harness.read(lambda: harness.core.read_namespaced_persistent_volume_claim(claim_name, harness.namespace))
    )
    harness.create({**SMALL, "serving": {"verify": False, "cache": {"size": "1Gi"}}})

    outcome = harness.reconcile()

    assert outcome.result == "stalled"
    assert outcome.queue.retry  # with backoff: the user may rename the GemmaDeployment or delete their objects
    assert outcome.queue.after is None
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.NAME_IN_USE)
    assert f"Service {harness.namespace}/{service_name}" in stalled["message"]
    assert f"PersistentVolumeClaim {harness.namespace}/{claim_name}" in stalled["message"]
    after = {
        "Service": _metadata(harness.service()),
        "PersistentVolumeClaim": _metadata(
            harness.read(lambda: harness.core.read_namespaced_persistent_volume_claim(claim_name, harness.namespace))
        ),
    }
    for before, now in ((service, after["Service"]), (claim, after["PersistentVolumeClaim"])):
        assert now["resourceVersion"] == before["resourceVersion"]
        assert not now.get("ownerReferences")
    assert harness.deployment() is None  # nothing is created for it


def _created(harness: Harness, spec: Mapping[str, Any]) -> ApiException | None:
    """Create the GemmaDeployment; the API server's refusal, if it refused it at admission."""
    try:
        harness.create(spec)
    except ApiException as refused:
        return refused
    return None


@pytest.mark.parametrize(
    ("case", "spec", "reaches_apply", "reason", "servers_words"),
    [
        (
            "empty toleration",
            {"placement": {"tolerations": [{}]}},
            False,
            Reason.INVALID_CHILD,
            "operator must be Exists",
        ),
        (
            "newline in a nodeSelector key",
            {"placement": {"nodeSelector": {"a\nb": "x"}}},
            False,
            Reason.NO_NODE_FITS,
            "no node can host",
        ),
        (
            "env with value and valueFrom",
            {
                "serving": {
                    "verify": False,
                    "env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                }
            },
            True,
            Reason.INVALID_CHILD,
            "may not be specified when `value` is not empty",
        ),
        (
            "duplicate env names",
            {"serving": {"verify": False, "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}},
            True,
            Reason.INVALID_CHILD,
            'duplicate entries for key [name="A"]',
        ),
        ("replicas above int32", {"replicas": 2**31}, False, Reason.INVALID_SPEC, "2147483647"),
        (
            "a cache of size 0",
            {"serving": {"verify": False, "cache": {"size": "0"}}},
            False,
            Reason.INVALID_CHILD,
            "must be greater than zero",
        ),
    ],
)
def test_a_child_the_api_server_refuses_stalls_with_its_words_and_no_retry(
    harness: Harness, case: str, spec: Mapping[str, Any], reaches_apply: bool, reason: Reason, servers_words: str
) -> None:
    """Each input is answered: at admission by the CRD's bounds, by the planner, or by the API server refusing
    the child; the inputs the CRD cannot judge (env) must reach the apply."""
    refused = _created(harness, {**SMALL, **spec})
    if refused is not None:  # the CRD's bounds answer it at admission: as clear, and nothing to reconcile
        assert not reaches_apply, f"{case}: refused at admission: {refused.body}"
        assert refused.status == 422
        assert servers_words in str(refused.body)
        return

    outcome = harness.reconcile()

    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", reason), case
    assert servers_words in stalled["message"]
    if reason is Reason.INVALID_CHILD:
        assert f"{harness.namespace}/{harness.name}" in stalled["message"]  # names the child
    assert len(stalled["message"]) <= 1024
    assert (outcome.result, outcome.queue.after) == ("stalled", None)  # no hot loop: backoff at most
    assert outcome.queue.retry is (reason is not Reason.INVALID_CHILD)  # invalid as written: only a spec change
    assert harness.deployment() is None
    harness.reconcile()
    assert harness.warnings() == [reason]  # the same refusal again posts no second Event


def _quota_exhausted(harness: Harness) -> None:
    """A ResourceQuota that admits no pod, once the quota controller has counted it (admission needs that)."""
    harness.create_object(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}, spec={"hard": {"pods": "0"}}
    )
    wait_for(
        lambda: (
            (harness.read(lambda: harness.core.read_namespaced_resource_quota("no-pods", harness.namespace)) or {}).get(
                "status"
            )
            or {}
        ).get("hard"),
        timeout=60,
        message="the quota counted",
    )


def test_pods_the_replica_set_cannot_create_are_reported_with_the_deployments_words(harness: Harness) -> None:
    _quota_exhausted(harness)
    harness.create(SMALL)
    harness.reconcile()

    def replica_failure() -> bool:
        found = harness.deployment() or {}
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "ReplicaFailure" and c["status"] == "True" for c in conditions)

    wait_for(replica_failure, timeout=60, message="the Deployment reports ReplicaFailure")
    harness.state = ObjectState()  # as after a restart: a change of reason alone is written at once, not held
    harness.reconcile()

    ready, available = harness.condition("Ready"), harness.condition("Available")
    assert (ready["status"], ready["reason"]) == ("False", Reason.REPLICA_FAILURE)
    assert (available["status"], available["reason"]) == ("False", Reason.REPLICA_FAILURE)
    assert "exceeded quota: no-pods" in available["message"]
    assert "exceeded quota: no-pods" in ready["message"]


def _impostor(harness: Harness) -> str:
    """A hand-made pod with the serving pods' labels, named to sort before theirs; its IP once it is Ready."""
    labels = (harness.deployment() or {})["spec"]["template"]["metadata"]["labels"]
    harness.create_object(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a-impostor", "labels": labels}},
        spec={"containers": [{"name": "server", "image": "example.invalid/impostor"}]},
    )

    def ready_ip() -> str | None:
        pod = harness.read(lambda: harness.core.read_namespaced_pod("a-impostor", harness.namespace)) or {}
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        return str(status["podIP"]) if ready and status.get("podIP") else None

    return wait_for(ready_ip, timeout=90, message="the impostor Ready (kwok runs it)")


def test_a_pod_that_copies_the_labels_is_not_counted_or_smoke_checked(harness: Harness) -> None:
    harness.create({"model": {"variant": "e2b"}, "serving": {"verify": True}})
    harness.reconcile()
    wait_for(
        lambda: ((harness.deployment() or {}).get("status") or {}).get("availableReplicas") == 1,
        timeout=90,
        message="the real pod available",
    )
    impostor_ip = _impostor(harness)
    managed = f"{MANAGED_BY_LABEL}={MANAGER}"
    assert len(harness.core.list_namespaced_pod(harness.namespace, label_selector=managed).items) == 2
    harness.state = ObjectState()  # as after a restart: the new counts are written at once, not held

    outcome = harness.reconcile()

    status = harness.gemma()["status"]
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert outcome.smoke is not None
    assert f"//{impostor_ip}:" not in outcome.smoke.base_url


def _colliding_names() -> tuple[str, str]:
    """Two GemmaDeployment names whose children are named alike, found with the operator's own naming."""
    candidates = ["my.model", "chat.v1", "a" * 70, "Gemma.Chat"]
    for first in candidates:
        second = child_name(first)
        if second != first and child_name(second) == child_name(first):
            return first, second
    for length in (63, 64, 80, 200):
        first, second = "m" * length, "m" * (length - 1) + "n"
        if child_name(first) == child_name(second):
            return first, second
    pytest.fail(f"no two names among {candidates} and long ones share child names; update the search")


def test_two_gemma_deployments_whose_children_collide_do_not_fight(plane: Plane, quiet_namespace: str) -> None:
    first_name, second_name = _colliding_names()
    first, second = Harness(plane, quiet_namespace, first_name), Harness(plane, quiet_namespace, second_name)
    first.create(SMALL)
    assert first.reconcile().result == "reconciled"
    wait_for(  # the Deployment controller's status writes are done: its resourceVersion can stay put
        lambda: ((first.deployment() or {}).get("status") or {}).get("availableReplicas") == 1,
        timeout=90,
        message="the first's pod available",
    )
    deployment = _metadata(first.deployment())
    applies = writes("apply")
    second.create({**SMALL, "replicas": 2})

    outcomes = [second.reconcile(), first.reconcile(), second.reconcile(), first.reconcile()]

    assert [outcome.result for outcome in outcomes] == ["stalled", "reconciled", "stalled", "reconciled"]
    assert all(outcome.queue.retry and outcome.queue.after is None for outcome in outcomes[::2])
    stalled = second.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.NAME_IN_USE)
    assert f"GemmaDeployment {quiet_namespace}/{first_name}" in stalled["message"]  # who owns it
    now = _metadata(first.deployment())
    assert writes("apply") == applies  # neither applied anything: no fight
    assert (now["resourceVersion"], now["ownerReferences"]) == (
        deployment["resourceVersion"],
        deployment["ownerReferences"],
    )
    assert first.condition("Stalled")["status"] == "False"
    policy = client.PolicyV1Api(plane.api)
    with pytest.raises(ApiException):  # the second's PDB (2 replicas) was not created either
        policy.read_namespaced_pod_disruption_budget(child_name(second_name), quiet_namespace)
