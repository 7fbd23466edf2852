"""plan(): from a GemmaDeployment, the accelerator classes and optionally the nodes, to a Plan.

The plan sizes a replica with the runtime's own accounting at the release its image runs
(planning/sizers.py, planning/allocators), on the fewest GPUs and with the largest prefill chunk
that admit maxConcurrentSequences at maxContextTokens, and sets those knobs on the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gemma_operator.api import (
    Family,
    GemmaDeployment,
    Precision,
    Reason,
    Runtime,
    RuntimeChoice,
    RuntimePlan,
    SpeculativeMethod,
    Target,
)
from gemma_operator.catalog import AcceleratorClass, AcceleratorClasses, RuntimeFacts, Variant, endpoint_picker, lookup
from gemma_operator.planning import modalities as served_modalities
from gemma_operator.planning import speculative
from gemma_operator.planning.choices import (
    auto_runtimes,
    choose_runtime,
    choose_target,
    tensor_parallel_candidates,
)
from gemma_operator.planning.images import CATALOG_IMAGES, RuntimeImages
from gemma_operator.planning.inventory import NodeInfo
from gemma_operator.planning.launch import Launch, owned_env, owned_flag, runtime_args
from gemma_operator.planning.lora import LoraLoad, LoraSlots
from gemma_operator.planning.modalities import Modalities
from gemma_operator.planning.placement import accelerator_for, gib, host_memory_gib, placement_for, unplaceable
from gemma_operator.planning.result import Plan, PlanResult, Refused
from gemma_operator.planning.sizers import Sizer, VllmSizer, sizer_for
from gemma_operator.planning.sizing import Request, Sizing, choose, frontier
from gemma_operator.planning.weights import StorageUnknown, WeightBreakdown, assistant_bytes, weights


@dataclass(frozen=True)
class Asked:
    """What one plan is for: the spec, the variant and target it names, and the hardware known."""

    deployment: GemmaDeployment
    variant: Variant
    target: Target
    accelerator: AcceleratorClass | None
    classes: AcceleratorClasses
    nodes: Sequence[NodeInfo] | None
    images: RuntimeImages

    def default_image(self, runtime: RuntimeFacts) -> str:
        """The runtime's image on the target unless serving.image names one: the operator's, else the catalog's."""
        return self.images.get((runtime.name, self.target), runtime.images[self.target].image)


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


def _advice(request: Request, sizing: Sizing, degrees: Sequence[int]) -> str:
    knobs = sizing.knobs
    hints = []
    larger = [
        d
        for d in degrees
        if d > sizing.devices and choose(request, (d,), knobs.context_tokens, knobs.sequences).sizing.fits
    ]
    if larger:
        hints.append(f"gpusPerReplica {larger[0]} would fit")
    most = frontier(request, sizing, request.variant.max_context_tokens).concurrent_sequences
    if 0 < most < knobs.sequences:
        hints.append(f"at most {most} sequences fit at {knobs.context_tokens} tokens")
    if sizing.weights >= sizing.available:
        hints.append(
            f"the weights alone need {gib(sizing.weights)}: a lower precision or a larger accelerator is needed"
        )
    elif sizing.available - sizing.weights - sizing.overhead - sizing.adapters <= 0:
        hints.append(
            f"the weights ({gib(sizing.weights)}) and the runtime's overhead ({gib(sizing.overhead)}, most of it "
            f"the activations of a {min(knobs.context_tokens, knobs.prefill_chunk_tokens)}-token prefill) leave "
            "nothing for the KV cache: a lower precision, a shorter maxContextTokens or a larger accelerator is needed"
        )
    return "; ".join(hints)


def _prequantized(asked: Asked, runtime: RuntimeFacts) -> bool:
    """An int4 model.repository on vLLM: the checkpoint is taken as quantised already (no --quantization)."""
    model = asked.deployment.spec.model
    return runtime.name.value == "vllm" and model.precision is Precision.INT4 and bool(model.repository)


@dataclass(frozen=True)
class ChatParsers:
    """vLLM's Gemma 4 parsers the plan turns on."""

    tool_calling: bool
    reasoning: bool


