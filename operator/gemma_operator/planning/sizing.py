"""Sizing one replica on one runtime: the pool its devices leave for the KV cache after weights and
overhead, the runtime's own accounting of that pool, and the prefill chunk and tensor-parallel degree
chosen for it.

A replica fits when the pool each device leaves is at least what the runtime needs to admit the
requested sequences at the requested context (its worst-case charge, the figure it logs), and the
runtime would start with the knobs the plan sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gemma_operator.api import ConcurrencyPlan, FitsUpTo, MemoryPlan, Target
from gemma_operator.catalog import AcceleratorClass, Variant
from gemma_operator.planning import lora, memory
from gemma_operator.planning.allocators import Knobs, KvAccounting
from gemma_operator.planning.lora import LoraLoad
from gemma_operator.planning.modalities import Modalities
from gemma_operator.planning.sizers import Sizer

GIB = 1 << 30


@dataclass(frozen=True)
class Sizing:
    """One replica on `devices` GPUs (or one node) with `knobs`: GiB over all its devices, and the accounting."""

    devices: int
    knobs: Knobs
    weights: float
    kv_cache: float
    overhead: float
    available: float
    accounting: KvAccounting
    # The LoRA slots' buffers over all devices (0 without adapters).
    adapters: float
    # Per device: what the hardware leaves for the cache, and what the requested sequences need of it.
    pool_bytes: int
    pool_fits: bool
    refusal: str | None
    # Of weights and overhead, GiB over all devices: the encoder towers and the encoder's profiling peak (what
    # text-only would free), and the MTP assistant's weights.
    multimodal: float = 0.0
    assistant: float = 0.0

    @property
    def sequences_the_pool_holds(self) -> int:
        """Sequences of the context at the runtime's charge the pool would hold (llama.cpp caps them at -np)."""
        return max(self.pool_bytes, 0) // max(self.accounting.bytes_per_sequence, 1)

    @property
    def required(self) -> float:
        return self.weights + self.kv_cache + self.overhead + self.adapters

    @property
    def fits(self) -> bool:
        return self.pool_fits and self.refusal is None

    def report(self) -> MemoryPlan:
        return MemoryPlan(
            weights_gi_b=round(self.weights, 1),
            kv_cache_gi_b=round(self.kv_cache, 1),
            overhead_gi_b=round(self.overhead, 1),
            adapters_gi_b=round(self.adapters, 2),
            required_gi_b=round(self.required, 1),
            available_gi_b=round(self.available, 1),
            multimodal_gi_b=round(self.multimodal, 2),
            assistant_gi_b=round(self.assistant, 2),
        )

    def concurrency(self) -> ConcurrencyPlan:
        return ConcurrencyPlan(
            guaranteed=round(self.accounting.guaranteed, 2),
            steady_decode=self.accounting.steady_decode,
            cache_tokens=self.accounting.cache_tokens,
        )


@dataclass(frozen=True)
class Request:
    """What is being sized: a variant's weights on one runtime release, on devices of one size."""

    variant: Variant
    sizer: Sizer
    target: Target
    accelerator: AcceleratorClass | None
    weight_bytes: float
    device_gib: float
    memory_utilization: float
    activation_bytes_per_hidden_unit: int
    # Adapters served (vLLM): their slots' buffers come out of each device before the KV cache.
    lora: LoraLoad | None = None
    # Weights every device holds whole (vLLM replicates the encoder towers over its tensor-parallel ranks), and
    # of weight_bytes, the towers sharded with the rest and the MTP assistant's.
    replicated_weight_bytes: float = 0.0
    sharded_tower_bytes: float = 0.0
    assistant_bytes: float = 0.0
    # The inputs served besides text, whose encoder the runtime profiles (vLLM); None where it does not.
    modalities: Modalities | None = None

    def _adapter_bytes(self, knobs: Knobs) -> int:
        """Per device."""
        if self.lora is None:
            return 0
        return lora.reserved_bytes(
            self.variant, self.lora.slots, knobs.tensor_parallel, knobs.prefill_chunk_tokens, knobs.sequences
        )

    def _encoder_bytes(self, knobs: Knobs) -> int:
        if self.modalities is None:
            return 0
        device = self.device_gib * GIB
        free = device - self.weight_bytes / knobs.tensor_parallel - self.replicated_weight_bytes
        return self.modalities.encoder_bytes(
            knobs.context_tokens,
            knobs.sequences,
            knobs.prefill_chunk_tokens,
            self.variant.hidden_size,
            free,
            device,
            self.activation_bytes_per_hidden_unit,
        )

    def size(self, knobs: Knobs) -> Sizing:
        devices = knobs.tensor_parallel
        encoder_gib = self._encoder_bytes(knobs) / GIB
        overhead = (
            memory.overhead_gib(
                self.variant,
                self.target,
                min(knobs.context_tokens, knobs.prefill_chunk_tokens),
                devices,
                self.activation_bytes_per_hidden_unit,
                self.lora.extra_graph_sets if self.lora else 0,
            )
            + devices * encoder_gib
        )
        usable = self.device_gib * self.sizer.usable_fraction(self.memory_utilization)
        adapters = self._adapter_bytes(knobs)
        per_device_weights = self.weight_bytes / devices + self.replicated_weight_bytes
        pool = int((usable - overhead / devices) * GIB - per_device_weights - adapters)
        needed = self.sizer.pool_bytes_for(self.variant.attention, knobs)
        accounting = self.sizer.account(self.variant.attention, knobs, pool)
        towers = self.sharded_tower_bytes + self.replicated_weight_bytes * devices
        return Sizing(
            devices=devices,
            knobs=knobs,
            weights=per_device_weights * devices / GIB,
            kv_cache=needed * devices / GIB,
            overhead=overhead,
            available=usable * devices,
            accounting=accounting,
            adapters=adapters * devices / GIB,
            pool_bytes=pool,
            pool_fits=pool >= needed,
            refusal=self.sizer.refusal(knobs, accounting),
            multimodal=towers / GIB + devices * encoder_gib,
            assistant=self.assistant_bytes / GIB,
        )

    def at(self, devices: int, context: int, sequences: int, chunk: int) -> Sizing:
        return self.size(Knobs(context, sequences, chunk, devices))


