"""One runtime at one release, bound to its rules: how much of a device it divides, how it accounts
for its KV cache (planning/allocators), which prefill chunks a plan may set on it, and what stops it
at start though memory suffices.

sizer_for() reads the release from the image the plan will run, so a user's older serving.image is
planned with that release's rules; a tag the catalog does not know gets the pinned release's rules,
and the plan's decisions say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gemma_operator.api import AdapterSpec, Family, Precision, Runtime, Target
from gemma_operator.catalog import AcceleratorClass, Attention, Variant
from gemma_operator.catalog.versions import llamacpp as llamacpp_versions
from gemma_operator.catalog.versions import tgi as tgi_versions
from gemma_operator.catalog.versions import vllm as vllm_versions
from gemma_operator.catalog.versions.llamacpp import LlamaCppRules
from gemma_operator.catalog.versions.tgi import System, TgiRules, model_type
from gemma_operator.catalog.versions.vllm import VllmRules
from gemma_operator.planning.allocators import Knobs, KvAccounting, llamacpp, tgi, vllm
from gemma_operator.planning.lora import LoraLoad, LoraSlots

# The context checkpoints a llama-server slot keeps for a sliding-window model (--ctx-checkpoints). Each
# holds the slot's sliding-window cache in host RAM (ggml-org/llama.cpp#21690); the plan bounds them and
# sizes the pod's memory with them.
PLANNED_CTX_CHECKPOINTS = 2
# The smallest --max-num-batched-tokens a plan sets: vLLM's own default on GPUs under 70 GiB
# (vllm/engine/arg_utils.py get_batch_defaults). Smaller chunks leave prefill GEMMs too small to
# keep an accelerator busy, so a plan buys cache room with them no further.
MIN_PREFILL_CHUNK_TOKENS = 2048
PINNED_VLLM = vllm_versions.PINNED


class Sizer(Protocol):
    """What the planner asks of a runtime at a release."""

    @property
    def runtime(self) -> Runtime: ...

    @property
    def version(self) -> str: ...

    @property
    def chunk_flag(self) -> str:
        """The option the plan's prefill chunk is set with."""
        ...

    def usable_fraction(self, utilization: float) -> float:
        """The share of a device's memory the runtime divides between weights, activations and cache."""
        ...

    def account(self, attention: Attention, knobs: Knobs, pool_bytes: int) -> KvAccounting: ...

    def pool_bytes_for(self, attention: Attention, knobs: Knobs) -> int:
        """The smallest cache pool per device that admits knobs.sequences of knobs.context_tokens."""
        ...

    def chunks(self, accelerator: AcceleratorClass | None, knobs: Knobs) -> tuple[int, ...]:
        """Prefill chunks the plan may set, largest first; the first is the runtime's own choice."""
        ...

    def refusal(self, knobs: Knobs, accounting: KvAccounting) -> str | None:
        """What the runtime stops with at start for these knobs, in its words; None when it starts."""
        ...

    def unloadable(self, variant: Variant, precision: Precision, prequantized: bool) -> str | None:
        """Why this release cannot load the variant at that precision; None when it can."""
        ...

    @property
    def replicates_towers(self) -> bool:
        """Whether every tensor-parallel rank holds the encoder towers whole."""
        ...

    @property
    def vllm_rules(self) -> VllmRules | None:
        """The vLLM release's facts (model classes, multimodal profiling), on vLLM only."""
        ...

    def lora(self, variant: Variant, adapters: Sequence[AdapterSpec], slots: LoraSlots) -> LoraLoad | str:
        """What serving `adapters` in `slots` costs on this release, or why it cannot serve them."""
        ...


