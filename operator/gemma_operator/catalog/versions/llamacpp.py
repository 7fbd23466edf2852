"""llama.cpp's facts per build (llamacpp.yaml): the defaults and constants its KV cache sizing depends on.

llama.cpp versions itself by build number (the commit count of master): images are tagged
ghcr.io/ggml-org/llama.cpp:server-b11243 (and -cuda-, -vulkan-, full-, light- variants of the same build), and
Debian's llama.cpp package carries its own version (0.7.0+dfsg) for a build its --version names.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from pydantic import Field

from gemma_operator.catalog.facts import Fact

PINNED = "b11243"


class Sourced(Fact):
    source: str = Field(min_length=1)


class Count(Sourced):
    value: int = Field(ge=0)


class Flag(Sourced):
    value: bool


class Choice(Sourced):
    value: str = Field(min_length=1)


class ArchitectureFacts(Fact):
    """How llama.cpp lays out one architecture's layers: which are sliding-window, which own a KV cache."""

    layer_pattern: Choice
    # Set where llama.cpp fixes the pattern itself (a GGUF without attention.sliding_window_pattern).
    global_every: int | None = Field(default=None, gt=0)
    kv_sharing: Choice


class LlamaCppRules(Fact):
    """One build's facts. The formulas that combine them are in planning/allocators/llamacpp.py."""

    build: int = Field(gt=0)
    read_from: str = Field(min_length=1)
    context_pad_tokens: Count
    sliding_pad_tokens: Count
    default_batch_tokens: Count
    default_ubatch_tokens: Count
    kv_unified_default: Flag
    auto_parallel_slots: Count
    kv_element_bytes: Count
    ctx_checkpoints_default: Count
    checkpoint_min_step_tokens: Count
    cache_ram_mi_b_default: Count = Field(alias="cacheRamMiBDefault")
    checkpoint_cell_meta_bytes: Count
    threads_default: Choice
    flash_attention_default: Choice
    fit_default: Flag
    kv_cache_log_line: Choice
    architectures: dict[str, ArchitectureFacts]

    @property
    def version(self) -> str:
        """e.g. b11243"""
        return f"b{self.build}"


class LlamaCppVersions(Fact):
    debian_versions: dict[str, int]
    builds: dict[str, LlamaCppRules]


@cache
def versions() -> LlamaCppVersions:
    """Every catalogued build, validated (a bad file names its field)."""
    data: Any = yaml.safe_load(
        files("gemma_operator.catalog.versions").joinpath("llamacpp.yaml").read_text(encoding="utf-8")
    )
    return LlamaCppVersions.model_validate(data)


# A tag names its build as b<N> at its end: server-b11243, server-cuda-b11243, full-b11243, b11243.
_TAG_BUILD = re.compile(r"(?:^|-)b(\d+)$")
_BUILD_NUMBER = re.compile(r"\d+")
# A Debian version: [epoch:]upstream[+dfsg...][-revision], e.g. 1:0.7.0+dfsg-2.
_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?(?P<upstream>\d+(?:\.\d+)+)(?:\+[^-]*)?(?:-[\w.+~]+)?$")


def build_of(version: str) -> int | None:
    """The llama.cpp build a version string names, or None when it names none the catalog can tell.

    Accepts a build (11243, b11243), an image reference or tag (ghcr.io/ggml-org/llama.cpp:server-b11243,
    ...@sha256:..., server-vulkan-b11243) and a Debian package version of a catalogued build (0.7.0+dfsg-2).
    A moving tag such as `server` names no build.
    """
    text = version.strip().split("@", 1)[0]
    tag = text.rsplit(":", 1)[-1] if ":" in text.rsplit("/", 1)[-1] else text
    if _BUILD_NUMBER.fullmatch(tag):
        return int(tag)
    found = _TAG_BUILD.search(tag)
    if found:
        return int(found[1])
    debian = _DEBIAN_VERSION.match(text)
    if debian:
        return versions().debian_versions.get(debian["upstream"])
    return None


def rules(version: str) -> LlamaCppRules | None:
    """The rules of the build a version string names (see build_of), or None for a build the catalog lacks."""
    build = build_of(version)
    if build is None:
        return None
    return versions().builds.get(f"b{build}")


def pinned_rules() -> LlamaCppRules:
    """The rules of the pinned build, the image the catalog renders."""
    found = rules(PINNED)
    assert found is not None, f"llamacpp.yaml lacks the pinned build {PINNED}"
    return found