def _chat_parsers(asked: Asked, runtime: RuntimeFacts) -> ChatParsers | Refused:
    """serving.toolCalling and serving.reasoning: each on by default where vLLM serves an instruction-tuned Gemma 4
    (its gemma4 parsers, as the vLLM recipe runs it); asked for elsewhere, refused."""
    serving, model = asked.deployment.spec.serving, asked.deployment.spec.model
    parsed = runtime.name is Runtime.VLLM and asked.variant.family is Family.GEMMA_4
    for field, asked_for in (("toolCalling", serving.tool_calling), ("reasoning", serving.reasoning)):
        if asked_for and not parsed:
            return Refused.because(
                Reason.UNSATISFIABLE,
                f"serving.{field} needs vLLM's gemma4 parsers, which serve Gemma 4 only; {asked.variant.label} on "
                f"{runtime.name.value} gets none from the operator: leave serving.{field} empty",
            )
    default = parsed and model.instruction_tuned
    return ChatParsers(
        tool_calling=default if serving.tool_calling is None else serving.tool_calling,
        reasoning=default if serving.reasoning is None else serving.reasoning,
    )


def _profile_note(asked: Asked, sizer: Sizer) -> tuple[str, ...]:
    """Where the release profiles images at the checkpoint's budget rather than the one served."""
    image, rules = asked.deployment.spec.serving.modalities.image, sizer.vllm_rules
    vision = asked.variant.encoders.vision
    if image is None or image.tokens_per_image is None or rules is None or vision is None:
        return ()
    if rules.multimodal.profiles_configured_tokens_per_image:
        return ()
    return (
        f"vllm {sizer.version} profiles an image at the checkpoint's {vision.tokens_per_image} tokens whatever "
        f"--mm-processor-kwargs says; the plan charges the {image.tokens_per_image} served",
    )


@dataclass(frozen=True)
class _Loaded:
    """What a runtime loads for the spec's modalities and drafter, and the sizer that knows the items served."""

    sizer: Sizer
    modalities: Modalities
    stored: WeightBreakdown
    assistant_bytes: float


def _loaded(asked: Asked, runtime: RuntimeFacts, sizer: Sizer, precision: Precision) -> _Loaded | Refused:
    serving, variant = asked.deployment.spec.serving, asked.variant
    vllm_rules = sizer.vllm_rules
    cannot = served_modalities.refusal(serving.modalities, variant, runtime.name, sizer.version) or speculative.refusal(
        serving.speculative,
        variant,
        runtime.name,
        sizer.version,
        vllm_rules.support.architectures if vllm_rules else (),
    )
    if cannot:
        return Refused.because(Reason.UNSATISFIABLE, cannot)
    modalities = served_modalities.resolve(serving.modalities, variant, runtime.name, vllm_rules)
    try:
        stored = weights(
            variant,
            precision,
            runtime.name,
            sizer.version,
            vision=modalities.vision_loaded,
            audio=modalities.audio_loaded,
        )
    except StorageUnknown as error:
        return Refused.because(Reason.UNSATISFIABLE, str(error))
    if isinstance(sizer, VllmSizer):
        sizer = replace(sizer, largest_item_tokens=modalities.largest_item_tokens)
    mtp = serving.speculative.method is SpeculativeMethod.MTP
    return _Loaded(sizer, modalities, stored, assistant_bytes(variant) if mtp else 0.0)


def _unroutable(deployment: GemmaDeployment, runtime: RuntimeFacts) -> Refused | None:
    """spec.routing.inferencePool on a runtime whose metrics the endpoint picker cannot read."""
    picker = endpoint_picker()
    if not deployment.spec.routing.inference_pool or runtime.name in picker.engines:
        return None
    readable = ", ".join(engine.value for engine in picker.engines)
    return Refused.because(
        Reason.UNSATISFIABLE,
        f"routing.inferencePool needs a runtime whose metrics the endpoint picker "
        f"(gateway-api-inference-extension {picker.picker_version}) reads: {readable}; it reads no "
        f"{runtime.name.value} metrics; choose serving.runtime vllm or turn routing.inferencePool off",
    )


