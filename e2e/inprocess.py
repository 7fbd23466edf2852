"""The in-process tier's harness: one GemmaDeployment, the operator's Controller and its memory, against the
real local API server. Each test builds the cluster view itself, as the handlers' indexes would hold it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from gemma_operator.api import GROUP, PLURAL, VERSION
from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.planning import node_from_object
from gemma_operator.reconcile.clock import SystemClock
from gemma_operator.reconcile.controller import Cluster, Controller, Outcome
from gemma_operator.reconcile.kube import KubeApi
from gemma_operator.reconcile.observe import controller_uid, owned_pods, slim_pod
from gemma_operator.reconcile.state import ObjectState
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER, child_name
from harness.plane import Plane


class Harness:
    """One GemmaDeployment, its controller and its memory, against the plane."""

    def __init__(self, plane: Plane, namespace: str, name: str = "chat") -> None:
        self.api = plane.api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(plane.api)
        self.apps = client.AppsV1Api(plane.api)
        self.core = client.CoreV1Api(plane.api)
        self.controller = Controller(KubeApi(plane.api), default_accelerator_classes(), SystemClock())
        self.state = ObjectState()
        self.name = name

    def create(self, spec: Mapping[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GemmaDeployment", "metadata": {"name": self.name}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, {**body, "spec": spec})

    def create_object(self, manifest: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
        """Create an object in the namespace, as a user would (not the operator: no field manager of ours)."""
        utils.create_from_dict(self.api, {**manifest, "spec": spec}, namespace=self.namespace)  # type: ignore[no-untyped-call]

    def patch_spec(self, spec: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name, {"spec": spec})

    def gemma(self) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        return cast(dict[str, Any], found)

    def deployment(self) -> dict[str, Any] | None:
        return self.read(lambda: self.apps.read_namespaced_deployment(child_name(self.name), self.namespace))

    def service(self) -> dict[str, Any] | None:
        return self.read(lambda: self.core.read_namespaced_service(child_name(self.name), self.namespace))

    def read(self, read: Callable[[], object]) -> dict[str, Any] | None:
        """An object as API JSON, or None when it does not exist."""
        try:
            found: dict[str, Any] = self.api.sanitize_for_serialization(read())  # type: ignore[no-untyped-call]
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def cluster(self) -> Cluster:
        """What the handlers' indexes would hold, read from the API server: their watches of children select the
        operator's label, so an object of a child's name without it is not among them."""
        serialise = self.api.sanitize_for_serialization
        nodes = [node_from_object(serialise(node)) for node in self.core.list_node().items]  # type: ignore[no-untyped-call]
        children = {
            kind: child
            for kind, child in (("Deployment", self.deployment()), ("Service", self.service()))
            if child is not None and (child["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGER
        }
        return Cluster(nodes=nodes, children=children, pods=self.pods())

    def pods(self) -> list[Mapping[str, Any]]:
        """The serving pods, as the handlers' index and view pick them."""
        managed = f"{MANAGED_BY_LABEL}={MANAGER}"
        found = self.core.list_namespaced_pod(self.namespace, label_selector=managed).items
        pods = [slim_pod(self.api.sanitize_for_serialization(pod)) for pod in found]  # type: ignore[no-untyped-call]
        deployment = self.deployment()
        deployment_uid = (deployment or {}).get("metadata", {}).get("uid")
        listed = self.apps.list_namespaced_replica_set(self.namespace, label_selector=managed).items
        replica_sets = [self.api.sanitize_for_serialization(found)["metadata"] for found in listed]  # type: ignore[no-untyped-call]
        ours = {str(meta["uid"]) for meta in replica_sets if controller_uid(meta) == deployment_uid}
        return owned_pods(pods, deployment, self.gemma()["metadata"]["uid"], ours)

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def reconcile(self) -> Outcome:
        return self.controller.reconcile(self.key, self.gemma(), self.cluster(), self.state, [])

    def condition(self, kind: str) -> dict[str, Any]:
        conditions = (self.gemma().get("status") or {}).get("conditions") or []
        return next(c for c in conditions if c["type"] == kind)

    def warnings(self) -> list[str]:
        events = self.core.list_namespaced_event(self.namespace).items
        return [str(event.reason) for event in events if event.involved_object.name == self.name]


def writes(operation: str) -> float:
    """The operator's own count of its API writes (this process's metrics registry)."""
    return REGISTRY.get_sample_value("gemma_operator_api_writes_total", {"operation": operation}) or 0.0
