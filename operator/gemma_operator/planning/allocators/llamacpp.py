"""llama.cpp's KV cache, as llama-server allocates it for a sliding-window (iSWA) model such as Gemma.

llama-server allocates everything at start: -np slots, each with its own stream of cells (the plan passes -np, so
the cache is not unified, the default: catalog/versions/llamacpp.yaml kvUnifiedDefault), and two caches
(src/llama-kv-cache-iswa.cpp, llama_kv_cache_iswa::llama_kv_cache_iswa):

- the non-SWA cache, for the global layers: n_ctx_seq cells per stream, where -c is padded to 256 and split
  evenly over the slots, each share padded to 256 again (src/llama-context.cpp, llama_context::llama_context);
- the SWA cache, for the sliding layers: window + n_ubatch cells per stream, at most n_ctx_seq, padded to 256
  (n_ubatch = min(-ub, -b, -c): the same constructor).

Each layer that owns a cache gets a K and a V tensor of kv_heads * head_dim f16 values per cell and stream
(src/llama-kv-cache.cpp, llama_kv_cache::llama_kv_cache): Gemma 4's K=V layers too, and its shared-KV layers
get none. The sum is what llama-server logs as "llama_kv_cache: size = ... MiB (N cells, L layers, S/S seqs),
K (f16): ..., V (f16): ...", once per cache.

For sliding-window models the server also keeps context checkpoints in host RAM, --ctx-checkpoints per slot
(tools/server/server-context.cpp, create_checkpoint): each one the slot's SWA cache state, the cells of its last
window (src/llama-kv-cache.cpp, llama_kv_cache::state_write: SWA-masked cells are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.catalog.facts import Attention, LayerShape
from gemma_operator.catalog.versions.llamacpp import LlamaCppRules
from gemma_operator.planning.allocators.base import Knobs, KvAccounting


def _pad(value: int, multiple: int) -> int:
    """GGML_PAD: value rounded up to a multiple."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class CacheSize:
    """One of the two caches, as its llama_kv_cache log line reports it."""

    cells: int  # per stream
    layers: int
    streams: int
    k_bytes: int
    v_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.k_bytes + self.v_bytes


@dataclass(frozen=True)
class CacheLayout:
    """What llama-server's llama_context and llama_kv_cache lines log for a model and the plan's knobs."""

    context_tokens: int  # n_ctx: -c as padded, every slot's cells together
    slot_tokens: int  # n_ctx_seq: each slot's share
    ubatch_tokens: int  # n_ubatch
    full: CacheSize  # the non-SWA cache (global layers)
    sliding: CacheSize  # the SWA cache

    @property
    def total_bytes(self) -> int:
        return self.full.total_bytes + self.sliding.total_bytes


def _row_bytes(shape: LayerShape, rules: LlamaCppRules) -> int:
    """One cell of one layer's K (or V) tensor."""
    return shape.kv_heads * shape.head_dim * rules.kv_element_bytes.value


def _cache(cells: int, layers: int, shape: LayerShape, streams: int, rules: LlamaCppRules) -> CacheSize:
    row_bytes = layers * cells * streams * _row_bytes(shape, rules)
    return CacheSize(cells=cells, layers=layers, streams=streams, k_bytes=row_bytes, v_bytes=row_bytes)