def _plan_on(asked: Asked, runtime: RuntimeFacts) -> PlanResult:
    """The plan on one runtime."""
    spec, variant, target, accelerator = asked.deployment.spec, asked.variant, asked.target, asked.accelerator
    if spec.model.revision and not runtime.pins_revision:
        return Refused.because(
            Reason.UNSATISFIABLE,
            f"model.revision {spec.model.revision} cannot be honoured by {runtime.name.value}: its -hf download "
            "takes a repository's default branch and has no revision option; leave model.revision empty and "
            "set model.repository to a repository that holds that revision, or use a runtime that pins it",
        )
    owned = owned_flag(runtime.name, spec.serving.extra_args) or owned_env(
        runtime.name, [variable.name for variable in spec.serving.env]
    )
    if owned:
        return Refused.because(Reason.OWNED_FLAG, owned)
    model_id = _unroutable(asked.deployment, runtime) or _model_id(asked.deployment, variant, runtime)
    if isinstance(model_id, Refused):
        return model_id
    image = runtime.images[target]
    bound = sizer_for(runtime.name, spec.serving.image or asked.default_image(runtime), variant, target)
    sizer, precision, prequantized = bound.sizer, spec.model.precision, _prequantized(asked, runtime)
    unloadable = sizer.unloadable(variant, precision, prequantized)
    if unloadable:
        return Refused.because(Reason.UNSATISFIABLE, unloadable)
    loaded = _loaded(asked, runtime, sizer, precision)
    if isinstance(loaded, Refused):
        return loaded
    sizer, modalities, stored, assistant = loaded.sizer, loaded.modalities, loaded.stored, loaded.assistant_bytes
    replicated = stored.tower_bytes if sizer.replicates_towers else 0.0
    vllm_rules, mtp = sizer.vllm_rules, spec.serving.speculative.method is SpeculativeMethod.MTP
    parsers = _chat_parsers(asked, runtime)
    if isinstance(parsers, Refused):
        return parsers
    slots = LoraSlots(spec.serving.lora.max_rank, spec.serving.lora.max_loaded)
    adapters: LoraLoad | str | None = sizer.lora(variant, spec.adapters, slots) if spec.adapters else None
    if isinstance(adapters, str):
        return Refused.because(Reason.UNSATISFIABLE, adapters)

    utilization = (accelerator.memory_utilization if accelerator else None) or runtime.memory_utilization
    if accelerator is not None:
        degrees = tensor_parallel_candidates(spec.placement.gpus_per_replica, variant)
        if isinstance(degrees, Refused):
            return degrees
        device_gib, hardware = accelerator.memory_gib, accelerator.name
        every_degree = tensor_parallel_candidates(0, variant)
        advice_degrees: Sequence[int] = every_degree if not isinstance(every_degree, Refused) else ()
    else:
        degrees = (1,)
        device_gib = host_memory_gib(asked.deployment, target, asked.classes, asked.nodes, image.architectures)
        hardware, advice_degrees = f"a {target.value} node", ()
    request = Request(
        variant=variant,
        sizer=sizer,
        target=target,
        accelerator=accelerator,
        weight_bytes=stored.total_bytes - replicated + assistant,
        device_gib=device_gib,
        memory_utilization=utilization,
        activation_bytes_per_hidden_unit=runtime.activation_bytes_per_hidden_unit,
        lora=adapters,
        replicated_weight_bytes=replicated,
        sharded_tower_bytes=stored.tower_bytes - replicated,
        assistant_bytes=assistant,
        modalities=modalities if vllm_rules is not None else None,
    )
    serving = spec.serving
    choice = choose(request, degrees, serving.max_context_tokens, serving.max_concurrent_sequences)
    sizing = choice.sizing
    placement = placement_for(asked.deployment, target, accelerator, sizing.devices, image.architectures)
    launch = Launch(
        runtime=runtime,
        family=variant.family,
        model_id=model_id,
        revision=spec.model.revision,
        precision=precision,
        target=target,
        tensor_parallel=sizing.devices,
        context_tokens=serving.max_context_tokens,
        sequences=serving.max_concurrent_sequences,
        prefill_chunk_tokens=sizing.knobs.prefill_chunk_tokens,
        memory_utilization=utilization,
        cpus=placement.cpus_per_replica,
        prequantized=prequantized,
        adapters=tuple((adapter.name, adapter.repository) for adapter in spec.adapters),
        lora=slots if adapters is not None else None,
        tool_calling=parsers.tool_calling,
        reasoning=parsers.reasoning,
        modalities=modalities,
        speculative=spec.serving.speculative.method,
        speculative_tokens=speculative.tokens(spec.serving.speculative),
        assistant=variant.assistant.repository if mtp and variant.assistant else "",
    )
    sized = Plan(
        runtime=RuntimePlan(
            name=runtime.name,
            image=serving.image or asked.default_image(runtime),
            args=runtime_args(launch),
            extra_arg_count=len(serving.extra_args),
            version=sizer.version,
            prefill_chunk_tokens=sizing.knobs.prefill_chunk_tokens,
            decisions=[choice.chunk_decision, *bound.decisions, *_profile_note(asked, sizer)],
            adapters=[adapter.name for adapter in spec.adapters],
        ),
        placement=placement,
        memory=sizing.report(),
        fits_up_to=frontier(request, sizing, variant.max_context_tokens),
        concurrency=sizing.concurrency(),
    )
    on = f"{sizing.devices} x {hardware}" if accelerator is not None else hardware
    if sizing.refusal is not None:
        message = (
            f"{runtime.name.value} {sizer.version} would not start {variant.label} on {on} with the knobs planned: "
            f"{sizing.refusal}"
        )
        advice = _advice(request, sizing, advice_degrees)
        return Refused(Reason.DOES_NOT_FIT, (message + (f"; {advice}" if advice else ""),), closest=sized)
    if not sizing.fits:
        message = (
            f"{variant.label} {precision.value} does not fit {on}: {serving.max_concurrent_sequences} sequences of "
            f"{serving.max_context_tokens} tokens need {gib(sizing.required)} (weights {gib(sizing.weights)}, "
            f"KV cache {gib(sizing.kv_cache)} as {runtime.name.value} {sizer.version} charges it, overhead "
            f"{gib(sizing.overhead)}{f', LoRA slots {gib(sizing.adapters)}' if sizing.adapters else ''}) but {on} "
            f"offers {gib(sizing.available)}; {runtime.name.value} admits "
            f"{sizing.accounting.guaranteed:.2f} of them"
        )
        advice = _advice(request, sizing, advice_degrees)
        return Refused(Reason.DOES_NOT_FIT, (message + (f"; {advice}" if advice else ""),), closest=sized)
    if asked.nodes is not None:
        unplaced = unplaceable(placement, sizing.required, asked.nodes, image.architectures)
        if unplaced:
            return Refused(Reason.NO_NODE_FITS, (unplaced,), closest=sized)
    return sized