@dataclass(frozen=True)
class VllmSizer:
    rules: VllmRules
    family: Family
    runtime: Runtime = Runtime.VLLM
    chunk_flag: str = "--max-num-batched-tokens"
    # Gemma 4's and Gemma 3's towers are transformers modules whose Linear layers vLLM replaces with replicated
    # ones (model_executor/models/transformers/utils.py recursive_replace_linear(..., "replicate")).
    replicates_towers: bool = True
    # The largest multimodal item the plan enables (planning/modalities.py); None: Gemma 4's largest, a video.
    largest_item_tokens: int | None = None

    @property
    def version(self) -> str:
        return self.rules.version

    @property
    def vllm_rules(self) -> VllmRules | None:
        return self.rules

    def usable_fraction(self, utilization: float) -> float:
        # --gpu-memory-utilization is the share of the whole GPU the instance may take.
        return utilization

    def account(self, attention: Attention, knobs: Knobs, pool_bytes: int) -> KvAccounting:
        return vllm.account(attention, knobs, pool_bytes, self.rules)

    def pool_bytes_for(self, attention: Attention, knobs: Knobs) -> int:
        return vllm.pool_bytes_for(attention, knobs, self.rules)

    def chunks(self, accelerator: AcceleratorClass | None, knobs: Knobs) -> tuple[int, ...]:
        """vLLM's default for the GPU, then halved down to the floor.

        The floor also keeps a whole multimodal item in one batch where the release schedules them so
        (vllm.yaml wholeMultimodalItems), and vLLM wants at least max_num_seqs tokens a step.
        """
        if accelerator is None:
            raise ValueError("vLLM runs on GPUs only")
        default = vllm.default_batched_tokens(self.rules, accelerator.memory_gib, accelerator.product)
        whole_items = self.rules.whole_multimodal_items
        # Gemma 4's largest item is a video (vllm.yaml) unless the plan turns video off; Gemma 3's, an image, is
        # far below the floor. With no item enabled vLLM checks none (compute_mm_encoder_budget).
        whole = self.family is Family.GEMMA_4 and self.family in whole_items.families
        largest = whole_items.gemma4_item_tokens if self.largest_item_tokens is None else self.largest_item_tokens
        item = largest if whole else 0
        floor = max(MIN_PREFILL_CHUNK_TOKENS, item, knobs.sequences)
        if default <= floor:
            return (max(default, item, knobs.sequences),)
        found = [default]
        while found[-1] // 2 > floor:
            found.append(found[-1] // 2)
        return (*found, floor)

    def refusal(self, knobs: Knobs, accounting: KvAccounting) -> str | None:
        return None

    def unloadable(self, variant: Variant, precision: Precision, prequantized: bool) -> str | None:
        support, release = self.rules.support, f"vLLM {self.version}"
        if variant.architecture not in support.architectures:
            return (
                f"{release} has no {variant.architecture} (model_executor/models/registry.py), so it cannot load "
                f"{variant.label}; use an image of a vLLM release that has it (the catalog's {PINNED_VLLM} does)"
            )
        if precision is not Precision.INT4 or prequantized:
            return None
        advice = (
            "use precision fp8, or set model.repository to a pre-quantised int4 build "
            "(AWQ, GPTQ or compressed-tensors W4A16), whose quantisation vLLM reads itself"
        )
        if not support.bitsandbytes:
            return (
                f"{release} has no bitsandbytes quantisation, so it cannot quantise {variant.label} to int4; {advice}"
            )
        if variant.experts is not None and not support.bitsandbytes_on_moe:
            return (
                f"{release}'s bitsandbytes loader needs an expert mapping that {variant.label}'s mixture of experts "
                f"lacks, so the pod would fail while loading; {advice}"
            )
        return None

    def lora(self, variant: Variant, adapters: Sequence[AdapterSpec], slots: LoraSlots) -> LoraLoad | str:
        release = f"vLLM {self.version}"
        if variant.family is Family.GEMMA_4 and not self.rules.support.lora_on_gemma4_for_conditional_generation:
            return (
                f"{release} cannot serve adapters on {variant.label}: its Gemma4ForConditionalGeneration does not "
                'implement SupportsLoRA, so --enable-lora stops the server at load ("does not support LoRA yet", '
                f"vllm-project/vllm#40693); use an image of vLLM {vllm_versions.PINNED}"
            )
        pinned = next((adapter for adapter in adapters if adapter.revision), None)
        if pinned is not None and not self.rules.lora.downloads_revision:
            return (
                f"adapters {pinned.name}: revision {pinned.revision} cannot be honoured by {release}, which downloads "
                "an adapter from its repository's default branch (lora/utils.py get_adapter_absolute_path takes no "
                "revision); leave revision empty and publish that revision as the default branch of a repository"
            )
        return LoraLoad(slots, self.rules.lora.extra_graph_sets_charged)


@dataclass(frozen=True)
class TgiSizer:
    rules: TgiRules
    system: System
    model_type: str
    runtime: Runtime = Runtime.TGI
    chunk_flag: str = "--max-batch-prefill-tokens"
    replicates_towers: bool = False
    vllm_rules: VllmRules | None = None

    @property
    def version(self) -> str:
        return self.rules.version

    def usable_fraction(self, utilization: float) -> float:
        # The warmup keeps (1 - fraction x wiggle room) of the GPU back; the CPU image takes 95% of what
        # is left and ignores the fraction (tgi.pool_bytes).
        if self.system is System.INTEL_CPU:
            return self.rules.memory.cpu_available_share
        return utilization * self.rules.memory.wiggle_room

    def account(self, attention: Attention, knobs: Knobs, pool_bytes: int) -> KvAccounting:
        return tgi.account(attention, knobs, pool_bytes, self.rules, system=self.system)

    def pool_bytes_for(self, attention: Attention, knobs: Knobs) -> int:
        return tgi.pool_bytes_for(attention, knobs, self.rules, system=self.system)

    def chunks(self, accelerator: AcceleratorClass | None, knobs: Knobs) -> tuple[int, ...]:
        # A checkpoint TGI cannot split a prefill for must take a whole prompt in one; otherwise the
        # launcher's own default, capped at the context.
        if not self.rules.prefill_chunking(self.model_type):
            return (knobs.context_tokens,)
        return (min(knobs.context_tokens, self.rules.default_max_batch_prefill_tokens(self.model_type)),)

    def refusal(self, knobs: Knobs, accounting: KvAccounting) -> str | None:
        return tgi.refusal(knobs, accounting.cache_tokens, self.rules.prefill_chunking(self.model_type), self.rules)

    def unloadable(self, variant: Variant, precision: Precision, prequantized: bool) -> str | None:
        return None

    def lora(self, variant: Variant, adapters: Sequence[AdapterSpec], slots: LoraSlots) -> LoraLoad | str:
        # TGI 3.3.7 server/text_generation_server/models/__init__.py get_model_with_lora_adapters counts layers
        # through model.model.model.layers, which its Gemma3ForConditionalGeneration (custom_modeling/
        # flash_gemma3_modeling.py, the class of 4b, 12b and 27b) does not have: it keeps them under text_model.
        return (
            f"the operator serves adapters on vLLM only: TGI {self.version}'s adapter loader "
            "(get_model_with_lora_adapters) looks for model.model.model.layers, which its Gemma 3 multimodal class "
            "does not have; set serving.runtime vllm"
        )


@dataclass(frozen=True)
class LlamacppSizer:
    rules: LlamaCppRules
    runtime: Runtime = Runtime.LLAMACPP
    chunk_flag: str = "-ub"
    # One process on one node: nothing to replicate.
    replicates_towers: bool = False
    vllm_rules: VllmRules | None = None

    @property
    def version(self) -> str:
        return self.rules.version

    def usable_fraction(self, utilization: float) -> float:
        return utilization

    def account(self, attention: Attention, knobs: Knobs, pool_bytes: int) -> KvAccounting:
        return llamacpp.account(attention, knobs, pool_bytes, self.rules, PLANNED_CTX_CHECKPOINTS)

    def pool_bytes_for(self, attention: Attention, knobs: Knobs) -> int:
        return llamacpp.pool_bytes_for(attention, knobs, self.rules, PLANNED_CTX_CHECKPOINTS)

    def chunks(self, accelerator: AcceleratorClass | None, knobs: Knobs) -> tuple[int, ...]:
        return (self.rules.default_ubatch_tokens.value,)

    def refusal(self, knobs: Knobs, accounting: KvAccounting) -> str | None:
        return None

    def unloadable(self, variant: Variant, precision: Precision, prequantized: bool) -> str | None:
        return None

    def lora(self, variant: Variant, adapters: Sequence[AdapterSpec], slots: LoraSlots) -> LoraLoad | str:
        # b11243 common/arg.cpp: --lora takes a file path; common_models_handler_init plans downloads for -hf's model,
        # its projector and a draft model only.
        return (
            f"llama.cpp {self.version} loads adapters only from local GGUF files (--lora FILE); its -hf download "
            "fetches the model, never an adapter. Adapters are served on GPU targets with vLLM"
        )


@dataclass(frozen=True)
class Bound:
    """A sizer and what binding it decided: the version note when the image's release is not catalogued."""

    sizer: Sizer
    decisions: tuple[str, ...]


def _unknown(runtime: Runtime, image: str, pinned: str) -> tuple[str, ...]:
    return (
        f"{runtime.value} image {image} names no release the catalog knows: planned with {pinned}'s rules, "
        "which may not be what that image allocates",
    )


def _vllm(image: str, variant: Variant) -> Bound:
    version = vllm_versions.version_of_image(image)
    found = vllm_versions.rules(version) if version else None
    if found is not None:
        return Bound(VllmSizer(found, variant.family), ())
    pinned = vllm_versions.rules(vllm_versions.PINNED)
    assert pinned is not None  # vllm.yaml's loader checks that the pinned release is there
    return Bound(VllmSizer(pinned, variant.family), _unknown(Runtime.VLLM, image, vllm_versions.PINNED))


def _tgi(image: str, variant: Variant, target: Target) -> Bound:
    parsed = tgi_versions.parse_image(image)
    found = tgi_versions.rules(parsed.version) if parsed else None
    checkpoint = model_type(variant)
    if checkpoint is None:
        raise ValueError(f"TGI has no class for {variant.label}")
    system = parsed.system if parsed else (System.CUDA if target is Target.GPU else System.INTEL_CPU)
    if found is not None:
        return Bound(TgiSizer(found, system, checkpoint), ())
    pinned = tgi_versions.rules(tgi_versions.PINNED)
    assert pinned is not None
    return Bound(TgiSizer(pinned, system, checkpoint), _unknown(Runtime.TGI, image, tgi_versions.PINNED))


def _llamacpp(image: str) -> Bound:
    found = llamacpp_versions.rules(image)
    if found is not None:
        return Bound(LlamacppSizer(found), ())
    return Bound(
        LlamacppSizer(llamacpp_versions.pinned_rules()), _unknown(Runtime.LLAMACPP, image, llamacpp_versions.PINNED)
    )


def sizer_for(runtime: Runtime, image: str, variant: Variant, target: Target) -> Bound:
    """The sizer of the release `image` runs."""
    if runtime is Runtime.VLLM:
        return _vllm(image, variant)
    if runtime is Runtime.TGI:
        return _tgi(image, variant, target)
    return _llamacpp(image)
