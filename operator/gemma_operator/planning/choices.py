"""The planner's discrete choices: target, runtime, tensor-parallel degree. Each returns a choice or a refusal."""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import RuntimeChoice, Target, TargetChoice
from gemma_operator.catalog import RuntimeFacts, Variant, runtimes

TENSOR_PARALLEL_DEGREES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Refusal:
    """A request that cannot be served as asked, and what to do about it."""

    message: str


def choose_target(asked: TargetChoice, variant: Variant) -> Target | Refusal:
    if asked is TargetChoice.AUTO:
        return variant.default_target
    target = Target(asked.value)
    if variant.gpu_only and target is not Target.GPU:
        return Refusal(
            f"{variant.label} runs on GPUs only; placement.target {target.value} cannot host it (use gpu or auto)"
        )
    return target


def choose_runtime(asked: RuntimeChoice, variant: Variant, target: Target) -> RuntimeFacts | Refusal:
    """API.md's rule for auto (TGI where it can, else vLLM on GPU, else llama.cpp), or the runtime asked for."""
    known = runtimes()
    if asked is RuntimeChoice.AUTO:
        for facts in known.values():
            if facts.auto_serves(variant.family, target):
                return facts
        return Refusal(f"no runtime serves {variant.label} on {target.value} nodes")
    facts = next(f for f in known.values() if f.name.value == asked.value)
    if facts.can_serve(variant.family, target):
        return facts
    reason = (
        facts.unsupported_reason.get(variant.family)
        or f"it does not run {variant.family.value} on {target.value} nodes"
    )
    working = [f.name.value for f in known.values() if f.auto_serves(variant.family, target)]
    advice = f"; use runtime {working[0]} (or auto)" if working else ""
    return Refusal(f"runtime {facts.name.value} cannot serve {variant.label} on {target.value} nodes: {reason}{advice}")


def divides_heads(degree: int, variant: Variant) -> bool:
    return all(count % degree == 0 for count in variant.attention.head_counts())


def tensor_parallel_candidates(asked: int, variant: Variant) -> tuple[int, ...] | Refusal:
    """Degrees to try, smallest first: the one asked for, or every power of two that divides the heads."""
    if asked:
        if not divides_heads(asked, variant):
            heads = variant.attention.head_counts()
            return Refusal(
                f"gpusPerReplica {asked} does not divide {variant.label}'s head counts "
                f"({heads[0]} attention, {heads[1]} sliding KV, {heads[2]} global KV)"
            )
        return (asked,)
    return tuple(d for d in TENSOR_PARALLEL_DEGREES if divides_heads(d, variant))
