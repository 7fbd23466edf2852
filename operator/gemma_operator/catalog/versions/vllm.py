"""vLLM's KV cache accounting per release, read from vllm.yaml (each fact names its upstream file and function)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import Field

from gemma_operator.api import Family
from gemma_operator.catalog.facts import Fact


class Sourced(Fact):
    """A fact and where in the release's source it was read."""

    source: str = Field(min_length=1)


class BlockSize(Sourced):
    tokens: int = Field(gt=0)


class CacheDtypeBytes(Sourced):
    """Bytes per cached value for each --kv-cache-dtype ("auto" is the checkpoint's dtype)."""

    values: dict[str, int]


class KvHeadsPerRank(Sourced):
    # True: a rank holds max(1, kv_heads // tp) heads, so tp may exceed the KV heads when it is a multiple of them.
    replicated_below_tensor_parallel: bool


class KEqualsV(Sourced):
    # True: layers whose V is K still get a V slot in every page.
    separate_v_slot: bool = Field(alias="separateVSlot")


class PageUnification(Sourced):
    # True: a page that does not divide the largest is padded to it; False: vLLM refuses the model.
    pads_indivisible_pages: bool


class Grouping(Sourced):
    # The group size is the largest bucket's layer count when it is below this multiple of the smallest's.
    close_counts_ratio: float = Field(gt=1)


class SlidingCharge(Sourced):
    # Batches in flight at once; each may hold a full --max-num-batched-tokens of a sliding layer's blocks.
    concurrent_batches: int = Field(gt=0)


class LoggedTokens(Sourced):
    # blocks-per-group: num_blocks // groups * smallest block size;
    # concurrency-times-length: int(concurrency * max_model_len).
    formula: Literal["blocks-per-group", "concurrency-times-length"]


class FitCheck(Sourced):
    # True: the start-up check leaves the null block out of the pool before fitting one max_model_len request.
    reserves_null_block: bool


class BatchDefaultsTier(Fact):
    min_memory_gi_b: float = Field(gt=0, alias="minMemoryGiB")
    # Lower-case substrings of the device name that keep a GPU off this tier.
    excluded_products: tuple[str, ...] = ()
    max_num_batched_tokens: int = Field(gt=0)
    max_num_seqs: int = Field(gt=0)


class BatchLimits(Fact):
    max_num_batched_tokens: int = Field(gt=0)
    max_num_seqs: int = Field(gt=0)


class BatchDefaults(Sourced):
    """What the OpenAI server picks when --max-num-batched-tokens / --max-num-seqs are not given."""

    tiers: tuple[BatchDefaultsTier, ...]
    otherwise: BatchLimits


class WholeMultimodalItems(Sourced):
    """Families whose multimodal items must fit one batch (chunked multimodal input disabled)."""

    families: tuple[Family, ...]
    gemma4_item_tokens: int = Field(gt=0)


class Multimodal(Sourced):
    """How a release loads encoder towers and sizes what they take."""

    # Architectures whose towers are not built when every modality they serve is limited to 0.
    skips_towers_of: tuple[str, ...]
    # Whether the memory profile takes an image at --mm-processor-kwargs max_soft_tokens (else the checkpoint's).
    profiles_configured_tokens_per_image: bool
    # A Gemma 4 video: this many frames of this many soft tokens each, through the vision tower.
    video_frames: int = Field(gt=0)
    video_tokens_per_frame: int = Field(gt=0)


class Support(Sourced):
    architectures: tuple[str, ...]
    bitsandbytes: bool
    bitsandbytes_on_moe: bool = Field(alias="bitsandbytesOnMoe")
    lora_on_gemma4_for_conditional_generation: bool = Field(alias="loraOnGemma4ForConditionalGeneration")


class LoraRules(Sourced):
    """What --enable-lora costs at start besides the slots' buffers (planning/lora.py)."""

    # Sets of CUDA graphs captured beyond the one without LoRA whose memory is taken from the KV cache pool.
    extra_graph_sets_charged: int = Field(ge=0)
    # Where an adapter comes from: True when --lora-modules takes a revision of a Hub repository.
    downloads_revision: bool


class VllmRules(Fact):
    """The facts vLLM's KV cache accounting depends on, at one release."""

    version: str
    block_size: BlockSize
    cache_dtype_bytes: CacheDtypeBytes
    kv_heads_per_rank: KvHeadsPerRank
    k_equals_v: KEqualsV = Field(alias="kEqualsV")
    shared_kv_layers: Sourced = Field(alias="sharedKvLayers")
    page_unification: PageUnification
    grouping: Grouping
    sliding_charge: SlidingCharge
    full_charge: Sourced
    concurrency: Sourced
    logged_tokens: LoggedTokens
    fit_check: FitCheck
    batch_defaults: BatchDefaults
    whole_multimodal_items: WholeMultimodalItems
    multimodal: Multimodal
    support: Support
    lora: LoraRules


@cache
def _catalog() -> tuple[str, Mapping[str, VllmRules]]:
    data = yaml.safe_load(files("gemma_operator.catalog.versions").joinpath("vllm.yaml").read_text(encoding="utf-8"))
    releases = {
        version: VllmRules.model_validate({"version": version, **facts}) for version, facts in data["releases"].items()
    }
    pinned = str(data["pinned"])
    if pinned not in releases:
        raise ValueError(f"vllm.yaml: pinned {pinned!r} is not among the releases")
    return pinned, releases


PINNED: str = _catalog()[0]


def rules(version: str) -> VllmRules | None:
    """The rules of a vLLM release (e.g. "0.19.1"), or None for a release the catalog does not know."""
    return _catalog()[1].get(version)


def known_versions() -> tuple[str, ...]:
    return tuple(_catalog()[1])


# vllm/vllm-openai tags are "v" + the release, sometimes with a build suffix ("v0.19.1-cu130").
_RELEASE_TAG = re.compile(r"^v?(\d+\.\d+\.\d+)(?:-[A-Za-z0-9.]+)?$")


def version_of_image(image: str) -> str | None:
    """The vLLM release an image reference names by its tag ("vllm/vllm-openai:v0.19.1" -> "0.19.1").

    None when the tag names no release (latest, nightly, a digest only, no tag).
    """
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return None
    match = _RELEASE_TAG.match(tag)
    return match.group(1) if match else None
