"""The serving container: the runtime's image and arguments, its environment, resources and probes."""

from __future__ import annotations

import math
from typing import Final

from gemma_operator.api import GemmaDeployment, MemoryPlan, PlacementPlan, Runtime, Target
from gemma_operator.catalog import RuntimeFacts
from gemma_operator.planning import Plan
from gemma_operator.planning.inventory import GPU_RESOURCE
from gemma_operator.rendering.identity import Manifest

CONTAINER_NAME: Final = "server"
# The container port's name, which the Service and the ServiceMonitor target.
PORT_NAME: Final = "http"
MODEL_CACHE_VOLUME: Final = "model-cache"
SHARED_MEMORY_VOLUME: Final = "dshm"
# The startup probe waits this long, plus per GiB of weights, for a download and load.
STARTUP_BASE_SECONDS = 600
STARTUP_SECONDS_PER_WEIGHT_GIB = 30
PROBE_PERIOD_SECONDS = 10
# Host RAM a GPU replica asks for beyond its weights, which pass through host memory as they load.
GPU_HOST_MEMORY_HEADROOM_GIB = 8
# Images whose entrypoint is not the server itself get an explicit command.
COMMANDS: Final[dict[Runtime, tuple[str, ...]]] = {Runtime.VLLM: ("vllm",)}


def cache_dir(facts: RuntimeFacts) -> str:
    """Where the runtime keeps downloaded weights: the weight cache volume's mount path."""
    return next(iter(facts.cache_env.values()))


def is_sharded(placement: PlacementPlan) -> bool:
    """Whether tensor-parallel shards exchange tensors through /dev/shm (whose default 64 MiB is far too small)."""
    return placement.gpus_per_replica > 1


def server_container(gd: GemmaDeployment, plan: Plan, facts: RuntimeFacts) -> Manifest:
    command = COMMANDS.get(facts.name)
    mounts = [{"name": MODEL_CACHE_VOLUME, "mountPath": cache_dir(facts)}]
    if is_sharded(plan.placement):
        mounts.append({"name": SHARED_MEMORY_VOLUME, "mountPath": "/dev/shm"})
    startup_seconds = STARTUP_BASE_SECONDS + STARTUP_SECONDS_PER_WEIGHT_GIB * plan.memory.weights_gi_b
    return {
        "name": CONTAINER_NAME,
        "image": plan.runtime.image,
        **({"command": list(command)} if command else {}),
        "args": [*plan.runtime.args, *gd.spec.serving.extra_args],
        "ports": [{"name": PORT_NAME, "containerPort": facts.port, "protocol": "TCP"}],
        "env": _env(gd, facts),
        "resources": _resources(plan.placement, plan.memory),
        # Weights download and load before the port opens: be patient.
        "startupProbe": _probe(
            facts,
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=5,
            failure_threshold=math.ceil(startup_seconds / PROBE_PERIOD_SECONDS),
        ),
        "readinessProbe": _probe(facts, period_seconds=PROBE_PERIOD_SECONDS, timeout_seconds=5, failure_threshold=3),
        "livenessProbe": _probe(facts, period_seconds=20, timeout_seconds=10, failure_threshold=6),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def _probe(facts: RuntimeFacts, *, period_seconds: int, timeout_seconds: int, failure_threshold: int) -> Manifest:
    return {
        "httpGet": {"path": facts.health_path, "port": PORT_NAME},
        "periodSeconds": period_seconds,
        "timeoutSeconds": timeout_seconds,
        "failureThreshold": failure_threshold,
    }


def _env(gd: GemmaDeployment, facts: RuntimeFacts) -> list[Manifest]:
    """Token by reference only, the cache location and HOME, then the user's variables (which win)."""
    env: list[Manifest] = []
    token = gd.spec.model.token_secret_ref
    if token is not None:
        env += [
            {"name": variable, "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}}
            for variable in facts.token_env
        ]
    env += [{"name": key, "value": value} for key, value in facts.cache_env.items()]
    # The images' HOME is /root, which the non-root user cannot write; the runtimes keep caches under ~
    # (vLLM's compile cache, Triton's kernels), so HOME is the writable cache volume.
    env.append({"name": "HOME", "value": cache_dir(facts)})
    user = [variable.to_wire() for variable in gd.spec.serving.env]
    overridden = {variable["name"] for variable in user}
    return [variable for variable in env if variable["name"] not in overridden] + user


def _resources(placement: PlacementPlan, memory: MemoryPlan) -> Manifest:
    target = placement.target
    if target is Target.GPU:
        gpus = placement.gpus_per_replica
        host_memory = math.ceil(memory.weights_gi_b) + GPU_HOST_MEMORY_HEADROOM_GIB
        return {
            "requests": {"cpu": str(placement.cpus_per_replica), "memory": f"{host_memory}Gi", GPU_RESOURCE: str(gpus)},
            "limits": {GPU_RESOURCE: str(gpus)},
        }
    ram = f"{math.ceil(memory.required_gi_b)}Gi"
    return {"requests": {"cpu": str(placement.cpus_per_replica), "memory": ram}, "limits": {"memory": ram}}
