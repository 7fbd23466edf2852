"""Child manifests of a GemmaDeployment, rendered from jinja2 templates. Pure: data in, dicts out."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import jinja2
import yaml

from gemma_operator.api import GemmaDeployment, MemoryPlan, PlacementPlan, Runtime, Target
from gemma_operator.catalog import RuntimeFacts, runtimes
from gemma_operator.planning import Plan
from gemma_operator.planning.inventory import GPU_RESOURCE
from gemma_operator.rendering.names import child_name, label_value

Manifest = dict[str, Any]

MANAGER: Final = "gemma-operator"
APP_NAME: Final = "gemma"
COMPONENT: Final = "inference-server"
RUNTIME_LABEL: Final = "serving.gemma.dev/runtime"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"

# The startup probe waits this long, plus per GiB of weights, for a download and load.
STARTUP_BASE_SECONDS = 600
STARTUP_SECONDS_PER_WEIGHT_GIB = 30
PROBE_PERIOD_SECONDS = 10
# Host CPU a replica asks for: per GPU on GPU nodes, in all on CPU and edge nodes.
CPU_REQUEST = {Target.GPU: 4, Target.CPU: 4, Target.EDGE: 2}
# Host RAM a GPU replica asks for beyond its weights, which pass through host memory as they load.
GPU_HOST_MEMORY_HEADROOM_GIB = 8
SHARED_MEMORY = "16Gi"
# Images whose entrypoint is not the server itself get an explicit command.
COMMANDS: Final[dict[Runtime, list[str]]] = {Runtime.VLLM: ["vllm"]}


@dataclass(frozen=True)
class Identity:
    """Names and labels shared by every child of one GemmaDeployment."""

    name: str
    namespace: str
    labels: dict[str, str]
    selector: dict[str, str]

    @classmethod
    def of(cls, deployment: GemmaDeployment) -> Identity:
        model = deployment.spec.model
        selector = {
            "app.kubernetes.io/name": APP_NAME,
            INSTANCE_LABEL: label_value(deployment.metadata.name),
        }
        labels = {
            **selector,
            "app.kubernetes.io/component": COMPONENT,
            MANAGED_BY_LABEL: MANAGER,
            "app.kubernetes.io/version": label_value(f"{model.family.value}-{model.variant}"),
        }
        return cls(child_name(deployment.metadata.name), deployment.metadata.namespace, labels, selector)

    @property
    def selector_string(self) -> str:
        """The selector as status.selector carries it, for the scale subresource."""
        return ",".join(f"{key}={value}" for key, value in self.selector.items())


def endpoint(deployment: GemmaDeployment, plan: Plan) -> str:
    """In-cluster URL of the serving Service."""
    identity = Identity.of(deployment)
    port = runtimes()[plan.runtime.name].port
    return f"http://{identity.name}.{identity.namespace}.svc:{port}"


# What YAML cannot carry raw inside a quoted scalar: DEL and the C1 controls (libyaml refuses them), NEL and
# the line and paragraph separators (read as line breaks, then folded), and U+FFFE/U+FFFF (not characters).
_NOT_RAW_IN_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _yaml_safe_json(value: object, **kwargs: Any) -> str:
    """tojson's dumps: UTF-8 rather than ASCII escapes, whose surrogate pairs (for emoji) libyaml refuses."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    # Only inside JSON strings, where \uXXXX means the same to YAML.
    return _NOT_RAW_IN_YAML.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("gemma_operator.rendering", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        # Templates ship inside the package: checking their files for changes on every render was
        # ~5 % of the operator's CPU under load.
        auto_reload=False,
    )
    environment.policies["json.dumps_function"] = _yaml_safe_json
    return environment


