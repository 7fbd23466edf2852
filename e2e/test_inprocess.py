"""The in-process tier: the operator's Controller, called directly against the real local API server.

No watches, no event timing and no operator process: each test builds the cluster view itself (nodes and
children read from the API server), calls `Controller.reconcile`, and reads back what the API server holds.
Operator processes other tests left running are paused meanwhile, so that only this reconcile acts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from gemma_operator.api import GROUP, PLURAL, VERSION, Reason
from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.planning import node_from_object
from gemma_operator.reconcile.clock import SystemClock
from gemma_operator.reconcile.controller import Cluster, Controller, Outcome
from gemma_operator.reconcile.kube import KubeApi
from gemma_operator.reconcile.state import ObjectState
from gemma_operator.rendering import child_name
from harness.namespaces import create_namespace, delete_namespace
from harness.plane import Plane
from harness.waiting import condition_status, wait_for
from operator_process import OperatorProcess, install_crd

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crd(plane: Plane) -> None:
    install_crd(plane)


@pytest.fixture
def quiet_namespace(plane: Plane, crd: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace no operator process acts in while the test runs (and until it is gone)."""
    running = [process for process in OperatorProcess.started if process.alive()]
    for process in running:
        process.pause()
    name = create_namespace(plane.api, f"i-{request.node.name}"[:40])
    try:
        yield name
    finally:
        delete_namespace(plane.api, name)
        core = client.CoreV1Api(plane.api)
        wait_for(lambda: _gone(core, name), timeout=120, message=f"namespace {name} deleted")
        for process in running:
            process.resume()


def _gone(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except ApiException as error:
        return bool(error.status == 404)
    return False


class Harness:
    """One GemmaDeployment, its controller and its memory, against the plane."""

    def __init__(self, plane: Plane, namespace: str) -> None:
        self.api = plane.api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(plane.api)
        self.apps = client.AppsV1Api(plane.api)
        self.core = client.CoreV1Api(plane.api)
        self.controller = Controller(KubeApi(plane.api), default_accelerator_classes(), SystemClock())
        self.state = ObjectState()
        self.name = "chat"

    def create(self, spec: Mapping[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GemmaDeployment", "metadata": {"name": self.name}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, {**body, "spec": spec})

    def patch_spec(self, spec: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name, {"spec": spec})

    def gemma(self) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        return cast(dict[str, Any], found)

    def deployment(self) -> dict[str, Any] | None:
        return self._read(lambda: self.apps.read_namespaced_deployment(child_name(self.name), self.namespace))

    def service(self) -> dict[str, Any] | None:
        return self._read(lambda: self.core.read_namespaced_service(child_name(self.name), self.namespace))

    def _read(self, read: Any) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.sanitize_for_serialization(read())  # type: ignore[no-untyped-call]
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def cluster(self) -> Cluster:
        """What the handlers' indexes would hold, read from the API server."""
        serialise = self.api.sanitize_for_serialization
        nodes = [node_from_object(serialise(node)) for node in self.core.list_node().items]  # type: ignore[no-untyped-call]
        children = {
            kind: child
            for kind, child in (
                ("Deployment", self.deployment()),
                (
                    "Service",
                    self._read(lambda: self.core.read_namespaced_service(child_name(self.name), self.namespace)),
                ),
            )
            if child is not None
        }
        return Cluster(nodes=nodes, children=children)

    def reconcile(self) -> Outcome:
        return self.controller.reconcile((self.namespace, self.name), self.gemma(), self.cluster(), self.state, [])

    def condition(self, kind: str) -> dict[str, Any]:
        conditions = (self.gemma().get("status") or {}).get("conditions") or []
        return next(c for c in conditions if c["type"] == kind)

    def warnings(self) -> list[str]:
        events = self.core.list_namespaced_event(self.namespace).items
        return [str(event.reason) for event in events if event.involved_object.name == self.name]


@pytest.fixture
def harness(plane: Plane, quiet_namespace: str) -> Harness:
    return Harness(plane, quiet_namespace)


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


def writes(operation: str) -> float:
    """The operator's own count of its API writes (this process's metrics registry)."""
    return REGISTRY.get_sample_value("gemma_operator_api_writes_total", {"operation": operation}) or 0.0


def test_a_second_reconcile_with_nothing_changed_writes_nothing(harness: Harness) -> None:
    harness.create(SMALL)
    harness.reconcile()
    applies, statuses = writes("apply"), writes("status")
    assert applies >= 2  # the Deployment and the Service
    before = harness.gemma()["metadata"]["resourceVersion"]
    harness.reconcile()
    assert (writes("apply"), writes("status")) == (applies, statuses)
    assert harness.gemma()["metadata"]["resourceVersion"] == before


def test_drift_made_by_someone_else_is_reverted(harness: Harness) -> None:
    harness.create(SMALL)
    harness.reconcile()
    harness.apps.patch_namespaced_deployment(child_name(harness.name), harness.namespace, {"spec": {"replicas": 3}})
    harness.reconcile()
    deployment = harness.deployment()
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1


def test_an_optional_child_is_created_when_wanted_and_pruned_when_not(harness: Harness) -> None:
    harness.create({**SMALL, "replicas": 2})
    harness.reconcile()
    policy = client.PolicyV1Api(harness.api)
    assert policy.read_namespaced_pod_disruption_budget(child_name(harness.name), harness.namespace)
    harness.patch_spec({"replicas": 1})
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


def test_a_missing_secret_stalls_with_backoff_until_it_exists(harness: Harness) -> None:
    harness.create({**SMALL, "model": {"variant": "e2b", "tokenSecretRef": {"name": "hf-token"}}})
    outcome = harness.reconcile()
    assert outcome.queue.retry
    assert harness.condition("Stalled")["reason"] == Reason.SECRET_NOT_FOUND
    assert harness.deployment() is None
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="hf-token"), string_data={"token": "not-a-token"})
    harness.core.create_namespaced_secret(harness.namespace, secret)
    assert harness.reconcile().result == "reconciled"
    assert harness.deployment() is not None
    assert harness.condition("Stalled")["status"] == "False"
