"""Capacity: the frontier of what fits where, per runtime, and a runtime's own cache figures from its inputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gemma_operator.api import Family, GemmaDeployment, Precision, Runtime, Target
from gemma_operator.api.spec import MAX_CONCURRENT_SEQUENCES
from gemma_operator.catalog import AcceleratorClasses, Variant, lookup, runtimes, variants
from gemma_operator.planning.allocators import Knobs, KvAccounting
from gemma_operator.planning.planner import plan
from gemma_operator.planning.result import Plan
from gemma_operator.planning.sizers import sizer_for

FRONTIER_CONTEXTS = (8192, 32768, 131072, 262144)
GIB = 1 << 30


@dataclass(frozen=True)
class Cell:
    """At one context, on the fewest GPUs that hold one sequence: the most sequences the runtime admits (its
    guaranteed figure), how many decode in steady state, and the prefill chunk the plan for them sets.
    None: no fit."""

    context_tokens: int
    sequences: int | None
    steady_decode: int | None
    gpus: int | None
    prefill_chunk_tokens: int | None


@dataclass(frozen=True)
class Row:
    family: str
    variant: str
    precision: Precision
    runtime: Runtime
    accelerator: str
    cells: tuple[Cell, ...]


# vLLM 0.33 loads int4 only from a pre-quantised checkpoint: the frontier sizes one of the W4A16 kind.
PREQUANTISED_REPOSITORY = "any/pre-quantised-w4a16"


def planned_deployment(
    variant: Variant, precision: Precision, runtime: Runtime, accelerator: str, context: int, sequences: int
) -> GemmaDeployment:
    """The GemmaDeployment the frontier plans for one cell: the variant on one runtime and accelerator class."""
    model = {"family": variant.family.value, "variant": variant.name, "precision": precision.value}
    if precision is Precision.INT4 and runtime is Runtime.VLLM:
        model["repository"] = PREQUANTISED_REPOSITORY
    return GemmaDeployment.model_validate(
        {
            "metadata": {"name": "capacity"},
            "spec": {
                "model": model,
                "serving": {
                    "runtime": runtime.value,
                    "maxContextTokens": context,
                    "maxConcurrentSequences": sequences,
                },
                "placement": {"target": "gpu", "acceleratorClass": accelerator},
            },
        }
    )


def _cell(
    variant: Variant,
    precision: Precision,
    runtime: Runtime,
    accelerator: str,
    context: int,
    classes: AcceleratorClasses,
) -> Cell:
    none = Cell(context, None, None, None, None)
    if context > variant.max_context_tokens:
        return none
    one = plan(planned_deployment(variant, precision, runtime, accelerator, context, 1), classes)
    if not isinstance(one, Plan):
        return none
    most = one.fits_up_to.concurrent_sequences
    full = plan(
        planned_deployment(variant, precision, runtime, accelerator, context, min(most, MAX_CONCURRENT_SEQUENCES)),
        classes,
    )
    at = full if isinstance(full, Plan) and full.placement.gpus_per_replica == one.placement.gpus_per_replica else one
    return Cell(
        context, most, at.concurrency.steady_decode, one.placement.gpus_per_replica, at.runtime.prefill_chunk_tokens
    )


def gpu_runtimes(family: Family) -> tuple[Runtime, ...]:
    """The runtimes that serve a family on GPUs, in auto's preference order."""
    return tuple(facts.name for facts in runtimes().values() if facts.can_serve(family, Target.GPU))


def frontier(classes: AcceleratorClasses) -> Iterator[Row]:
    """Every variant x precision x GPU runtime x accelerator class."""
    for (family, _), variant in variants().items():
        for precision in Precision:
            for runtime in gpu_runtimes(family):
                for accelerator in classes.classes:
                    cells = tuple(
                        _cell(variant, precision, runtime, accelerator, context, classes)
                        for context in FRONTIER_CONTEXTS
                    )
                    yield Row(family.value, variant.name, precision, runtime, accelerator, cells)


@dataclass(frozen=True)
class Reproduction:
    """A runtime's own cache figures for a pool and its knobs, and the lines it logs with them."""

    runtime: Runtime
    version: str
    version_known: bool
    accounting: KvAccounting
    log_lines: tuple[str, ...]


def log_lines(runtime: Runtime, knobs: Knobs, accounting: KvAccounting) -> tuple[str, ...]:
    """The lines a runtime logs about its cache for these figures (none for llama.cpp, which logs bytes)."""
    if runtime is Runtime.VLLM:
        # vllm/v1/core/kv_cache_utils.py (the two lines of 0.19.1; 0.33.0 prints them as one).
        return (
            f"GPU KV cache size: {accounting.cache_tokens:,} tokens",
            f"Maximum concurrency for {knobs.context_tokens:,} tokens per request: {accounting.guaranteed:.2f}x",
        )
    if runtime is Runtime.TGI:
        return (f"Setting max batch total tokens to {accounting.cache_tokens}",)
    return ()


# How each runtime's image tags name a release (the inverse of catalog/versions' tag parsers).
_RELEASE_TAGS = {Runtime.VLLM: "v{}", Runtime.TGI: "{}", Runtime.LLAMACPP: "server-{}"}


def release_image(runtime: Runtime, version: str | None) -> str:
    """The catalog's image of a runtime, at another release when `version` names one."""
    facts = runtimes()[runtime]
    image = next(iter(facts.images.values())).image
    if version is None:
        return image
    return f"{image.rsplit(':', 1)[0]}:{_RELEASE_TAGS[runtime].format(version.removeprefix('v'))}"


def reproduce(
    runtime: Runtime, version: str | None, family: Family, variant_name: str, pool_gib: float, knobs: Knobs
) -> Reproduction:
    """What a runtime release (None: the pinned one) computes and logs for a KV cache pool of `pool_gib` per device.

    The pool is what vLLM logs as "Available KV cache memory", TGI divides after its warmup, llama.cpp has
    for the cache; the figures are exactly what that release's allocator makes of it.
    """
    variant = lookup(family, variant_name)
    target = Target.GPU if runtime is not Runtime.LLAMACPP else Target.CPU
    bound = sizer_for(runtime, release_image(runtime, version), variant, target)
    accounting = bound.sizer.account(variant.attention, knobs, int(pool_gib * GIB))
    return Reproduction(
        runtime=runtime,
        version=bound.sizer.version,
        version_known=not bound.decisions,
        accounting=accounting,
        log_lines=log_lines(runtime, knobs, accounting),
    )