def _because(plan: Plan, why: str) -> Plan:
    return replace(plan, runtime=plan.runtime.model_copy(update={"auto_choice": why}))


def _auto(asked: Asked, candidates: Sequence[RuntimeFacts]) -> PlanResult:
    """Runtime auto: the preferred runtime where it fits on as few GPUs as the next; else the next, saying why."""
    first = _plan_on(asked, candidates[0])
    if len(candidates) == 1:
        return first
    preferred, other = candidates[0].name.value, candidates[1].name.value
    second = _plan_on(asked, candidates[1])
    if isinstance(first, Plan) and (
        not isinstance(second, Plan) or first.placement.gpus_per_replica <= second.placement.gpus_per_replica
    ):
        return _because(first, f"runtime auto: {preferred}, first choice, fits on as few GPUs as {other}")
    if isinstance(second, Plan):
        why = (
            f"{preferred} needs {first.placement.gpus_per_replica} GPUs per replica where {other} needs "
            f"{second.placement.gpus_per_replica}"
            if isinstance(first, Plan)
            else f"{preferred} does not: {first.message}"
        )
        return _because(second, f"runtime auto: {other}, because {why}")
    return first


def plan(
    deployment: GemmaDeployment,
    classes: AcceleratorClasses,
    nodes: Sequence[NodeInfo] | None = None,
    images: RuntimeImages = CATALOG_IMAGES,
) -> PlanResult:
    """Plan one GemmaDeployment (with `images`, the operator's default images in place of the catalog's). Raises
    InvalidSpec for a variant the catalog does not know."""
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
    accelerator = accelerator_for(deployment, classes, target)
    if isinstance(accelerator, Refused):
        return accelerator
    asked = Asked(deployment, variant, target, accelerator, classes, nodes, images)
    if spec.serving.runtime is RuntimeChoice.AUTO:
        candidates = auto_runtimes(variant, target)
        return candidates if isinstance(candidates, Refused) else _auto(asked, candidates)
    runtime = choose_runtime(spec.serving.runtime, variant, target)
    return runtime if isinstance(runtime, Refused) else _plan_on(asked, runtime)
