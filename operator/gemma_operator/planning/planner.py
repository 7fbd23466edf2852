"""plan(): from a GemmaDeployment, the accelerator classes and optionally the nodes, to a Plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gemma_operator.api import (
    FitsUpTo,
    GemmaDeployment,
    MemoryPlan,
    PlacementPlan,
    Reason,
    RuntimePlan,
    TaintEffect,
    Target,
    Toleration,
    TolerationOperator,
)
from gemma_operator.catalog import AcceleratorClass, AcceleratorClasses, RuntimeFacts, Variant, lookup
from gemma_operator.planning import memory
from gemma_operator.planning.choices import (
    choose_runtime,
    choose_target,
    tensor_parallel_candidates,
)
from gemma_operator.planning.inventory import (
    ARCH_LABEL,
    EDGE_ROLE_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    NodeInfo,
    matches_selector,
)
from gemma_operator.planning.launch import Launch, owned_flag, runtime_args
from gemma_operator.planning.result import Plan, PlanResult, Refused
from gemma_operator.planning.weights import weights


@dataclass(frozen=True)
class Sizing:
    """Memory of one replica on `devices` GPUs (or one node), all in GiB."""

    devices: int
    weights: float
    kv_cache: float
    overhead: float
    available: float

    @property
    def required(self) -> float:
        return self.weights + self.kv_cache + self.overhead

    @property
    def fits(self) -> bool:
        return self.required <= self.available

    def report(self) -> MemoryPlan:
        return MemoryPlan(
            weights_gi_b=round(self.weights, 1),
            kv_cache_gi_b=round(self.kv_cache, 1),
            overhead_gi_b=round(self.overhead, 1),
            required_gi_b=round(self.required, 1),
            available_gi_b=round(self.available, 1),
        )


@dataclass(frozen=True)
class Request:
    """What is being sized: one variant on one runtime, at a context and a concurrency."""

    variant: Variant
    runtime: RuntimeFacts
    deployment: GemmaDeployment
    target: Target
    memory_utilization: float

    def size(self, devices: int, per_device_gib: float, context: int, sequences: int) -> Sizing:
        return Sizing(
            devices=devices,
            weights=weights(self.variant, self.deployment.spec.model.precision, self.runtime.name).total_gib,
            kv_cache=memory.kv_cache_gib(self.variant.attention, context, sequences, self.runtime),
            overhead=memory.overhead_gib(self.variant, self.runtime, self.target, context, devices),
            available=devices * per_device_gib * self.memory_utilization,
        )


def _fmt(gib: float) -> str:
    return f"{gib:.1f} GiB"


def _frontier(request: Request, sizing: Sizing, per_device_gib: float) -> FitsUpTo:
    """The most sequences at the configured context, and the longest context at the configured concurrency."""
    serving = request.deployment.spec.serving
    context, sequences = serving.max_context_tokens, serving.max_concurrent_sequences

    def fits(ctx: int, seqs: int) -> bool:
        return request.size(sizing.devices, per_device_gib, ctx, seqs).fits

    most_sequences = 0
    high = 1
    while fits(context, high) and high < 1 << 20:
        most_sequences, high = high, high * 2
    low = most_sequences
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(context, middle) else (low, middle)
    most_sequences = low

    low, high = 0, request.variant.max_context_tokens + 1
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle, sequences) else (low, middle)
    return FitsUpTo(concurrent_sequences=most_sequences, context_tokens=low)


# Host CPU a replica requests: per GPU on GPU nodes, in all on CPU and edge nodes.
CPUS_PER_REPLICA = {Target.GPU: 4, Target.CPU: 4, Target.EDGE: 2}


def cpus_per_replica(target: Target, devices: int) -> int:
    return CPUS_PER_REPLICA[target] * (devices if target is Target.GPU else 1)


def _gpu_placement(accelerator: AcceleratorClass) -> tuple[dict[str, str], list[Toleration]]:
    return (
        {GPU_PRODUCT_LABEL: accelerator.product},
        [Toleration(key=GPU_RESOURCE, operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)],
    )


def _placement(
    request: Request, accelerator: AcceleratorClass | None, devices: int, architectures: Sequence[str]
) -> PlacementPlan:
    spec = request.deployment.spec.placement
    selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    excluded: list[str] = []
    if request.target is Target.GPU and accelerator is not None:
        selector, tolerations = _gpu_placement(accelerator)
    elif request.target is Target.EDGE:
        selector = {EDGE_ROLE_LABEL: ""}
        tolerations = [
            Toleration(key=EDGE_ROLE_LABEL, operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)
        ]
    else:
        # CPU nodes are the ones that are neither GPU nodes nor edge nodes.
        excluded = [GPU_PRODUCT_LABEL, EDGE_ROLE_LABEL]
    if len(architectures) == 1:
        selector[ARCH_LABEL] = architectures[0]
    return PlacementPlan(
        target=request.target,
        accelerator_class=accelerator.name if accelerator else "",
        gpus_per_replica=devices if request.target is Target.GPU else 0,
        cpus_per_replica=cpus_per_replica(request.target, devices),
        node_selector={**selector, **spec.node_selector},
        excluded_node_labels=excluded,
        tolerations=tolerations + list(spec.tolerations),
    )


def _unplaceable(
    placement: PlacementPlan, sizing: Sizing, nodes: Sequence[NodeInfo], architectures: Sequence[str]
) -> str | None:
    """Why no node of the inventory can host a replica, or None when one can."""
    candidates = [
        node
        for node in nodes
        if node.schedulable
        and matches_selector(node, placement.node_selector, placement.excluded_node_labels)
        and node.arch in architectures
    ]
    what = placement.accelerator_class or placement.target.value
    if placement.target is Target.GPU:
        needed = placement.gpus_per_replica
        if any(node.gpus >= needed for node in candidates):
            return None
        most = max((node.gpus for node in candidates), default=0)
        return (
            f"no node can host a replica: 0/{len(candidates)} {what} nodes have {needed} allocatable {GPU_RESOURCE}"
            + (f" (at most {most})" if candidates else "")
        )
    if any(node.memory_gib >= sizing.required for node in candidates):
        return None
    largest = max((node.memory_gib for node in candidates), default=0.0)
    return (
        f"no node can host a replica: 0/{len(candidates)} {what} nodes "
        f"({'/'.join(architectures)}) have {_fmt(sizing.required)} of allocatable memory"
        + (f" (largest: {_fmt(largest)})" if candidates else "")
    )


def _host_memory_gib(
    request: Request, classes: AcceleratorClasses, nodes: Sequence[NodeInfo] | None, architectures: Sequence[str]
) -> float:
    """RAM a CPU or edge replica can plan for: the largest matching node's, else the configured nominal size."""
    if nodes:
        placement = _placement(request, None, 1, architectures)
        sizes = [
            node.memory_gib
            for node in nodes
            if matches_selector(node, placement.node_selector, placement.excluded_node_labels)
            and node.arch in architectures
        ]
        if sizes:
            return max(sizes)
    return classes.node_memory_mi_b.get(request.target, 0) / 1024


