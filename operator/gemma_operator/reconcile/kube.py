"""The few Kubernetes API calls the operator makes, on the official client. Nothing here decides anything."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from gemma_operator.api import API_VERSION, KIND, PLURAL

FIELD_MANAGER: Final = "gemma-operator"
NOT_FOUND: Final = 404
# The resourceVersion of no stored object: a resourceVersion is the etcd revision of the object's last write,
# and etcd's first write is revision 2 (an empty store is at revision 1: etcd v3.6 server/storage/mvcc/
# kvstore.go, NewStore's currentRev; a write's is currentRev + 1).
NO_STORED_VERSION: Final = "1"
MAX_EVENT_MESSAGE: Final = 1024
MAX_ERROR_MESSAGE: Final = 500

# Characters YAML may not hold unescaped (C1 controls, DEL, two non-characters); json.dumps leaves them raw.
_NOT_YAML_PRINTABLE: Final = re.compile("[\x7f-\x9f\ufffe\uffff]")


def apply_body(manifest: Mapping[str, Any]) -> bytes:
    """A server-side apply body: JSON, which the API server reads as YAML. json.dumps' default escapes a
    character outside the BMP as a surrogate pair (an emoji as \\ud83d\\ude42), which YAML refuses; so
    characters go as UTF-8, and only those YAML cannot hold raw are escaped."""
    text = json.dumps(manifest, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text).encode()


def load_configuration() -> Configuration:
    """KUBECONFIG (or ~/.kube/config) when there is one, else the in-cluster service account."""
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return Configuration.get_default_copy()


# Plural resource names of the kinds the operator touches.
PLURALS: Final[dict[tuple[str, str], str]] = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("v1", "Event"): "events",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "ConfigMap"): "configmaps",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("inference.networking.k8s.io/v1", "InferencePool"): "inferencepools",
    (API_VERSION, KIND): PLURAL,
}


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> ObjectRef:
        metadata = manifest["metadata"]
        return cls(manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"])

    def path(self, subresource: str = "") -> str:
        """The object's path; with no name, its collection's (to create in)."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        plural = PLURALS[(self.api_version, self.kind)]
        path = f"{prefix}/namespaces/{self.namespace}/{plural}"
        path = f"{path}/{self.name}" if self.name else path
        return f"{path}/{subresource}" if subresource else path

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class ApiError(Exception):
    """A failed API call, with the status code and the API server's own message."""

    def __init__(self, operation: str, ref: ObjectRef, status: int, message: str) -> None:
        super().__init__(f"{operation} {ref}: {status} {message}")
        self.operation = operation
        self.ref = ref
        self.status = status
        self.message = message


class KubeApi:
    """get, apply, delete and status patches through one authenticated ApiClient."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _call(
        self,
        operation: str,
        method: str,
        ref: ObjectRef,
        *,
        subresource: str = "",
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        body: object = None,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        request = self.client.param_serialize(
            method,
            ref.path(subresource),
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*request, _request_timeout=timeout)
            data: bytes = response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:
            if error.status == NOT_FOUND and method in ("GET", "DELETE"):
                return None
            raise ApiError(operation, ref, int(error.status or 0), _message(error.body, str(error.reason))) from None
        if response.status >= 300:
            if response.status == NOT_FOUND and method in ("GET", "DELETE"):
                return None
            raise ApiError(operation, ref, response.status, _message(data, str(response.status)))
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def get(self, ref: ObjectRef, timeout: float | None = None) -> dict[str, Any] | None:
        return self._call("get", "GET", ref, timeout=timeout)

    def create(self, manifest: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        ref = ObjectRef.of(manifest)
        collection = ObjectRef(ref.api_version, ref.kind, ref.namespace, "")
        return self._call("create", "POST", collection, body=dict(manifest), timeout=timeout) or {}

    def replace(self, manifest: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """PUT: with metadata.resourceVersion, refused with 409 when the object changed since that version."""
        return self._call("replace", "PUT", ObjectRef.of(manifest), body=dict(manifest), timeout=timeout) or {}

    def apply(self, manifest: Mapping[str, Any], *, create_only: bool = False) -> dict[str, Any]:
        """Server-side apply as the operator's field manager, taking ownership of conflicting fields.

        `create_only`: an object of that name that already exists, whoever made it, is left as it is and the API
        server answers 409. A resourceVersion in an apply is a precondition on an existing object and is not
        stored on a new one; NO_STORED_VERSION is that of no object. (A uid precondition cannot do this: the API
        server refuses one in an apply that creates, "uid mismatch ... no existing object was found".)
        """
        if create_only:
            manifest = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": NO_STORED_VERSION}}
        ref = ObjectRef.of(manifest)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        result = self._call(
            "apply", "PATCH", ref, query=query, content_type="application/apply-patch+yaml", body=apply_body(manifest)
        )
        return result or {}

    def warn(self, subject: Mapping[str, Any], reason: str, message: str, now: str) -> None:
        """Post a Warning Event about `subject` (a GemmaDeployment), as `kubectl describe` shows them."""
        metadata = subject["metadata"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid", ""),
            },
            "type": "Warning",
            "reason": reason,
            # The API server refuses longer Event messages.
            "message": message[:MAX_EVENT_MESSAGE],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._call("post event", "POST", ObjectRef("v1", "Event", metadata["namespace"], ""), body=event)

    def delete(self, ref: ObjectRef) -> None:
        self._call("delete", "DELETE", ref, body={"propagationPolicy": "Background"})

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        ref = ObjectRef(API_VERSION, KIND, namespace, name)
        self._call(
            "patch status",
            "PATCH",
            ref,
            subresource="status",
            content_type="application/merge-patch+json",
            body={"status": dict(status)},
        )


def _message(body: str | bytes | None, fallback: str) -> str:
    """The API server's own words from a Status body (bounded: they quote the refused values)."""
    try:
        message = str(json.loads(body or "").get("message", fallback))
    except (AttributeError, TypeError, ValueError):
        message = (body.decode(errors="replace") if isinstance(body, bytes) else body) or fallback
    return message[:MAX_ERROR_MESSAGE]
