"""vLLM's KV cache allocator at a release: groups, pages, the per-request charge and the figures it logs.

The steps follow vLLM's own (see catalog/versions/vllm.yaml for the file and function of each):
every cache-owning layer gets a spec (sliding window or full attention) with its KV heads per rank;
pages are unified to the largest by scaling the smaller pages' block size; layers are split into
groups of equal size, and the pool is cut into blocks of one page per layer of a group. A request
of max_model_len is charged its full context on full-attention groups and the window plus the
tokens in flight on sliding groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Literal

from gemma_operator.catalog.facts import Attention
from gemma_operator.catalog.versions.vllm import VllmRules
from gemma_operator.planning.allocators.base import Knobs, KvAccounting


@dataclass(frozen=True)
class KvCacheGroup:
    """One of vLLM's KV cache groups: layers of one attention type sharing a block table."""

    attention: Literal["sliding", "full"]
    layers: int
    block_tokens: int
    window: int | None


@dataclass(frozen=True)
class _Layout:
    groups: tuple[KvCacheGroup, ...]
    page_bytes: int
    group_size: int

    @property
    def block_bytes(self) -> int:
        """One block across the pool: a page for each layer slot of a group (padding slots included)."""
        return self.page_bytes * self.group_size


def _kv_heads_per_rank(kv_heads: int, tensor_parallel: int) -> int:
    if kv_heads >= tensor_parallel:
        if kv_heads % tensor_parallel:
            raise ValueError(f"tensor parallel {tensor_parallel} does not divide {kv_heads} KV heads")
    elif tensor_parallel % kv_heads:
        raise ValueError(f"tensor parallel {tensor_parallel} is not a multiple of {kv_heads} KV heads")
    return max(1, kv_heads // tensor_parallel)


def _layout(attention: Attention, tensor_parallel: int, rules: VllmRules, kv_cache_dtype: str) -> _Layout:
    if tensor_parallel < 1 or attention.attention_heads % tensor_parallel:
        raise ValueError(
            f"tensor parallel {tensor_parallel} does not divide {attention.attention_heads} attention heads"
        )
    value_bytes = rules.cache_dtype_bytes.values.get(kv_cache_dtype)
    if value_bytes is None:
        raise ValueError(f"vLLM {rules.version}: unknown --kv-cache-dtype {kv_cache_dtype!r}")
    sliding_layers, full_layers = attention.cache_owning_layers()
    block = rules.block_size.tokens

    def page(kv_heads: int, head_dim: int, v_is_k: bool) -> int:
        slots = 1 if v_is_k and not rules.k_equals_v.separate_v_slot else 2
        return block * _kv_heads_per_rank(kv_heads, tensor_parallel) * head_dim * slots * value_bytes

    kinds: list[tuple[Literal["sliding", "full"], int, int]] = [
        ("sliding", sliding_layers, page(attention.sliding.kv_heads, attention.sliding.head_dim, False)),
        (
            "full",
            full_layers,
            page(attention.global_.kv_heads, attention.global_.head_dim, attention.global_k_equals_v),
        ),
    ]
    buckets = [bucket for bucket in kinds if bucket[1] > 0]
    page_bytes = max(bucket_page for _, _, bucket_page in buckets)
    counts = [count for _, count, _ in buckets]
    group_size = min(counts)
    if max(counts) < min(counts) * rules.grouping.close_counts_ratio:
        group_size = max(counts)
    groups: list[KvCacheGroup] = []
    for kind, count, bucket_page in buckets:
        if page_bytes % bucket_page == 0:
            block_tokens = block * (page_bytes // bucket_page)
        elif rules.page_unification.pads_indivisible_pages:
            block_tokens = block
        else:
            raise ValueError(f"vLLM {rules.version}: pages of {bucket_page} bytes do not divide {page_bytes}")
        window = attention.sliding_window if kind == "sliding" else None
        splits = ceil(count / group_size)
        # vLLM deals a bucket's layers round-robin (layers[i::splits]); the short groups are padded.
        groups += [KvCacheGroup(kind, len(range(i, count, splits)), block_tokens, window) for i in range(splits)]
    return _Layout(tuple(groups), page_bytes, group_size)


def kv_cache_groups(
    attention: Attention, tensor_parallel: int, rules: VllmRules, kv_cache_dtype: str = "auto"
) -> tuple[KvCacheGroup, ...]:
    """The KV cache groups vLLM forms for a model, with each group's block size after page unification."""
    return _layout(attention, tensor_parallel, rules, kv_cache_dtype).groups


def _charged_blocks(group: KvCacheGroup, knobs: Knobs, rules: VllmRules) -> int:
    """Blocks vLLM charges one request of knobs.context_tokens in this group (max_memory_usage_bytes / page)."""
    if group.window is None:
        return ceil(knobs.context_tokens / group.block_tokens)
    in_flight = rules.sliding_charge.concurrent_batches * knobs.prefill_chunk_tokens
    held = min(group.window - 1 + in_flight, knobs.context_tokens)
    # One more block: the window need not start on a block boundary.
    return ceil(held / group.block_tokens) + 1


def _decode_blocks(group: KvCacheGroup, knobs: Knobs) -> int:
    """Blocks one decoding sequence holds: the whole context on full layers, the window on sliding ones."""
    whole = ceil(knobs.context_tokens / group.block_tokens)
    if group.window is None:
        return whole
    return min(ceil(group.window / group.block_tokens) + 1, whole)


def account(
    attention: Attention,
    knobs: Knobs,
    pool_bytes_per_device: int,
    rules: VllmRules,
    kv_cache_dtype: str = "auto",
) -> KvAccounting:
    """vLLM's own accounting of a KV cache pool (the memory it logs as "Available KV cache memory", per GPU).

    cache_tokens and guaranteed are the "GPU KV cache size: N tokens" and "Maximum concurrency for M
    tokens per request: X" vLLM logs for --max-model-len knobs.context_tokens and
    --max-num-batched-tokens knobs.prefill_chunk_tokens.
    """
    layout = _layout(attention, knobs.tensor_parallel, rules, kv_cache_dtype)
    num_blocks = max(pool_bytes_per_device, 0) // layout.block_bytes
    charged = sum(_charged_blocks(group, knobs, rules) for group in layout.groups)
    guaranteed = num_blocks / charged
    if rules.logged_tokens.formula == "blocks-per-group":
        cache_tokens = num_blocks // len(layout.groups) * min(group.block_tokens for group in layout.groups)
    else:
        cache_tokens = int(guaranteed * knobs.context_tokens)
    # The block pool holds one null block back from every allocation.
    usable = max(num_blocks - 1, 0)
    steady = usable // sum(_decode_blocks(group, knobs) for group in layout.groups)
    return KvAccounting(
        cache_tokens=cache_tokens,
        guaranteed=guaranteed,
        steady_decode=steady,
        bytes_per_sequence=charged * layout.block_bytes,
    )


def pool_bytes_for(attention: Attention, knobs: Knobs, rules: VllmRules, kv_cache_dtype: str = "auto") -> int:
    """The smallest pool per GPU whose logged concurrency is at least knobs.sequences and that vLLM starts with."""
    layout = _layout(attention, knobs.tensor_parallel, rules, kv_cache_dtype)
    charged = sum(_charged_blocks(group, knobs, rules) for group in layout.groups)
    starts = charged + (1 if rules.fit_check.reserves_null_block else 0)
    return max(knobs.sequences * charged, starts) * layout.block_bytes


def _batch_tier(rules: VllmRules, device_memory_gib: float, product: str) -> tuple[int, int]:
    name = product.lower()
    for tier in rules.batch_defaults.tiers:
        if device_memory_gib >= tier.min_memory_gi_b and not any(word in name for word in tier.excluded_products):
            return tier.max_num_batched_tokens, tier.max_num_seqs
    otherwise = rules.batch_defaults.otherwise
    return otherwise.max_num_batched_tokens, otherwise.max_num_seqs


def default_batched_tokens(rules: VllmRules, device_memory_gib: float, product: str) -> int:
    """The --max-num-batched-tokens the OpenAI server picks on a GPU of this total memory and product name.

    (vLLM also caps it at max_num_seqs * max_model_len, which only binds for contexts under a few tokens.)
    """
    return _batch_tier(rules, device_memory_gib, product)[0]


def default_max_sequences(rules: VllmRules, device_memory_gib: float, product: str) -> int:
    """The --max-num-seqs the OpenAI server picks on that GPU (before its cap at max_num_batched_tokens)."""
    return _batch_tier(rules, device_memory_gib, product)[1]
