"""Memory a replica needs: KV cache and runtime overhead, in GiB (weights: planning/weights.py).

The KV cache is sized per layer type, as the runtimes allocate it:
- sliding-window layers hold at most `window` tokens of each sequence;
- global layers hold the whole context, with their own (fewer, wider) KV heads;
- Gemma 4's global layers keep K and V as one tensor, but vLLM and llama.cpp still
  allocate two slots for them (runtimes.yaml: allocatesSharedKVTwice);
- the E-models' last layers reuse an earlier layer's cache and hold nothing.
The cache is kept in bf16 (2 bytes a value) on every runtime.
"""

from __future__ import annotations

from gemma_operator.api import Target
from gemma_operator.catalog import Attention, RuntimeFacts, Variant

GIB = 1 << 30
KV_BYTES_PER_VALUE = 2

# The overhead model. On a GPU, per GPU:
# - CUDA context, cuBLAS and NCCL workspaces: about 1 GiB;
# - CUDA graphs captured for decode batch sizes: about 0.5 GiB;
# - activations of one forward pass: tokens in flight x hidden size x 2 bytes x 16, the
#   factor covering the gated MLP's intermediate tensors, attention scratch and residuals.
# On a CPU node: the server process and its compute buffers, about 0.75 GiB, plus the
# same activation term.
GPU_FIXED_OVERHEAD_GIB = 1.5
CPU_FIXED_OVERHEAD_GIB = 0.75
ACTIVATION_BYTES_PER_HIDDEN_UNIT = 2 * 16


def kv_bytes_per_sequence(attention: Attention, context_tokens: int, runtime: RuntimeFacts) -> int:
    """KV cache bytes one sequence of `context_tokens` tokens occupies."""
    sliding_layers, global_layers = attention.cache_owning_layers()
    sliding_token_bytes = attention.sliding.kv_heads * attention.sliding.head_dim * 2 * KV_BYTES_PER_VALUE
    global_slots = 1 if attention.global_k_equals_v and not runtime.allocates_shared_kv_twice else 2
    global_token_bytes = attention.global_.kv_heads * attention.global_.head_dim * global_slots * KV_BYTES_PER_VALUE
    sliding_tokens = min(context_tokens, attention.sliding_window)
    return sliding_layers * sliding_token_bytes * sliding_tokens + global_layers * global_token_bytes * context_tokens


def kv_cache_gib(attention: Attention, context_tokens: int, sequences: int, runtime: RuntimeFacts) -> float:
    return sequences * kv_bytes_per_sequence(attention, context_tokens, runtime) / GIB


def naive_kv_cache_gib(attention: Attention, context_tokens: int, sequences: int) -> float:
    """The textbook formula other operators use: every layer, the widest KV heads, full context."""
    widest = max(
        attention.sliding.kv_heads * attention.sliding.head_dim,
        attention.global_.kv_heads * attention.global_.head_dim,
    )
    return sequences * attention.layers * widest * 2 * KV_BYTES_PER_VALUE * context_tokens / GIB


def overhead_gib(variant: Variant, runtime: RuntimeFacts, target: Target, context_tokens: int, devices: int) -> float:
    """Runtime overhead of a replica spread over `devices` GPUs (1 off GPUs)."""
    activations = runtime.prefill_tokens(context_tokens) * variant.hidden_size * ACTIVATION_BYTES_PER_HIDDEN_UNIT / GIB
    fixed = GPU_FIXED_OVERHEAD_GIB if target is Target.GPU else CPU_FIXED_OVERHEAD_GIB
    return devices * (fixed + activations)
