"""What every runtime's allocator model takes and gives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Knobs:
    """The sizing knobs a plan sets explicitly on the runtime's command line, so that runtime and plan agree.

    context_tokens: tokens per request, input plus output (vLLM --max-model-len, TGI --max-total-tokens,
        llama.cpp's per-slot context, -c / -np).
    sequences: sequences served at once (vLLM --max-num-seqs, TGI's batch, llama.cpp -np).
    prefill_chunk_tokens: tokens one forward pass takes (vLLM --max-num-batched-tokens,
        TGI --max-batch-prefill-tokens, llama.cpp -ub).
    tensor_parallel: GPUs a replica's cache is sharded over (1 off GPUs).
    """

    context_tokens: int
    sequences: int
    prefill_chunk_tokens: int
    tensor_parallel: int = 1


@dataclass(frozen=True)
class KvAccounting:
    """A runtime's own accounting of its KV cache, the figures it logs.

    cache_tokens: the cache's size in tokens as the runtime logs it (vLLM "GPU KV cache size: N tokens",
        TGI's max batch total tokens, llama.cpp's cells).
    guaranteed: sequences of context_tokens the runtime admits at its worst-case charge, as it logs it
        (vLLM "Maximum concurrency for M tokens per request: X"); fractional where the runtime says so.
    steady_decode: sequences whose decode working set fits (sliding layers at their window, global
        layers at the full context).
    bytes_per_sequence: the runtime's worst-case charge for one sequence of context_tokens, per device.
    """

    cache_tokens: int
    guaranteed: float
    steady_decode: int
    bytes_per_sequence: int
