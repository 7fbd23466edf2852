"""The in-process tier: the operator's Controller, called directly against the real local API server.

No watches, no event timing and no operator process: each test builds the cluster view itself (nodes and
children read from the API server), calls `Controller.reconcile`, and reads back what the API server holds.
Operator processes other tests left running are paused meanwhile, so that only this reconcile acts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gemma_operator.api import Reason
from gemma_operator.reconcile.observe import pod_state
from gemma_operator.reconcile.state import ObjectState
from gemma_operator.rendering import child_name
from harness.waiting import condition_status, wait_for
from inprocess import Harness, writes
from kubelet import report_config_error

pytestmark = pytest.mark.e2e

SMALL = {"model": {"variant": "e2b"}, "serving": {"verify": False}}


def test_a_reconcile_applies_the_children_and_writes_a_status_kstatus_reads(harness: Harness) -> None:
    harness.create(SMALL)
    outcome = harness.reconcile()
    assert outcome.result == "reconciled"
    deployment = harness.deployment()
    assert deployment is not None
    gemma = harness.gemma()
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == gemma["metadata"]["uid"]
    status = gemma["status"]
    assert status["observedGeneration"] == gemma["metadata"]["generation"]
    assert condition_status(gemma, "Stalled") == "False"
    assert condition_status(gemma, "Planned") == "True"
    assert status["plan"]["runtime"]["name"] == "llamacpp"


def test_a_second_reconcile_with_nothing_changed_writes_nothing(harness: Harness) -> None:
    # No replicas: no pods come and go between the two reconciles, so nothing the status reports changes.
    harness.create({**SMALL, "replicas": 0})
    harness.reconcile()
    applies, statuses = writes("apply"), writes("status")
    assert applies >= 2  # the Deployment and the Service
    before = harness.gemma()["metadata"]["resourceVersion"]
    harness.reconcile()
    assert (writes("apply"), writes("status")) == (applies, statuses)
    assert harness.gemma()["metadata"]["resourceVersion"] == before


def test_children_the_watches_do_not_show_yet_are_not_written_again(harness: Harness) -> None:
    """As after a restart with the watches still listing: the create-only applies find the names taken by the
    GemmaDeployment's own children, which are read and left as they are."""
    harness.create({**SMALL, "replicas": 0})
    harness.reconcile()
    # The Deployment controller writes the Deployment's status meanwhile: its generation counts the spec's changes.
    before = [_metadata(harness.deployment())["generation"], _metadata(harness.service())["resourceVersion"]]
    applies = writes("apply")
    harness.state = ObjectState()
    unseen = replace(harness.cluster(), children={})

    outcome = harness.controller.reconcile(harness.key, harness.gemma(), unseen, harness.state, [])

    assert outcome.result == "reconciled"
    assert [_metadata(harness.deployment())["generation"], _metadata(harness.service())["resourceVersion"]] == before
    assert writes("apply") == applies


def _metadata(found: Mapping[str, Any] | None) -> Mapping[str, Any]:
    assert found is not None
    metadata: Mapping[str, Any] = found["metadata"]
    return metadata


def test_drift_made_by_someone_else_is_reverted(harness: Harness) -> None:
    harness.create(SMALL)
    harness.reconcile()
    harness.apps.patch_namespaced_deployment(child_name(harness.name), harness.namespace, {"spec": {"replicas": 3}})
    harness.reconcile()
    deployment = harness.deployment()
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1


@pytest.mark.parametrize("restarted", [False, True], ids=["remembered", "after-a-restart"])
def test_an_optional_child_is_created_when_wanted_and_pruned_when_not(harness: Harness, restarted: bool) -> None:
    harness.create({**SMALL, "replicas": 2})
    harness.reconcile()
    policy = client.PolicyV1Api(harness.api)
    assert policy.read_namespaced_pod_disruption_budget(child_name(harness.name), harness.namespace)
    harness.patch_spec({"replicas": 1})
    if restarted:  # nothing in memory says it was made: generation 2 says it may have been
        harness.state = ObjectState()
    harness.reconcile()
    with pytest.raises(ApiException) as gone:
        policy.read_namespaced_pod_disruption_budget(child_name(harness.name), harness.namespace)
    assert gone.value.status == 404


def test_a_refused_spec_creates_nothing_says_stalled_and_posts_one_event(harness: Harness) -> None:
    harness.create(
        {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 131072}, "placement": {"gpusPerReplica": 1}}
    )
    outcome = harness.reconcile()
    assert outcome.result == "stalled"
    assert not outcome.queue.retry  # only a spec change can lift it
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.DOES_NOT_FIT)
    assert "does not fit 1 x h100" in stalled["message"]
    assert harness.gemma()["status"]["plan"]["memory"]["requiredGiB"] > 71  # the closest plan's numbers
    assert harness.deployment() is None
    harness.reconcile()
    assert harness.warnings() == [Reason.DOES_NOT_FIT]  # the same refusal again posts no second Event


def test_a_missing_secret_is_never_looked_up_and_the_kubelets_report_stalls_it(harness: Harness) -> None:
    harness.create({**SMALL, "model": {"variant": "e2b", "tokenSecretRef": {"name": "hf-token"}}})
    assert harness.reconcile().result == "reconciled"
    assert harness.deployment() is not None  # rendered with the reference; the operator reads no Secret
    core = harness.core
    pod = wait_for(
        lambda: next(
            (p for p in core.list_namespaced_pod(harness.namespace).items if p.status and p.status.pod_ip), None
        ),
        timeout=60,
        message="a pod running (kwok leaves it alone from then on, and would overwrite an earlier report)",
    )
    report_config_error(harness.api, harness.namespace, pod, 'secret "hf-token" not found')
    wait_for(lambda: harness.pods() and pod_state(harness.pods()[0]).config_error, timeout=30, message="the report")
    outcome = harness.reconcile()
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.SECRET_NOT_FOUND)
    assert 'secret "hf-token" not found' in stalled["message"]
    assert not outcome.queue.retry  # the pods' next report brings the next reconcile