def _env(deployment: GemmaDeployment, facts: RuntimeFacts, cache_dir: str) -> list[dict[str, Any]]:
    """Token by reference only, the cache location and HOME, then the user's variables (which win)."""
    env: list[dict[str, Any]] = []
    token = deployment.spec.model.token_secret_ref
    if token is not None:
        env += [
            {"name": variable, "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}}
            for variable in facts.token_env
        ]
    env += [{"name": key, "value": value} for key, value in facts.cache_env.items()]
    # The images' HOME is /root, which the non-root user cannot write; the runtimes keep caches under ~
    # (vLLM's compile cache, Triton's kernels), so HOME is the writable cache volume.
    env.append({"name": "HOME", "value": cache_dir})
    user = [variable.to_wire() for variable in deployment.spec.serving.env]
    overridden = {variable["name"] for variable in user}
    return [variable for variable in env if variable["name"] not in overridden] + user


def cache_claim_name(deployment: GemmaDeployment) -> str:
    """The name of the weight-cache claim the operator creates when spec.serving.cache has a size."""
    return child_name(deployment.metadata.name, "cache")


def _cache(deployment: GemmaDeployment) -> dict[str, str]:
    """The weight cache's claim: the user's, one the operator creates (`created`), or none (an emptyDir)."""
    cache = deployment.spec.serving.cache
    if cache is None:
        return {"claim": "", "created": "", "size": "", "storage_class_name": ""}
    created = cache_claim_name(deployment) if cache.size else ""
    return {
        "claim": cache.claim_name or created,
        "created": created,
        "size": cache.size,
        "storage_class_name": cache.storage_class_name,
    }


def _resources(placement: PlacementPlan, memory: MemoryPlan) -> dict[str, Any]:
    target = placement.target
    if target is Target.GPU:
        gpus = placement.gpus_per_replica
        host_memory = math.ceil(memory.weights_gi_b) + GPU_HOST_MEMORY_HEADROOM_GIB
        return {
            "requests": {"cpu": str(CPU_REQUEST[target] * gpus), "memory": f"{host_memory}Gi", GPU_RESOURCE: str(gpus)},
            "limits": {GPU_RESOURCE: str(gpus)},
        }
    ram = f"{math.ceil(memory.required_gi_b)}Gi"
    return {"requests": {"cpu": str(CPU_REQUEST[target]), "memory": ram}, "limits": {"memory": ram}}


# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one was ~9 % of the operator's CPU.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _render(template: str, context: dict[str, Any]) -> Manifest:
    text = _environment().get_template(template).render(**context)
    rendered: Manifest = yaml.load(text, Loader=_LOADER)
    return rendered


def render(deployment: GemmaDeployment, plan: Plan, replicas: int | None = None) -> list[Manifest]:
    """The children the operator applies, in apply order. `replicas` overrides spec.replicas (the autoscaler's)."""
    identity = Identity.of(deployment)
    facts = runtimes()[plan.runtime.name]
    count = deployment.spec.replicas if replicas is None else replicas
    cache = _cache(deployment)
    cache_dir = next(iter(facts.cache_env.values()))
    startup_seconds = STARTUP_BASE_SECONDS + STARTUP_SECONDS_PER_WEIGHT_GIB * plan.memory.weights_gi_b
    context: dict[str, Any] = {
        "names": {
            "deployment": identity.name,
            "service": identity.name,
            "pdb": identity.name,
            "service_monitor": identity.name,
            "cache": cache["created"],
        },
        "namespace": identity.namespace,
        "labels": identity.labels,
        "selector": identity.selector,
        "pod_labels": {**identity.labels, RUNTIME_LABEL: facts.name.value},
        "replicas": count,
        "image": plan.runtime.image,
        "command": COMMANDS.get(facts.name, []),
        "args": [*plan.runtime.args, *deployment.spec.serving.extra_args],
        "port": facts.port,
        "health_path": facts.health_path,
        "env": _env(deployment, facts, cache_dir),
        "resources": _resources(plan.placement, plan.memory),
        "startup_failure_threshold": math.ceil(startup_seconds / PROBE_PERIOD_SECONDS),
        "node_selector": plan.placement.node_selector,
        "excluded_node_labels": plan.placement.excluded_node_labels,
        "tolerations": [toleration.to_wire() for toleration in plan.placement.tolerations],
        "cache_dir": cache_dir,
        "security": deployment.spec.serving.security_context,
        "cache": cache,
        # Tensor-parallel shards exchange tensors through /dev/shm; the default 64 MiB is far too small.
        "shared_memory": SHARED_MEMORY if plan.placement.gpus_per_replica > 1 else "",
    }
    children = [_render("persistentvolumeclaim.yaml.j2", context)] if cache["created"] else []
    children += [_render("deployment.yaml.j2", context), _render("service.yaml.j2", context)]
    if count > 1:
        children.append(_render("poddisruptionbudget.yaml.j2", context))
    if deployment.spec.monitoring.service_monitor:
        children.append(_render("servicemonitor.yaml.j2", context))
    return children
