"""A replica's runtime overhead in GiB, and the textbook KV formula the docs compare with.

Weights: planning/weights.py. The KV cache as each runtime allocates it: planning/allocators.
"""

from __future__ import annotations

from gemma_operator.api import Target
from gemma_operator.catalog import Attention, Variant

GIB = 1 << 30
KV_BYTES_PER_VALUE = 2

# The overhead model. On a GPU, per GPU:
# - CUDA context, cuBLAS and NCCL workspaces: about 1 GiB;
# - CUDA graphs captured for decode batch sizes: about 0.5 GiB;
# - activations of one forward pass: tokens in flight x hidden size x the runtime's activation
#   bytes per hidden unit (runtimes.yaml), covering the gated MLP's intermediate tensors,
#   attention scratch and residuals.
# On a CPU node: the server process and its compute buffers, about 0.75 GiB, plus the
# same activation term.
CUDA_CONTEXT_GIB = 1.0
CUDA_GRAPHS_GIB = 0.5
CPU_FIXED_OVERHEAD_GIB = 0.75


def naive_kv_cache_gib(attention: Attention, context_tokens: int, sequences: int) -> float:
    """The textbook formula other operators use: every layer, the widest KV heads, full context."""
    widest = max(
        attention.sliding.kv_heads * attention.sliding.head_dim,
        attention.global_.kv_heads * attention.global_.head_dim,
    )
    return sequences * attention.layers * widest * 2 * KV_BYTES_PER_VALUE * context_tokens / GIB


def overhead_gib(
    variant: Variant,
    target: Target,
    prefill_tokens: int,
    devices: int,
    activation_bytes_per_hidden_unit: int,
    extra_graph_sets: int = 0,
) -> float:
    """Runtime overhead of a replica spread over `devices` GPUs (1 off GPUs) that prefills `prefill_tokens` at once,
    with `extra_graph_sets` more sets of CUDA graphs than one (vLLM captures a second set for LoRA)."""
    activations = prefill_tokens * variant.hidden_size * activation_bytes_per_hidden_unit / GIB
    graphs = CUDA_GRAPHS_GIB * (1 + extra_graph_sets)
    fixed = CUDA_CONTEXT_GIB + graphs if target is Target.GPU else CPU_FIXED_OVERHEAD_GIB
    return devices * (fixed + activations)
