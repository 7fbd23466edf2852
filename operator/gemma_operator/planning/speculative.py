"""Speculative decoding (spec.serving.speculative): what each runtime drafts with, and where it cannot.

mtp runs the variant's Gemma 4 assistant checkpoint (catalog/models.yaml `assistant`) as vLLM's
Gemma4MTPModel. Its layers own no KV cache: vLLM's proposer points each at a target layer
(v1/spec_decode/gemma4.py, kv_sharing_target_layer_name) and GPUModelRunner.get_kv_cache_spec skips
them, so the plan adds its weights and nothing to the cache pool. A single-module drafter keeps no extra
sliding-window tokens (v1/core/kv_cache_planning.py: extra_retained_tokens = num_prefill_lookahead_tokens
- 1 = 0, config/vllm.py). ngram drafts from the prompt and holds nothing.
"""

from __future__ import annotations

from gemma_operator.api import Runtime, SpeculativeMethod, SpeculativeSpec
from gemma_operator.catalog import Variant

# Defaults where spec.serving.speculative.tokens is empty: the examples of vLLM's docs
# (docs.vllm.ai features/speculative_decoding/mtp: Gemma 4 assistant, num_speculative_tokens 1;
# features/speculative_decoding/n_gram: num_speculative_tokens 5, prompt_lookup_max 4).
DEFAULT_TOKENS = {SpeculativeMethod.MTP: 1, SpeculativeMethod.NGRAM: 5}
# The n-gram matched against the prompt: vLLM prompt_lookup_max (prompt_lookup_min defaults to it,
# vllm/config/speculative.py SpeculativeConfig.__post_init__); llama.cpp --spec-ngram-simple-size-n.
NGRAM_LOOKUP_TOKENS = 4
FIELD = "spec.serving.speculative"
# The architecture a vLLM release must have for mtp (model_executor/models/registry.py).
MTP_ARCHITECTURE = "Gemma4MTPModel"


def tokens(spec: SpeculativeSpec) -> int:
    """Tokens drafted per step: the spec's, or the method's default."""
    return spec.tokens if spec.tokens is not None else DEFAULT_TOKENS.get(spec.method, 0)


def refusal(
    spec: SpeculativeSpec, variant: Variant, runtime: Runtime, version: str, architectures: tuple[str, ...]
) -> str | None:
    """Why `runtime` at `version` cannot draft as asked for `variant`; None when it can.

    architectures: the model classes the release registers (vLLM's support.architectures; empty elsewhere).
    """
    if spec.method is not SpeculativeMethod.MTP:
        return None
    if variant.assistant is None:
        return f"{FIELD}.method mtp: {variant.label} has no MTP assistant checkpoint in the catalog; use ngram or none"
    repository = variant.assistant.repository
    if runtime is Runtime.VLLM and MTP_ARCHITECTURE not in architectures:
        return (
            f"{FIELD}.method mtp: vLLM {version} has no {MTP_ARCHITECTURE} (model_executor/models/registry.py), so "
            f"it cannot run {repository}; use an image of vLLM 0.33.0 or later, or method ngram"
        )
    if runtime is not Runtime.VLLM:
        return (
            f"{FIELD}.method mtp: {runtime.value} {version} would need a build of {repository} it can load, and the "
            "catalog has none; use runtime vllm, or method ngram"
        )
    return None
