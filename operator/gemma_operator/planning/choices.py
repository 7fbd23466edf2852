"""The planner's discrete choices: target, runtime, tensor-parallel degree. Each returns a choice or a refusal."""

from __future__ import annotations

from gemma_operator.api import Reason, RuntimeChoice, Target, TargetChoice
from gemma_operator.catalog import RuntimeFacts, Variant, runtimes
from gemma_operator.planning.result import Refused

TENSOR_PARALLEL_DEGREES = (1, 2, 4, 8)


def _unsatisfiable(message: str) -> Refused:
    return Refused.because(Reason.UNSATISFIABLE, message)


def choose_target(asked: TargetChoice, variant: Variant) -> Target | Refused:
    if asked is TargetChoice.AUTO:
        return variant.default_target
    target = Target(asked.value)
    if variant.gpu_only and target is not Target.GPU:
        return _unsatisfiable(
            f"{variant.label} runs on GPUs only; placement.target {target.value} cannot host it (use gpu or auto)"
        )
    return target


def auto_runtimes(variant: Variant, target: Target) -> tuple[RuntimeFacts, ...] | Refused:
    """The runtimes auto may pick for a variant on a target, in preference order (runtimes.yaml's)."""
    found = tuple(facts for facts in runtimes().values() if facts.auto_serves(variant.family, target))
    return found or _unsatisfiable(f"no runtime serves {variant.label} on {target.value} nodes")


def choose_runtime(asked: RuntimeChoice, variant: Variant, target: Target) -> RuntimeFacts | Refused:
    """The runtime asked for, or why it cannot serve the variant there (auto: auto_runtimes)."""
    known = runtimes()
    facts = next(f for f in known.values() if f.name.value == asked.value)
    if facts.can_serve(variant.family, target):
        return facts
    reason = (
        facts.unsupported_reason.get(variant.family)
        or f"it does not run {variant.family.value} on {target.value} nodes"
    )
    working = [f.name.value for f in known.values() if f.auto_serves(variant.family, target)]
    advice = f"; use runtime {working[0]} (or auto)" if working else ""
    return _unsatisfiable(
        f"runtime {facts.name.value} cannot serve {variant.label} on {target.value} nodes: {reason}{advice}"
    )


def divides_heads(degree: int, variant: Variant) -> bool:
    return all(count % degree == 0 for count in variant.attention.head_counts())


def tensor_parallel_candidates(asked: int, variant: Variant) -> tuple[int, ...] | Refused:
    """Degrees to try, smallest first: the one asked for, or every power of two that divides the heads."""
    if asked:
        if not divides_heads(asked, variant):
            heads = variant.attention.head_counts()
            return _unsatisfiable(
                f"gpusPerReplica {asked} does not divide {variant.label}'s head counts "
                f"({heads[0]} attention, {heads[1]} sliding KV, {heads[2]} global KV)"
            )
        return (asked,)
    return tuple(d for d in TENSOR_PARALLEL_DEGREES if divides_heads(d, variant))