def _accelerator(
    deployment: GemmaDeployment, classes: AcceleratorClasses, target: Target
) -> AcceleratorClass | Refused | None:
    placement = deployment.spec.placement
    if target is not Target.GPU:
        if placement.accelerator_class:
            return Refused.because(
                Reason.UNSATISFIABLE,
                f"placement.acceleratorClass {placement.accelerator_class} applies to GPU targets only, "
                f"not {target.value}",
            )
        if placement.gpus_per_replica:
            return Refused.because(
                Reason.UNSATISFIABLE,
                f"placement.gpusPerReplica {placement.gpus_per_replica} applies to GPU targets only, "
                f"not {target.value}",
            )
        return None
    name = placement.accelerator_class or classes.default_class
    found = classes.classes.get(name)
    if found is None:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"placement.acceleratorClass {name} is not a configured accelerator class "
            f"(known: {', '.join(sorted(classes.classes))})",
        )
    return found


def _model_id(deployment: GemmaDeployment, variant: Variant, runtime: RuntimeFacts) -> str | Refused:
    model = deployment.spec.model
    if model.repository:
        return model.repository
    repositories = variant.gguf if runtime.gguf_quant else variant.repositories
    repository = repositories.instruction_tuned if model.instruction_tuned else repositories.base
    if repository is None:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"no {runtime.name.value} build of the base {variant.label} is catalogued; set spec.model.repository",
        )
    return repository


def _advice(request: Request, sizing: Sizing, per_device_gib: float, candidates: Sequence[int]) -> str:
    serving = request.deployment.spec.serving
    hints = []
    larger = [
        d
        for d in candidates
        if d > sizing.devices
        and request.size(d, per_device_gib, serving.max_context_tokens, serving.max_concurrent_sequences).fits
    ]
    if larger:
        hints.append(f"gpusPerReplica {larger[0]} would fit")
    room = sizing.available - sizing.weights - sizing.overhead
    per_sequence = sizing.kv_cache / serving.max_concurrent_sequences
    if room > 0 and per_sequence > 0 and room >= per_sequence:
        hints.append(f"at most {int(room // per_sequence)} sequences fit at {serving.max_context_tokens} tokens")
    if room <= 0:
        hints.append(
            f"the weights alone need {_fmt(sizing.weights)}: a lower precision or a larger accelerator is needed"
        )
    return "; ".join(hints)


