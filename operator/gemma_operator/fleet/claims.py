"""What pods hold on their nodes, counted as the kube-scheduler counts it. Pure: pods come in as plain objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.planning.inventory import GPU_RESOURCE
from gemma_operator.planning.quantity import parse_millis, parse_quantity
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER

# Pods in these phases hold nothing: the scheduler's pod informer leaves them out
# (kubernetes pkg/scheduler/scheduler.go, newPodInformer: status.phase!=Succeeded,status.phase!=Failed).
TERMINAL_PHASES: Final = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Resources:
    """CPU, memory and GPUs: a pod's requests, a node's allocatable or free amounts."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes, self.gpus + other.gpus
        )

    def __sub__(self, other: Resources) -> Resources:
        """What is left, never below zero: more held than a node offers leaves nothing, not a debt."""
        return Resources(
            max(0, self.cpu_millis - other.cpu_millis),
            max(0, self.memory_bytes - other.memory_bytes),
            max(0, self.gpus - other.gpus),
        )

    def largest(self, other: Resources) -> Resources:
        return Resources(
            max(self.cpu_millis, other.cpu_millis),
            max(self.memory_bytes, other.memory_bytes),
            max(self.gpus, other.gpus),
        )

    def count_of(self, each: Resources) -> int:
        """How many of `each` fit in these amounts, counting only what `each` asks for; 0 for an empty `each`."""
        fits = [
            have // need
            for have, need in (
                (self.cpu_millis, each.cpu_millis),
                (self.memory_bytes, each.memory_bytes),
                (self.gpus, each.gpus),
            )
            if need > 0
        ]
        return min(fits, default=0)


def total(amounts: Iterable[Resources]) -> Resources:
    return sum(amounts, Resources())


def _requested(resources: Mapping[str, Any] | None) -> Resources:
    """A container's requests; a limit stands in for a request that is not set, as the API server's defaulting
    does (kubernetes pkg/apis/core/v1/defaults.go, SetDefaults_Pod)."""
    amounts = {**((resources or {}).get("limits") or {}), **((resources or {}).get("requests") or {})}
    return Resources(
        cpu_millis=parse_millis(amounts.get("cpu", 0)),
        memory_bytes=int(parse_quantity(amounts.get("memory", 0))),
        gpus=int(parse_quantity(amounts.get(GPU_RESOURCE, 0))),
    )


def pod_requests(pod_spec: Mapping[str, Any]) -> Resources:
    """What a pod (its spec, or a pod template's) asks the scheduler for, as k8s.io/component-helpers
    resource/helpers.go PodRequests computes it: the sum of the containers and of the restartable init containers
    (sidecars), or the largest need of an init container while it runs (with the sidecars started before it) if
    that is more; pod-level requests replace the containers' CPU and memory; then the pod's overhead on top."""
    containers = total(_requested(c.get("resources")) for c in pod_spec.get("containers") or [])
    sidecars, init = Resources(), Resources()
    for container in pod_spec.get("initContainers") or []:
        asked = _requested(container.get("resources"))
        if container.get("restartPolicy") == "Always":
            containers, sidecars = containers + asked, sidecars + asked
            init = init.largest(sidecars)
        else:
            init = init.largest(asked + sidecars)
    requests = containers.largest(init)
    pod_level = (pod_spec.get("resources") or {}).get("requests") or {}
    if "cpu" in pod_level or "memory" in pod_level:
        requests = Resources(
            cpu_millis=parse_millis(pod_level["cpu"]) if "cpu" in pod_level else requests.cpu_millis,
            memory_bytes=int(parse_quantity(pod_level["memory"])) if "memory" in pod_level else requests.memory_bytes,
            gpus=requests.gpus,
        )
    return requests + _requested({"requests": pod_spec.get("overhead")})


@dataclass(frozen=True)
class PodClaim:
    """A pod that holds (or, not yet bound, will hold) resources: where, whose, and how much."""

    namespace: str
    node: str  # "" while the pod waits for the scheduler
    serving: bool  # a GemmaDeployment's serving pod
    requests: Resources


def pod_claim(pod: Mapping[str, Any]) -> PodClaim | None:
    """The pod's claim, or None for a pod that has finished (it holds nothing)."""
    metadata, spec, status = (pod.get(key) or {} for key in ("metadata", "spec", "status"))
    if status.get("phase") in TERMINAL_PHASES:
        return None
    return PodClaim(
        namespace=str(metadata.get("namespace") or ""),
        node=str(spec.get("nodeName") or ""),
        serving=(metadata.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGER,
        requests=pod_requests(spec),
    )
