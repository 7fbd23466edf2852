"""The token-level serving model: one replica's step time from a roofline of its accelerator, and its startup.

A continuous-batching runtime (vLLM's scheduler, TGI's router, llama-server's slots) runs one forward pass per
step over every sequence in the batch: each decoding sequence gains a token, and prefill advances by what is
left of the step's token budget (the plan's prefill chunk, decode tokens first, as vLLM's chunked prefill does).
A step reads the weights once and each sequence's KV cache once, and does 2 FLOPs per active parameter per
token. Its time is the larger of the two bounds, at a calibrated fraction of the datasheet peaks:

    step = max(bytes read / (bandwidth x efficiency), FLOPs / (peak FLOPs x efficiency))

A mixture-of-experts layer reads only the experts its tokens are routed to; with `active` of `count` experts per
token, uniform routing touches count x (1 - (1 - active/count)^tokens) of them (the expected number of distinct
experts), so a batch of one reads 1/16 of 26B-A4B's experts and a batch of 64 nearly all.

Calibration (tests/unit/test_autoscaling_serving.py reproduces both within CALIBRATION_TOLERANCE):
- Gemma-4-26B-A4B-it BF16 on vLLM v0.23.0, DGX Spark (GB10), 10 concurrent chat users: 11.47 tokens/s per user
  (https://djangodevreng.nl/en/arena/gemma-4-26b-a4b-it-bf16-v23/).
- Gemma-4-31B-it FP8 on vLLM 0.20, one RTX PRO 6000 Blackwell, 24 concurrent ShareGPT requests: ~548 output
  tokens/s (https://blog.hexgrid.cloud/gemma-4-31b-vllm-on-rtx-6000-pro-1-17k-tokens-sec-and-still-asking-for-more).
Startup: engine initialisation (profiling, torch.compile, CUDA graphs) plus the weights at a stated load
bandwidth, both from the vLLM startup log of Gemma-4-26B-A4B-it FP8 on an H200 NVL published with
https://huggingface.co/LargitData/gemma-4-26b-a4b-it-fp8: weights loaded in 15.76 s, loading done at 16.88 s,
/v1/models ready at about 153 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gemma_operator.api import Family, InvalidSpec, Precision, parse_deployment
from gemma_operator.catalog import (
    AcceleratorClasses,
    AcceleratorPerformance,
    Attention,
    TensorGroup,
    Variant,
    accelerator_performance,
    default_accelerator_classes,
    lookup,
)
from gemma_operator.planning import Plan, Refused, plan
from gemma_operator.planning.memory import KV_BYTES_PER_VALUE
from gemma_operator.planning.sizing import GIB
from gemma_operator.planning.weights import WeightBreakdown, weights

# Fractions of the datasheet peaks a serving step reaches, fitted to the two calibration points above.
MEMORY_EFFICIENCY = 0.85
COMPUTE_EFFICIENCY = 0.5
CALIBRATION_TOLERANCE = 0.25
# Per step: the scheduler, sampling and the kernel launches CUDA graphs leave (vLLM at batch 1 on an H100 runs
# a few hundred microseconds above the weight-read time).
STEP_OVERHEAD_SECONDS = 0.0005
# From the H200 NVL log: what is not weight loading (153 - 16.88 s), and the FP8 checkpoint's bytes over 15.76 s.
ENGINE_INIT_SECONDS = 136.0
LOAD_BYTES_PER_SECOND = 1.65e9
# Groups a forward pass reads in full; the experts it reads in part. Per-layer embeddings are looked up (one row
# per token), the KV-shared projections are never read, the towers only for images and audio.
READ_EVERY_STEP = frozenset({TensorGroup.TOKEN_EMBEDDINGS, TensorGroup.LINEAR, TensorGroup.OTHER, TensorGroup.V_COPY})


@dataclass(frozen=True)
class Roofline:
    """What bounds one replica's step: its weights, its attention layout and its accelerators' peaks."""

    dense_bytes: float
    expert_bytes: float
    experts: int
    active_experts: int
    active_parameters: float
    # KV-cache bytes a decode step reads per token of context: in the sliding layers (up to their window), and
    # in the global ones.
    sliding_kv_bytes: float
    sliding_window: int
    global_kv_bytes: float
    bytes_per_second: float
    flops_per_second: float

    @classmethod
    def of(
        cls, variant: Variant, breakdown: WeightBreakdown, performance: AcceleratorPerformance, devices: int
    ) -> Roofline:
        experts = variant.experts
        sliding, global_kv = _kv_bytes_per_token(variant.attention)
        return cls(
            dense_bytes=sum(group.bytes for group in breakdown.groups if group.group in READ_EVERY_STEP),
            expert_bytes=breakdown.bytes_of(TensorGroup.EXPERTS),
            experts=experts.count if experts else 1,
            active_experts=experts.active if experts else 1,
            active_parameters=variant.active_parameters or variant.tensors.linear + variant.tensors.token_embeddings,
            sliding_kv_bytes=sliding,
            sliding_window=variant.attention.sliding_window,
            global_kv_bytes=global_kv,
            bytes_per_second=performance.bytes_per_second * devices * MEMORY_EFFICIENCY,
            flops_per_second=performance.flops_per_second * devices * COMPUTE_EFFICIENCY,
        )

    def weights_read(self, tokens: int) -> float:
        """Weight bytes one step over `tokens` tokens reads: the dense part, and the experts routed to."""
        untouched = (1 - self.active_experts / self.experts) ** tokens
        return self.dense_bytes + self.expert_bytes * (1 - untouched)

    def kv_read(self, contexts: Sequence[float]) -> float:
        """KV-cache bytes one decode step of sequences at `contexts` tokens reads."""
        window = self.sliding_window
        return self.sliding_kv_bytes * sum(c if c < window else window for c in contexts) + self.global_kv_bytes * sum(
            contexts
        )

    def step_seconds(self, contexts: Sequence[float], prefill_tokens: float) -> float:
        """One step: each of `contexts` (the decoding sequences' lengths) gains a token, `prefill_tokens` prefill."""
        tokens = len(contexts) + prefill_tokens
        if tokens == 0:
            return 0.0
        read = self.weights_read(math.ceil(tokens)) + self.kv_read(contexts)
        compute = 2 * self.active_parameters * tokens
        return STEP_OVERHEAD_SECONDS + max(read / self.bytes_per_second, compute / self.flops_per_second)


def _kv_bytes_per_token(attention: Attention) -> tuple[float, float]:
    """Bytes of K and V per token over the cache-owning sliding layers, and over the global ones (K=V: one)."""
    sliding, global_ = attention.cache_owning_layers()
    per_sliding = 2 * attention.sliding.kv_heads * attention.sliding.head_dim
    per_global = (1 if attention.global_k_equals_v else 2) * attention.global_.kv_heads * attention.global_.head_dim
    return KV_BYTES_PER_VALUE * sliding * per_sliding, KV_BYTES_PER_VALUE * global_ * per_global


def startup_seconds(weight_bytes: float) -> float:
    """Seconds from a pod's creation to its readiness: engine initialisation and the weights at the load rate."""
    return ENGINE_INIT_SECONDS + weight_bytes / LOAD_BYTES_PER_SECOND


# The context the step curve the operator's policy uses is taken at: it cannot know the traffic's lengths, and
# at the sliding window's 1024 tokens the KV read is a small part of a step.
REFERENCE_CONTEXT_TOKENS = 1024


def batch_step_seconds(roofline: Roofline, max_batch: int) -> tuple[float, ...]:
    """A decode step's seconds at batches of 1 to `max_batch` sequences of REFERENCE_CONTEXT_TOKENS."""
    return tuple(roofline.step_seconds([REFERENCE_CONTEXT_TOKENS] * batch, 0) for batch in range(1, max_batch + 1))


def plan_roofline(variant: Variant, precision: Precision, result: Plan, classes: AcceleratorClasses) -> Roofline | None:
    """The roofline of a planned replica; None off GPUs, or on a GPU whose peaks the catalog lacks."""
    accelerator = classes.classes.get(result.placement.accelerator_class)
    performance = accelerator_performance().get(accelerator.product) if accelerator else None
    if performance is None or result.placement.gpus_per_replica < 1:
        return None
    breakdown = weights(variant, precision, result.runtime.name, result.runtime.version, vision=False, audio=False)
    return Roofline.of(variant, breakdown, performance, result.placement.gpus_per_replica)


class NotServable(ValueError):
    """A model and accelerator the simulation cannot serve: the plan refuses it, or the roofline lacks facts."""


@dataclass(frozen=True)
class Serving:
    """One replica as the plan makes it: its batch, prefill budget, context limit, roofline and startup."""

    label: str
    max_batch: int
    prefill_budget: int
    max_tokens: int
    roofline: Roofline
    startup_seconds: float
    # The tokens its KV cache holds (the plan's concurrency.cacheTokens): what a KV-cache usage is a share of.
    cache_tokens: int
    # The plan's placement.gpusPerReplica: what one replica holds, and what a replica-hour costs in GPU-hours.
    gpus_per_replica: int


def serving_for(
    variant: str, precision: Precision, accelerator: str, context_tokens: int, sequences: int | None
) -> Serving:
    """The replica the planner makes for a GemmaDeployment of `variant` at `precision` on `accelerator`.

    `sequences` None asks for the most sequences the plan fits at `context_tokens` (its fitsUpTo); the batch is
    the runtime's sequence limit the plan sets, at most the concurrency its KV cache guarantees.
    """
    classes = default_accelerator_classes()
    if accelerator not in classes.classes:
        raise NotServable(f"accelerator {accelerator!r} is not a class of accelerators.yaml")
    performance = accelerator_performance().get(classes.classes[accelerator].product)
    if performance is None:
        raise NotServable(f"accelerator_performance.yaml has no peaks for {classes.classes[accelerator].product}")
    first = _planned(variant, precision, accelerator, context_tokens, sequences or 1)
    result = (
        first
        if sequences
        else _planned(variant, precision, accelerator, context_tokens, first.fits_up_to.concurrent_sequences)
    )
    model = lookup(Family.GEMMA_4, variant)
    roofline = plan_roofline(model, precision, result, classes)
    if roofline is None:
        raise NotServable(f"{variant} on {accelerator} is not planned on GPUs")
    batch = max(1, min(result.fits_up_to.concurrent_sequences, math.floor(result.concurrency.guaranteed)))
    runtime = f"{result.runtime.name.value} {result.runtime.version}"
    return Serving(
        label=f"{model.label} {precision.value} on {accelerator} ({runtime})",
        max_batch=min(batch, sequences) if sequences else batch,
        prefill_budget=result.runtime.prefill_chunk_tokens,
        max_tokens=context_tokens,
        roofline=roofline,
        startup_seconds=startup_seconds(result.memory.weights_gi_b * GIB),
        cache_tokens=result.concurrency.cache_tokens,
        gpus_per_replica=result.placement.gpus_per_replica,
    )


def _planned(variant: str, precision: Precision, accelerator: str, context_tokens: int, sequences: int) -> Plan:
    document = {
        "apiVersion": "serving.gemma.dev/v1alpha1",
        "kind": "GemmaDeployment",
        "metadata": {"name": "simulated", "namespace": "default"},
        "spec": {
            "model": {"family": Family.GEMMA_4.value, "variant": variant, "precision": precision.value},
            "serving": {"maxContextTokens": context_tokens, "maxConcurrentSequences": sequences},
            "placement": {"acceleratorClass": accelerator},
        },
    }
    try:
        result = plan(parse_deployment(document), default_accelerator_classes())
    except InvalidSpec as error:
        raise NotServable(str(error)) from None
    if isinstance(result, Refused):
        raise NotServable(f"the plan refuses {variant} {precision.value} on {accelerator}: {result.message}")
    return result
