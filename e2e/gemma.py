"""GemmaDeployments on the local plane: create, read, wait, and look at what the operator made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.namespaces import events_for
from harness.waiting import condition_status, wait_for

GROUP, VERSION, PLURAL = "serving.gemma.dev", "v1alpha1", "gemmadeployments"
INSTANCE = "app.kubernetes.io/instance"


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GemmaDeployment", "metadata": {"name": name}, "spec": spec}


class Gemma:
    """GemmaDeployments in one namespace, through the real API server."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        # Typed as Any: the generated client's Optional-everywhere models add nothing to a test's checks.
        self.custom: Any = client.CustomObjectsApi(api)
        self.apps: Any = client.AppsV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        self.policy: Any = client.PolicyV1Api(api)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, dict(body)))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"spec": dict(spec)}
            )
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for condition in self.get(name).get("status", {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return {}

    def wait(
        self, name: str, kind: str, status: str = "True", timeout: float = 90, generation: int | None = None
    ) -> dict[str, Any]:
        """Wait for a condition; with `generation`, also for status.observedGeneration to reach it."""

        def reached() -> dict[str, Any] | None:
            obj = self.get(name)
            observed = (obj.get("status") or {}).get("observedGeneration", 0)
            if generation is not None and observed < generation:
                return None
            return obj if condition_status(obj, kind) == status else None

        return wait_for(reached, timeout=timeout, interval=0.5, message=f"{self.namespace}/{name} {kind}={status}")

    def deployment(self, name: str) -> Any:
        """The Deployment, or None."""
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def pods(self, name: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=f"{INSTANCE}={name}").items)

    def children(self) -> dict[str, list[str]]:
        """Every kind the operator creates, by name, in the namespace."""
        return {
            "Deployment": [d.metadata.name for d in self.apps.list_namespaced_deployment(self.namespace).items],
            "Service": [s.metadata.name for s in self.core.list_namespaced_service(self.namespace).items],
            "PodDisruptionBudget": [
                p.metadata.name for p in self.policy.list_namespaced_pod_disruption_budget(self.namespace).items
            ],
        }

    def events(self, name: str) -> list[Any]:
        return events_for(self.api, self.namespace, name, kind="GemmaDeployment")
