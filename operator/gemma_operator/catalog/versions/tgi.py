"""TGI's facts per release: what its warmup, its router and its launcher do with memory and the cache knobs.

The facts live in tgi.yaml, each with the upstream file and function it was read from. A plan uses the
rules of the release its image runs (parse_image, then rules); rules() answers None for a release the
catalog does not know, and the caller falls back to PINNED and says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files

import yaml
from pydantic import Field

from gemma_operator.api import Family
from gemma_operator.catalog.facts import Fact, Variant

# TGI's last release (maintenance mode since December 2025).
PINNED = "3.3.7"


class AttentionBackend(StrEnum):
    """TGI's ATTENTION setting, which fixes its cache block size."""

    FLASHINFER = "flashinfer"
    FLASHDECODING = "flashdecoding"
    FLASHDECODING_IPEX = "flashdecoding-ipex"


class System(StrEnum):
    """Which TGI image runs: the CUDA one, or the -intel-cpu one."""

    CUDA = "cuda"
    INTEL_CPU = "intel-cpu"


class MemoryRules(Fact):
    wiggle_room: float = Field(gt=0, lt=1)
    default_cuda_memory_fraction: float = Field(gt=0, le=1)
    cpu_available_share: float = Field(gt=0, le=1)


class AttentionRules(Fact):
    block_sizes: dict[AttentionBackend, int]
    flashinfer_head_dims: tuple[int, ...]
    fallback: AttentionBackend
    cpu_image: AttentionBackend


class KvCacheRules(Fact):
    dtype_bytes: dict[str, int]
    default_dtype: str


class AdmissionRules(Fact):
    reserved_blocks: int = Field(ge=0)
    charge_offset_tokens: int


class LauncherDefaults(Fact):
    max_batch_prefill_tokens: dict[str, int]
    max_batch_prefill_tokens_otherwise: int = Field(gt=0)


class LogLines(Fact):
    kv_cache_blocks: str
    max_batch_total_tokens: str


class Refusals(Fact):
    not_enough_memory: str
    prefill_below_input: str
    prefill_above_total: str


class TgiRules(Fact):
    """One TGI release's accounting facts."""

    version: str
    memory: MemoryRules
    attention: AttentionRules
    kv_cache: KvCacheRules
    admission: AdmissionRules
    without_prefill_chunking: tuple[str, ...]
    launcher_defaults: LauncherDefaults
    log_lines: LogLines
    refusals: Refusals

    def attention_backend(self, head_dim: int, system: System) -> AttentionBackend:
        """The ATTENTION the launcher resolves (launcher/src/main.rs resolve_attention), or the image sets."""
        if system is System.INTEL_CPU:
            return self.attention.cpu_image
        if head_dim in self.attention.flashinfer_head_dims:
            return AttentionBackend.FLASHINFER
        return self.attention.fallback

    def block_size(self, head_dim: int, system: System) -> int:
        return self.attention.block_sizes[self.attention_backend(head_dim, system)]

    def kv_dtype_bytes(self, kv_cache_dtype: str | None = None) -> int:
        """Bytes per cached element: --kv-cache-dtype, else the model's dtype."""
        return self.kv_cache.dtype_bytes[kv_cache_dtype or self.kv_cache.default_dtype]

    def prefill_chunking(self, model_type: str) -> bool:
        """Whether TGI splits a prompt over several prefill batches for this checkpoint's model_type."""
        return model_type not in self.without_prefill_chunking

    def default_max_batch_prefill_tokens(self, model_type: str) -> int:
        """The launcher's --max-batch-prefill-tokens when it is not given and the GPU's flops are unknown."""
        defaults = self.launcher_defaults
        return defaults.max_batch_prefill_tokens.get(model_type, defaults.max_batch_prefill_tokens_otherwise)


@cache
def releases() -> Mapping[str, TgiRules]:
    """Every catalogued release, by version string."""
    data = yaml.safe_load(files("gemma_operator.catalog.versions").joinpath("tgi.yaml").read_text(encoding="utf-8"))
    return {
        version: TgiRules.model_validate({"version": version, **release["rules"]})
        for release in data["releases"]
        for version in release["versions"]
    }


def rules(version: str) -> TgiRules | None:
    """The rules of that release, or None when the catalog does not know it."""
    return releases().get(version)


@dataclass(frozen=True)
class TgiImage:
    version: str
    system: System


# ghcr.io/huggingface/text-generation-inference:3.3.7 and :3.3.7-intel-cpu; other suffixes (-rocm,
# -intel-xpu, -gaudi, -neuron) are other builds whose accounting this catalog does not hold.
_TAG = re.compile(r"(?P<version>\d+\.\d+\.\d+)(?:-(?P<system>intel-cpu))?")


def parse_image(image: str) -> TgiImage | None:
    """The release and build an image reference runs, from its tag; None for a bare digest, latest or another build.

    Only the tag is read, so a mirror of TGI's image in another registry is recognised too.
    """
    # A digest after the tag (3.3.7@sha256:...) pins the same release the tag names.
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in name:
        return None
    match = _TAG.fullmatch(name.split(":", 1)[1])
    if match is None:
        return None
    return TgiImage(match["version"], System(match["system"] or System.CUDA))


def model_type(variant: Variant) -> str | None:
    """The checkpoint's config.json model_type, which decides the class TGI loads it with (server/models/__init__.py).

    Gemma 3 checkpoints with a vision tower are "gemma3" (Gemma3ForConditionalGeneration); the text-only 1B
    is "gemma3_text". TGI has no Gemma 4 class.
    """
    if variant.family is not Family.GEMMA_3:
        return None
    return "gemma3" if variant.encoders.vision is not None else "gemma3_text"
