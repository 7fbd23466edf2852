"""What a kubelet reports for a container it cannot configure, written by the test.

The plane has no kubelet: kwok stands in for it and marks bound pods Running, but knows nothing of
Secrets, so it never reports a missing one. A test that needs the report writes it into the pod's
status as the kubelet would (`CreateContainerConfigError` with the kubelet's message), and the
running state once the cause is fixed. kwok leaves a pod that already has an IP alone.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

CONFIG_ERROR = "CreateContainerConfigError"


def _report(api: client.ApiClient, namespace: str, pod: Any, ready: bool, state: dict[str, Any]) -> None:
    containers = [
        {"name": container.name, "image": container.image, "imageID": "", "ready": ready, "restartCount": 0,
         "state": state}
        for container in pod.spec.containers
    ]  # fmt: skip
    readiness = "True" if ready else "False"
    status = {
        "phase": "Running" if ready else "Pending",
        "conditions": [{"type": kind, "status": readiness} for kind in ("Ready", "ContainersReady")],
        "containerStatuses": containers,
    }
    client.CoreV1Api(api).patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})


def report_config_error(api: client.ApiClient, namespace: str, pod: Any, message: str) -> None:
    _report(api, namespace, pod, ready=False, state={"waiting": {"reason": CONFIG_ERROR, "message": message}})


def report_running(api: client.ApiClient, namespace: str, pod: Any) -> None:
    _report(api, namespace, pod, ready=True, state={"running": {"startedAt": "2026-01-01T00:00:00Z"}})