def layout(attention: Attention, knobs: Knobs, rules: LlamaCppRules) -> CacheLayout:
    """The caches llama-server allocates for -c context*sequences, -np sequences, -ub prefill_chunk_tokens."""
    if knobs.tensor_parallel != 1:
        raise ValueError(f"llama.cpp on CPU shards nothing: tensor_parallel must be 1, not {knobs.tensor_parallel}")
    slots = knobs.sequences
    requested = knobs.context_tokens * slots  # -c
    pad = rules.context_pad_tokens.value
    slot_tokens = _pad(_pad(requested, pad) // slots, pad)
    ubatch = min(knobs.prefill_chunk_tokens, rules.default_batch_tokens.value, requested)
    sliding_cells = _pad(min(slot_tokens, attention.sliding_window + ubatch), rules.sliding_pad_tokens.value)
    sliding_layers, global_layers = attention.cache_owning_layers()
    return CacheLayout(
        context_tokens=slot_tokens * slots,
        slot_tokens=slot_tokens,
        ubatch_tokens=ubatch,
        full=_cache(slot_tokens, global_layers, attention.global_, slots, rules),
        sliding=_cache(sliding_cells, sliding_layers, attention.sliding, slots, rules),
    )


def kv_cache_bytes(attention: Attention, knobs: Knobs, rules: LlamaCppRules) -> int:
    """Exactly what llama-server allocates for the KV cache: the sum of the K and V sizes it logs."""
    return layout(attention, knobs, rules).total_bytes


def _one_checkpoint_bytes(attention: Attention, knobs: Knobs, rules: LlamaCppRules) -> int:
    """One slot's checkpoint at its largest: the SWA cache state of its last window
    (src/llama-kv-cache-iswa.cpp, llama_kv_cache_iswa::state_write with LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY writes
    the SWA cache only; src/llama-kv-cache.cpp, state_write, state_write_meta, state_write_data)."""
    sliding_layers, _ = attention.cache_owning_layers()
    # A slot takes prompts up to its padded share of -c, so its last window may be that long.
    cells = min(attention.sliding_window, layout(attention, knobs, rules).slot_tokens)
    # Headers: the stream count, a cell count per stream, the v_trans flag and layer count, and per K and per V
    # tensor its type (int32) and row size (uint64).
    headers = 4 + 4 * knobs.sequences + 8 + sliding_layers * 2 * (4 + 8)
    cell_bytes = rules.checkpoint_cell_meta_bytes.value + sliding_layers * 2 * _row_bytes(attention.sliding, rules)
    return headers + cells * cell_bytes


def checkpoint_bytes(attention: Attention, knobs: Knobs, rules: LlamaCppRules, checkpoints: int) -> int:
    """Host RAM the slots' context checkpoints can hold: `checkpoints` (--ctx-checkpoints) per slot, each at its
    largest. Saved prompts in the prompt cache (--cache-ram) come on top, up to that limit."""
    return knobs.sequences * checkpoints * _one_checkpoint_bytes(attention, knobs, rules)


def _slot_bytes(attention: Attention, knobs: Knobs, rules: LlamaCppRules, checkpoints: int | None) -> int:
    """One slot's stream of both caches and its checkpoints (every slot's stream is the same size)."""
    kept = rules.ctx_checkpoints_default.value if checkpoints is None else checkpoints
    stream = kv_cache_bytes(attention, knobs, rules) // knobs.sequences
    return stream + kept * _one_checkpoint_bytes(attention, knobs, rules)


def pool_bytes_for(attention: Attention, knobs: Knobs, rules: LlamaCppRules, checkpoints: int | None = None) -> int:
    """Node RAM the KV cache and the slots' checkpoints need, so that all -np slots run at the plan's context.

    checkpoints: --ctx-checkpoints as the plan passes it; None when it passes none (the build's default)."""
    return knobs.sequences * _slot_bytes(attention, knobs, rules, checkpoints)


def _decode_working_set(attention: Attention, knobs: Knobs, rules: LlamaCppRules) -> int:
    """One sequence's K and V at its full context: global layers over the context, sliding ones over the window."""
    sliding_layers, global_layers = attention.cache_owning_layers()
    context = knobs.context_tokens
    global_bytes = global_layers * _row_bytes(attention.global_, rules) * context
    sliding_bytes = sliding_layers * _row_bytes(attention.sliding, rules) * min(attention.sliding_window, context)
    return 2 * (global_bytes + sliding_bytes)


def account(
    attention: Attention, knobs: Knobs, pool_bytes: int, rules: LlamaCppRules, checkpoints: int | None = None
) -> KvAccounting:
    """llama.cpp's own accounting for the plan's knobs, given pool_bytes of node RAM for the cache.

    llama-server allocates every slot's cells at start, so `guaranteed` is the number of slots whose stream (and
    checkpoints) fit the pool, at most -np; it never admits more than -np sequences. cache_tokens is its n_ctx.
    """
    slot_bytes = _slot_bytes(attention, knobs, rules, checkpoints)
    working_set = _decode_working_set(attention, knobs, rules)
    return KvAccounting(
        cache_tokens=layout(attention, knobs, rules).context_tokens,
        guaranteed=float(min(knobs.sequences, max(pool_bytes, 0) // slot_bytes)),
        steady_decode=min(knobs.sequences, max(pool_bytes, 0) // working_set),
        bytes_per_sequence=slot_bytes,
    )