@dataclass(frozen=True)
class Choice:
    """The sizing a plan takes: the first that fits, or the closest when none does, and why its chunk."""

    sizing: Sizing
    chunk_decision: str


def choose(request: Request, degrees: Sequence[int], context: int, sequences: int) -> Choice:
    """The fewest GPUs, and on them the largest prefill chunk the runtime may take, that admit the request."""
    sizer = request.sizer
    closest: Sizing | None = None
    for devices in degrees:
        chunks = sizer.chunks(request.accelerator, Knobs(context, sequences, 0, devices))
        for chunk in chunks:
            sizing = request.at(devices, context, sequences, chunk)
            if sizing.fits:
                return Choice(sizing, _chunk_decision(request, sizing, chunks))
            closest = sizing
    assert closest is not None, "at least one degree and one chunk are tried"
    return Choice(closest, _chunk_decision(request, closest, sizer.chunks(request.accelerator, closest.knobs)))


def _chunk_decision(request: Request, sizing: Sizing, chunks: Sequence[int]) -> str:
    sizer, chunk = request.sizer, sizing.knobs.prefill_chunk_tokens
    own = f"{sizer.chunk_flag} {chunk}"
    if len(chunks) == 1:
        return f"{own}: the only prefill size {sizer.runtime.value} {sizer.version} takes for this model here"
    if chunk == chunks[0]:
        return f"{own}: {sizer.runtime.value} {sizer.version}'s own default on this GPU"
    default = request.at(sizing.devices, sizing.knobs.context_tokens, sizing.knobs.sequences, chunks[0])
    if not sizing.fits:
        return f"{own}: the smallest prefill chunk the plan sets; at the default {chunks[0]} it is further off"
    return (
        f"{own}, below {sizer.runtime.value} {sizer.version}'s default of {chunks[0]}: with the default, "
        f"{sizer.runtime.value} charges each sequence more cache for its sliding-window layers and admits "
        f"{default.accounting.guaranteed:.2f} sequences of {sizing.knobs.context_tokens} tokens on "
        f"{sizing.devices} GPU(s), fewer than the {sizing.knobs.sequences} asked for"
    )


def _largest(holds: Callable[[int], bool], low: int, high: int) -> int:
    """The largest n in [low, high] for which `holds` (taken as true at low, monotone) is true."""
    high += 1
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if holds(middle) else (low, middle)
    return low


def frontier(request: Request, sizing: Sizing, max_context: int) -> FitsUpTo:
    """The most sequences at the configured context, and the longest context at the configured concurrency,
    on the plan's GPUs, each with whichever prefill chunk the plan would set for it."""
    knobs = sizing.knobs

    def fits(context: int, sequences: int) -> bool:
        asked = Knobs(context, sequences, 0, sizing.devices)
        return any(
            request.at(sizing.devices, context, sequences, chunk).fits
            for chunk in request.sizer.chunks(request.accelerator, asked)
        )

    # Bounded by what the pool holds at the runtime's charge with its smallest chunk.
    smallest = request.sizer.chunks(request.accelerator, knobs)[-1]
    bound = request.at(sizing.devices, knobs.context_tokens, knobs.sequences, smallest).sequences_the_pool_holds
    most = _largest(lambda n: fits(knobs.context_tokens, n), 0, max(bound, sizing.sequences_the_pool_holds))
    # Two tokens (one in, one out) are the least every runtime serves.
    shortest = 2
    longest = _largest(lambda context: fits(context, knobs.sequences), shortest, max_context)
    return FitsUpTo(concurrent_sequences=most, context_tokens=longest if fits(shortest, knobs.sequences) else 0)
