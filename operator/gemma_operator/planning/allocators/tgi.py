"""TGI's own KV-cache accounting: what its warmup sizes, what its router admits, and what it refuses at startup.

What TGI 3.3 does (the facts, with their upstream files, are in catalog/versions/tgi.yaml):

- Warmup (FlashCausalLM.warmup) runs one prefill of --max-batch-prefill-tokens, then takes the free memory
  less (1 - cuda_memory_fraction * wiggle room) of the GPU and divides it by one block of every layer:
  num_layers * BLOCK_SIZE * kv_heads_per_shard * head_dim * 2 (K and V) * dtype bytes. Every layer is stored
  at full length: Gemma 3's sliding-window layers write the same slots as its global layers (the window only
  limits the attention kernel, flash_gemma3_modeling.py), and Model.info sends window_size=None to the router,
  so neither the cache nor admission saves anything for sliding windows.
- The router's budget is max batch total tokens = blocks * BLOCK_SIZE (the minimum over the shards), logged
  as "Setting max batch total tokens to N".
- A request is admitted when blocks for input + max_new_tokens - 1 tokens are free, block 0 excepted. A
  sequence of context_tokens is charged context_tokens - 1 tokens at its largest. (The router admits long
  generations 1024 new tokens at a time and re-queues them, so the charge grows to that on the last leg.)

So the admission figure and the decode working set are the same number: steady_decode equals guaranteed.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from gemma_operator.catalog.facts import Attention, LayerShape
from gemma_operator.catalog.versions.tgi import System, TgiRules
from gemma_operator.planning.allocators.base import Knobs, KvAccounting


@dataclass(frozen=True)
class _Blocks:
    size: int  # tokens per block
    bytes: int  # one block of every layer, on one device


def _shape(attention: Attention) -> LayerShape:
    # TGI allocates one (kv_heads, head_dim) for every layer, from the text config.
    if attention.sliding != attention.global_:
        raise ValueError("TGI caches every layer with one shape; this model's sliding and global layers differ")
    return attention.global_


def _kv_heads_per_shard(attention: Attention, tensor_parallel: int) -> int:
    heads = _shape(attention).kv_heads
    if heads % tensor_parallel:
        raise ValueError(f"--num-shard {tensor_parallel} does not divide the {heads} KV heads")
    return heads // tensor_parallel


def bytes_per_token(
    attention: Attention, tensor_parallel: int, rules: TgiRules, kv_cache_dtype: str | None = None
) -> int:
    """The cache one token takes on each shard: every layer, K and V (FlashCausalLM.warmup, per BLOCK_SIZE)."""
    heads = _kv_heads_per_shard(attention, tensor_parallel)
    return attention.layers * heads * _shape(attention).head_dim * 2 * rules.kv_dtype_bytes(kv_cache_dtype)


def block_size(attention: Attention, rules: TgiRules, system: System = System.CUDA) -> int:
    """Tokens per cache block for this model on that build (the BLOCK_SIZE of the ATTENTION it resolves)."""
    return rules.block_size(_shape(attention).head_dim, system)


def _blocks(attention: Attention, knobs: Knobs, rules: TgiRules, system: System, kv_cache_dtype: str | None) -> _Blocks:
    size = block_size(attention, rules, system)
    return _Blocks(size, size * bytes_per_token(attention, knobs.tensor_parallel, rules, kv_cache_dtype))


def _sequence_blocks(knobs: Knobs, blocks: _Blocks, rules: TgiRules) -> int:
    if knobs.context_tokens < 2:
        raise ValueError("TGI needs max_total_tokens above max_input_tokens, so at least 2 tokens per request")
    return ceil((knobs.context_tokens + rules.admission.charge_offset_tokens) / blocks.size)


def account(
    attention: Attention,
    knobs: Knobs,
    pool_bytes_per_device: int,
    rules: TgiRules,
    *,
    system: System = System.CUDA,
    kv_cache_dtype: str | None = None,
) -> KvAccounting:
    """TGI's figures for a cache of pool_bytes_per_device on each shard (see pool_bytes).

    cache_tokens is the max batch total tokens TGI logs. guaranteed is the number of sequences of
    knobs.context_tokens its router admits at once; 0 when TGI would not start, because max_total_tokens or
    max_batch_prefill_tokens exceeds the cache (refusal gives the message it prints, and also the check of
    the prefill against the prompt, which does not depend on memory).
    """
    blocks = _blocks(attention, knobs, rules, system, kv_cache_dtype)
    count = max(0, pool_bytes_per_device) // blocks.bytes
    cache_tokens = count * blocks.size
    per_sequence = _sequence_blocks(knobs, blocks, rules)
    starts = knobs.context_tokens <= cache_tokens and knobs.prefill_chunk_tokens <= cache_tokens
    admitted = max(0, count - rules.admission.reserved_blocks) // per_sequence if starts else 0
    return KvAccounting(
        cache_tokens=cache_tokens,
        guaranteed=float(admitted),
        steady_decode=admitted,
        bytes_per_sequence=per_sequence * blocks.bytes,
    )


def pool_bytes_for(
    attention: Attention,
    knobs: Knobs,
    rules: TgiRules,
    *,
    system: System = System.CUDA,
    kv_cache_dtype: str | None = None,
) -> int:
    """The smallest cache per device with which TGI starts and admits knobs.sequences of knobs.context_tokens."""
    blocks = _blocks(attention, knobs, rules, system, kv_cache_dtype)
    needed = max(
        knobs.sequences * _sequence_blocks(knobs, blocks, rules) + rules.admission.reserved_blocks,
        ceil(knobs.context_tokens / blocks.size),
        ceil(knobs.prefill_chunk_tokens / blocks.size),
    )
    return needed * blocks.bytes


def pool_bytes(
    device_bytes: int,
    resident_bytes: int,
    rules: TgiRules,
    *,
    system: System = System.CUDA,
    cuda_memory_fraction: float | None = None,
    shards: int = 1,
) -> int:
    """The bytes TGI's warmup divides into cache blocks on one device (server/utils/import_utils.py get_*_free_memory).

    CUDA: device_bytes is the GPU's total memory, resident_bytes what is in use on it after the warmup prefill
    apart from the warmup's own cache blocks (weights, CUDA context, the caching allocator's reserve left by
    the prefill's activations); TGI keeps (1 - fraction * wiggle room) of the GPU back.
    intel-cpu: device_bytes is the RAM available before TGI starts and resident_bytes what TGI holds of it
    after the prefill; TGI takes 95% of what is left, split over the shards, and ignores the fraction.
    """
    if system is System.INTEL_CPU:
        return max(0, int((device_bytes - resident_bytes) * rules.memory.cpu_available_share / shards))
    fraction = rules.memory.default_cuda_memory_fraction if cuda_memory_fraction is None else cuda_memory_fraction
    return max(0, int(device_bytes * fraction * rules.memory.wiggle_room) - resident_bytes)


def refusal(knobs: Knobs, cache_tokens: int, prefill_chunking: bool, rules: TgiRules) -> str | None:
    """The error TGI stops with at startup for these knobs and this cache, in its own words; None when it starts.

    max_input_tokens is taken as context_tokens - 1, as the plan sets it (and as TGI defaults it).
    prefill_chunking: rules.prefill_chunking(model_type(variant)); without it a prompt must fit one prefill.
    """
    max_input_tokens = knobs.context_tokens - 1
    prefill = knobs.prefill_chunk_tokens
    if knobs.context_tokens > cache_tokens:
        return rules.refusals.not_enough_memory.format(max_total_tokens=knobs.context_tokens)
    if not prefill_chunking and prefill < max_input_tokens:
        return rules.refusals.prefill_below_input.format(
            max_batch_prefill_tokens=prefill, max_input_tokens=max_input_tokens
        )
    if prefill > cache_tokens:
        return rules.refusals.prefill_above_total.format(
            max_batch_prefill_tokens=prefill, max_batch_total_tokens=cache_tokens
        )
    return None


def log_lines(accounting: KvAccounting, block_tokens: int, rules: TgiRules) -> tuple[str, str]:
    """The two lines TGI prints about its cache: the shard's block count and the router's token budget."""
    return (
        rules.log_lines.kv_cache_blocks.format(blocks=accounting.cache_tokens // block_tokens, block_size=block_tokens),
        rules.log_lines.max_batch_total_tokens.format(tokens=accounting.cache_tokens),
    )