def plan(
    deployment: GemmaDeployment, classes: AcceleratorClasses, nodes: Sequence[NodeInfo] | None = None
) -> PlanResult:
    """Plan one GemmaDeployment. Raises InvalidSpec for a variant the catalog does not know."""
    spec = deployment.spec
    variant = lookup(spec.model.family, spec.model.variant)
    if spec.serving.max_context_tokens > variant.max_context_tokens:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"serving.maxContextTokens {spec.serving.max_context_tokens} exceeds "
            f"{variant.label}'s maximum of {variant.max_context_tokens}",
        )
    target = choose_target(spec.placement.target, variant)
    if isinstance(target, Refused):
        return target
    accelerator = _accelerator(deployment, classes, target)
    if isinstance(accelerator, Refused):
        return accelerator
    runtime = choose_runtime(spec.serving.runtime, variant, target)
    if isinstance(runtime, Refused):
        return runtime
    if spec.model.revision and not runtime.pins_revision:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"model.revision {spec.model.revision} cannot be honoured by {runtime.name.value}: its -hf download "
            "takes a repository's default branch and has no revision option; leave model.revision empty and "
            "set model.repository to a repository that holds that revision, or use a runtime that pins it",
        )
    owned = owned_flag(runtime.name, spec.serving.extra_args)
    if owned:
        return Refused.because(Reason.OWNED_FLAG, owned)
    model_id = _model_id(deployment, variant, runtime)
    if isinstance(model_id, Refused):
        return model_id

    utilization = (accelerator.memory_utilization if accelerator else None) or runtime.memory_utilization
    request = Request(
        variant=variant, runtime=runtime, deployment=deployment, target=target, memory_utilization=utilization
    )
    image = runtime.images[target]
    context, sequences = spec.serving.max_context_tokens, spec.serving.max_concurrent_sequences
    if accelerator is not None:
        candidates = tensor_parallel_candidates(spec.placement.gpus_per_replica, variant)
        if isinstance(candidates, Refused):
            return candidates
        per_device = accelerator.memory_gib
        sizings = [request.size(d, per_device, context, sequences) for d in candidates]
        sizing = next((s for s in sizings if s.fits), sizings[-1])
        hardware = f"{sizing.devices} x {accelerator.name}"
        all_degrees = tensor_parallel_candidates(0, variant)
        advice_degrees = all_degrees if not isinstance(all_degrees, Refused) else ()
    else:
        per_device = _host_memory_gib(request, classes, nodes, image.architectures)
        sizing = request.size(1, per_device, context, sequences)
        hardware = f"a {target.value} node"
        advice_degrees = ()

    placement = _placement(request, accelerator, sizing.devices, image.architectures)
    launch = Launch(
        runtime=runtime,
        family=variant.family,
        model_id=model_id,
        revision=spec.model.revision,
        precision=spec.model.precision,
        target=target,
        tensor_parallel=sizing.devices,
        context_tokens=context,
        sequences=sequences,
        memory_utilization=utilization,
    )
    sized = Plan(
        runtime=RuntimePlan(
            name=runtime.name,
            image=spec.serving.image or image.image,
            args=runtime_args(launch),
            extra_arg_count=len(spec.serving.extra_args),
        ),
        placement=placement,
        memory=sizing.report(),
        fits_up_to=_frontier(request, sizing, per_device),
    )
    if not sizing.fits:
        utilisation = f"{utilization:.0%}"
        message = (
            f"{variant.label} {spec.model.precision.value} does not fit {hardware}: it needs {_fmt(sizing.required)} "
            f"(weights {_fmt(sizing.weights)}, KV cache {_fmt(sizing.kv_cache)}, overhead {_fmt(sizing.overhead)}) "
            f"but {hardware} offers {_fmt(sizing.available)} at {utilisation} utilisation"
        )
        advice = _advice(request, sizing, per_device, advice_degrees)
        return Refused(Reason.DOES_NOT_FIT, (message + (f"; {advice}" if advice else ""),), closest=sized)
    if nodes is not None:
        unplaceable = _unplaceable(placement, sizing, nodes, image.architectures)
        if unplaceable:
            return Refused(Reason.NO_NODE_FITS, (unplaceable,), closest=sized)
    return sized
