"""Pod watch → the set of servers that should exist.

``target_for_pod`` is the pure decision (which pods are simulated, on which
address, as which runtime); ``PodWatcher`` lists and watches Pods in all
namespaces through the real API server in a background thread and hands each
change to the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from gemma_operator.rendering import INSTANCE_LABEL, RUNTIME_LABEL

from .loopback import is_loopback_v4
from .runtimes import RUNTIMES, runtime_for_image

log = logging.getLogger("servingsim.watcher")

PodKey = tuple[str, str]


@dataclass(frozen=True)
class Target:
    """A pod the simulator should serve."""

    namespace: str
    name: str
    uid: str
    ip: str
    ports: tuple[int, ...]
    runtime: str
    container: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    # The GemmaDeployment the pod serves (its app.kubernetes.io/instance label): what PUT /traffic routes to.
    instance: str = ""

    @property
    def key(self) -> PodKey:
        return (self.namespace, self.name)

    @property
    def env_map(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class Refusal:
    """A pod that looks like a serving pod but will not be served, and why."""

    namespace: str
    name: str
    reason: str

    @property
    def key(self) -> PodKey:
        return (self.namespace, self.name)


Decision = Target | Refusal | None


def _pod_key(pod: Mapping[str, Any]) -> PodKey:
    meta = pod.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _serving_container(
    containers: list[Mapping[str, Any]], label_runtime: str | None
) -> tuple[Mapping[str, Any], str] | None:
    """The container that serves, and its runtime."""
    for container in containers:
        by_image = runtime_for_image(str(container.get("image", "")))
        if by_image is not None and (label_runtime is None or by_image == label_runtime):
            return container, by_image
    if label_runtime is not None:
        for container in containers:
            if any(_tcp_ports(container)):
                return container, label_runtime
    return None


def _tcp_ports(container: Mapping[str, Any]) -> list[int]:
    ports: list[int] = []
    for port in container.get("ports") or []:
        if str(port.get("protocol") or "TCP").upper() == "TCP" and port.get("containerPort"):
            ports.append(int(port["containerPort"]))
    return sorted(set(ports))


def target_for_pod(pod: Mapping[str, Any]) -> Decision:
    """Decide whether and how to serve a pod (a dict in API JSON form).

    None means "not a serving pod, or not ready to be served": not Running, no IP,
    no serving container, no TCP containerPort.
    """
    namespace, name = _pod_key(pod)
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    label_runtime = labels.get(RUNTIME_LABEL)
    if label_runtime is not None and label_runtime not in RUNTIMES:
        return Refusal(
            namespace,
            name,
            f"label {RUNTIME_LABEL}={label_runtime!r} is not one of {', '.join(sorted(RUNTIMES))}",
        )
    chosen = _serving_container(list(spec.get("containers") or []), label_runtime)
    if chosen is None:
        return None
    container, runtime = chosen
    if status.get("phase") != "Running":
        return None
    ip = status.get("podIP")
    if not ip:
        return None
    if not is_loopback_v4(str(ip)):
        return Refusal(namespace, name, f"podIP {ip} is outside 127.0.0.0/8; not binding")
    if spec.get("hostNetwork"):
        # Every simulated node has the same IP, so host-network pods would collide.
        return Refusal(namespace, name, f"hostNetwork pod (node IP {ip}) is not simulated")
    ports = _tcp_ports(container)
    if not ports:
        return Refusal(
            namespace,
            name,
            f"container {container.get('name')!r} declares no TCP containerPort",
        )
    env = tuple(
        (str(e["name"]), str(e["value"]))
        for e in container.get("env") or []
        if e.get("name") and isinstance(e.get("value"), str)
    )
    return Target(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid", "")),
        ip=str(ip),
        ports=tuple(ports),
        runtime=runtime,
        container=str(container.get("name", "")),
        command=tuple(str(c) for c in container.get("command") or []),
        args=tuple(str(a) for a in container.get("args") or []),
        env=env,
        instance=str(labels.get(INSTANCE_LABEL, "")),
    )


@dataclass(frozen=True)
class PodEvent:
    """A change for one pod (decision None with deleted=True means it is gone)."""

    key: PodKey
    decision: Decision
    deleted: bool = False


@dataclass(frozen=True)
class Snapshot:
    """A full list: every pod not in it is gone."""

    decisions: dict[PodKey, Decision]


Sink = Callable[[PodEvent | Snapshot], None]


class PodWatcher:
    """List+watch Pods in a thread; deliver Snapshot/PodEvent to ``sink`` on the loop."""

    def __init__(self, api: client.ApiClient, loop: asyncio.AbstractEventLoop, sink: Sink) -> None:
        self._core = client.CoreV1Api(api)
        self._loop = loop
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watcher", daemon=True)
        self._watch: watch.Watch | None = None
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout)

    def _deliver(self, item: PodEvent | Snapshot) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._sink, item)

    def _list(self) -> str:
        response: Any = self._core.list_pod_for_all_namespaces(_preload_content=False, _request_timeout=(5, 30))
        document = json.loads(response.data)
        decisions = {_pod_key(pod): target_for_pod(pod) for pod in document.get("items") or []}
        self._deliver(Snapshot(decisions))
        self.synced.set()
        return str(document["metadata"]["resourceVersion"])

    def _run(self) -> None:
        resource_version: str | None = None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                    log.info("listed pods at resourceVersion %s", resource_version)
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self._core.list_pod_for_all_namespaces,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                    _request_timeout=(5, 45),
                    deserialize=False,
                ):
                    if self._stop.is_set():
                        break
                    kind = event.get("type")
                    pod = event.get("object") or {}
                    rv = (pod.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        resource_version = str(rv)
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        self._deliver(PodEvent(_pod_key(pod), None, deleted=True))
                    elif kind in ("ADDED", "MODIFIED"):
                        self._deliver(PodEvent(_pod_key(pod), target_for_pod(pod)))
                backoff = 0.5
            except ApiException as exc:
                # 410 Gone (or any other failure): list again; the Snapshot reconciles.
                resource_version = None
                if exc.status == 410:
                    log.info("watch expired (410 Gone); listing again")
                    continue
                log.warning(
                    "pod watch failed: %s %s; retrying in %.1fs",
                    exc.status,
                    exc.reason,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as exc:
                # (kubernetes' Watch raises KeyError on ERROR events when deserialize=False.)
                resource_version = None
                if self._stop.is_set():
                    break
                log.warning("pod watch failed: %r; listing again in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
