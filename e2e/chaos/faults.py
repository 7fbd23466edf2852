"""Faults injected into a running plane: a component killed and started again, a node deleted and put back.

A component is restarted the way e2e/cluster/up started it: the same command line (read from
/proc), in a session of its own, appending to the same log, and its new pid recorded in
``<state>/pids/<name>.pid``, so that ``up`` and ``down`` keep managing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.plane import Plane
from harness.waiting import wait_for


@dataclass(frozen=True)
class Component:
    """One process of the plane, as ``up`` recorded it."""

    plane: Plane
    name: str

    @property
    def pid_file(self) -> Path:
        return self.plane.state_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.plane.state_dir / f"{self.name}.log"

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def command(self) -> list[str]:
        raw = Path(f"/proc/{self.pid()}/cmdline").read_bytes()
        argv = [part.decode() for part in raw.split(b"\0") if part]
        if not argv or "gemma-plane" not in argv[0]:
            raise RuntimeError(f"pid {self.pid()} recorded for {self.name} is not a plane component: {argv}")
        return argv

    def stop(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 30) -> list[str]:
        """Signal the component's process group; return its command line, to start it again."""
        argv = self.command()
        pid = self.pid()
        os.killpg(pid, sig)
        wait_for(lambda: not _alive(pid), timeout=timeout, interval=0.1, message=f"{self.name} (pid {pid}) to exit")
        return argv

    def start(self, argv: list[str]) -> int:
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def api_ready(plane: Plane) -> bool:
    """The API server answers /readyz (which includes its etcd check)."""
    try:
        api: Any = plane.api
        method, url, headers, body, post = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        response = api.call_api(method, url, headers, body, post, _request_timeout=3)
        return bool(response.status == 200)
    except Exception:
        return False


def wait_api_ready(plane: Plane, timeout: float = 90) -> float:
    """Wait until the API server is ready; the monotonic time it was."""
    wait_for(lambda: api_ready(plane), timeout=timeout, interval=0.2, message="the API server's /readyz")
    return time.monotonic()


def restart(plane: Plane, name: str, down_seconds: float = 0.0, sig: signal.Signals = signal.SIGKILL) -> None:
    """Kill a component, leave it down for ``down_seconds``, and start it with the same command line."""
    component = Component(plane, name)
    argv = component.stop(sig)
    time.sleep(down_seconds)
    component.start(argv)


NUDGED = "chaos.gemma.dev/nudged"


def nudge_pending_pods(plane: Plane, namespace: str, stuck_seconds: float = 5.0) -> list[str]:
    """Annotate, once, the namespace's pods bound to a node for `stuck_seconds` and still Pending, so that kwok
    hears of them again; the names nudged come back.

    kwok v0.8.0 drops a pod's status patch that the API server answered with an error of etcd's absence ("rpc
    error: code = Unavailable"), and such a pod stays Pending for good (kubernetes-sigs/kwok#816; the retry of
    #911 covers network errors only). A kubelet writes its pods' status again; this event makes kwok do the same.
    """
    core: Any = client.CoreV1Api(plane.api)
    now = time.time()
    nudged = []
    for pod in core.list_namespaced_pod(namespace).items:
        conditions = pod.status.conditions or []
        scheduled = next((c for c in conditions if c.type == "PodScheduled" and c.status == "True"), None)
        if (
            scheduled is None
            or pod.status.phase != "Pending"
            or pod.metadata.deletion_timestamp
            or NUDGED in (pod.metadata.annotations or {})
            or now - scheduled.last_transition_time.timestamp() < stuck_seconds
        ):
            continue
        core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"annotations": {NUDGED: str(now)}}})
        nudged.append(pod.metadata.name)
    return nudged


# ----------------------------------------------------------------------- nodes ---


def snapshot_node(plane: Plane, name: str) -> dict[str, Any]:
    """The node as it can be created again: metadata (labels, annotations), spec and status."""
    core: Any = client.CoreV1Api(plane.api)
    node = core.api_client.sanitize_for_serialization(core.read_node(name))
    metadata = node["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {key: metadata[key] for key in ("name", "labels", "annotations") if key in metadata},
        "spec": {key: value for key, value in node["spec"].items() if key != "providerID"},
        "status": {key: node["status"][key] for key in ("capacity", "allocatable", "nodeInfo", "addresses")},
    }


def restore_node(plane: Plane, node: dict[str, Any], timeout: float = 60) -> None:
    """Create a deleted node again (kwok takes it over by its annotation) and wait until it is Ready."""
    core: Any = client.CoreV1Api(plane.api)
    created = core.create_node({key: value for key, value in node.items() if key != "status"})
    core.patch_node_status(created.metadata.name, {"status": node["status"]})

    def ready() -> bool:
        conditions = core.read_node(node["metadata"]["name"]).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_for(ready, timeout=timeout, message=f"node {node['metadata']['name']} Ready again")
