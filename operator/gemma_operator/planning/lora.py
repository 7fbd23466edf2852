"""The GPU memory vLLM reserves for LoRA slots at start, per device, from a variant's layer shapes.

vLLM wraps every linear layer and mixture of experts of the language model (the vision and audio
towers only with --enable-tower-connector-lora) and gives each wrapper stacked A and B buffers of
--max-loras slots at --max-lora-rank, in the model's dtype, when it loads the model: before the
profile run that sizes the KV cache (catalog/versions/vllm.yaml `lora` names each file and function).
Per wrapper and slot, with r the rank:

- a column-parallel layer (q_proj, the merged qkv_proj and gate_up_proj, the E-models' per-layer
  model projection): A is r x input for each packed slice, B is each slice's output share x r;
- a row-parallel layer (o_proj, down_proj): A is r x the input share, B is output x r;
- a replicated layer (the MoE router, the E-models' per-layer gate and projection): A r x input,
  B output x r, whole on every device;
- a mixture of experts: for every expert, A and B of the gate and up projections (r x hidden, the
  expert's width share x r) and of the down projection (r x width share, hidden x r).

Shares are of the tensor-parallel degree, KV heads replicated below it as the attention layer does.
The punica kernels' index tensors add a few bytes per batched token (and the MoE wrappers a flag per slot,
which is left out).
"""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.catalog import Variant

# vLLM's LoRA dtype "auto" is the model's (config/lora.py LoRAConfig.verify_with_model_config): bf16 for every
# Gemma checkpoint, whatever --quantization does to the base weights.
LORA_DTYPE_BYTES = 2
# punica_wrapper/punica_base.py PunicaWrapperBase.__init__: four int64 index tensors of max_num_batched_tokens
# and three of max_num_seqs; punica_gpu.py PunicaWrapperGPU: two LoRAKernelMeta.make
# (ops/triton_ops/lora_kernel_metadata.py), each two int32 tensors of max_num_batched_tokens and three of about
# max_loras.
_INDEX_BYTES, _META_BYTES = 8, 4


@dataclass(frozen=True)
class LoraSlots:
    """What vLLM reserves buffers for: --max-loras slots of --max-lora-rank."""

    rank: int
    slots: int


@dataclass(frozen=True)
class LoraLoad:
    """What serving adapters adds to a replica on a runtime release: the slots, and the CUDA graphs captured
    for them beyond the usual set whose memory comes out of the KV cache pool."""

    slots: LoraSlots
    extra_graph_sets: int


def _share(size: int, tensor_parallel: int) -> int:
    return size // tensor_parallel


def _layer_elements(variant: Variant, layer: int, tensor_parallel: int) -> int:
    """A and B widths (input plus output sizes over all packed slices) of one decoder layer's wrapped layers:
    multiplied by the rank, the elements of one slot."""
    attention, hidden = variant.attention, variant.hidden_size
    shape = attention.global_ if attention.is_global(layer) else attention.sliding
    queries = _share(attention.attention_heads, tensor_parallel) * shape.head_dim
    if attention.owns_cache(layer):
        kv = max(1, shape.kv_heads // tensor_parallel) * shape.head_dim
        # qkv_proj: three slices (q, k, v), each A r x hidden; B the query and the two KV shares.
        attention_widths = 3 * hidden + queries + 2 * kv
    else:
        # A KV-shared layer has q_proj alone.
        attention_widths = hidden + queries
    # o_proj: A r x the query share, B hidden x r.
    attention_widths += queries + hidden
    width = _share(variant.mlp_width(layer), tensor_parallel)
    # gate_up_proj: two slices; down_proj: A r x the width share, B hidden x r.
    mlp_widths = 2 * hidden + 2 * width + width + hidden
    per_layer = 0
    if variant.per_layer_input_size:
        # per_layer_input_gate (hidden -> per-layer width) and per_layer_projection (back), replicated.
        per_layer = 2 * (hidden + variant.per_layer_input_size)
    experts = 0
    if variant.experts is not None:
        expert_width = _share(variant.experts.intermediate_size, tensor_parallel)
        # The router's projection (replicated, hidden -> experts), and per expert gate, up and down.
        experts = hidden + variant.experts.count + variant.experts.count * (3 * hidden + 3 * expert_width)
    return attention_widths + mlp_widths + per_layer + experts


def buffer_bytes(variant: Variant, lora: LoraSlots, tensor_parallel: int) -> int:
    """Bytes of the A and B buffers on each of `tensor_parallel` devices."""
    attention = variant.attention
    widths = sum(_layer_elements(variant, layer, tensor_parallel) for layer in range(1, attention.layers + 1))
    if variant.per_layer_input_size:
        # The model's per_layer_model_projection: hidden -> layers x per-layer width, column-parallel.
        widths += variant.hidden_size + _share(attention.layers * variant.per_layer_input_size, tensor_parallel)
    return widths * lora.rank * lora.slots * LORA_DTYPE_BYTES


def index_bytes(lora: LoraSlots, batched_tokens: int, sequences: int) -> int:
    """Bytes of the punica kernels' index tensors on each device."""
    base = 4 * batched_tokens * _INDEX_BYTES + 3 * sequences * _INDEX_BYTES
    metadata = 2 * (2 * batched_tokens + 3 * (lora.slots + 2)) * _META_BYTES
    return base + metadata


def reserved_bytes(variant: Variant, lora: LoraSlots, tensor_parallel: int, batched_tokens: int, sequences: int) -> int:
    """What the LoRA slots take from each device before vLLM sizes its KV cache."""
    return buffer_bytes(variant, lora, tensor_parallel) + index_bytes(lora, batched_tokens, sequences)
