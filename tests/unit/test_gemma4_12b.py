"""Gemma 4 12B (Gemma4UnifiedForConditionalGeneration): its shapes, who serves it, and its KV cache."""

from __future__ import annotations

import pytest

from gemma_operator.api import Family, Runtime
from gemma_operator.catalog import lookup
from gemma_operator.catalog.versions import vllm as vllm_versions
from gemma_operator.planning.allocators import Knobs
from gemma_operator.planning.allocators import vllm as vllm_allocator

from .builders import plan_for

TWELVE = lookup(Family.GEMMA_4, "12b")


def test_its_parameters_give_twelve_billion() -> None:
    # 48 layers of hidden 3840 and FFN 15360, the tied 262144-token embedding, and an encoder-free embedder.
    assert TWELVE.parameters == pytest.approx(12.0e9, rel=0.01)
    assert TWELVE.attention.cache_owning_layers() == (40, 8)


def test_vllm_0_33_0_serves_it_on_one_h100() -> None:
    report = plan_for(model={"variant": "12b"})
    assert report.fits, report.problems
    assert report.runtime is not None
    assert report.runtime.name is Runtime.VLLM
    assert report.runtime.args[1] == "google/gemma-4-12B-it"
    assert report.placement is not None
    assert report.placement.gpus_per_replica == 1


def test_releases_without_its_class_refuse_it_with_the_reason() -> None:
    old = plan_for(model={"variant": "12b"}, serving={"image": "vllm/vllm-openai:v0.19.1"})
    assert not old.fits
    assert "vLLM 0.19.1 has no Gemma4UnifiedForConditionalGeneration" in old.problems[0]
    tgi = plan_for(model={"variant": "12b"}, serving={"runtime": "tgi"})
    assert "TGI 3.3.7, its last release, has no Gemma 4 architecture code" in tgi.problems[0]


def test_llamacpp_serves_it_on_cpu() -> None:
    report = plan_for(model={"variant": "12b"}, placement={"target": "cpu"}, serving={"maxConcurrentSequences": 1})
    assert report.runtime is not None
    assert report.runtime.name is Runtime.LLAMACPP
    assert report.runtime.args[:2] == ["-hf", "unsloth/gemma-4-12b-it-GGUF:BF16"]


def test_vllm_pages_its_one_global_kv_head_with_a_v_slot() -> None:
    rules = vllm_versions.rules("0.33.0")
    assert rules is not None
    groups = vllm_allocator.kv_cache_groups(TWELVE.attention, 1, rules)
    sliding = [group for group in groups if group.attention == "sliding"]
    full = [group for group in groups if group.attention == "full"]
    # Sliding pages (8 heads x 256 x K,V) are 4x the global ones (1 head x 512 x K,V): the global block holds
    # 4 x 16 tokens. 40 sliding layers in groups of 8 (the 8 global layers' count), 5 groups.
    assert {group.block_tokens for group in sliding} == {16}
    assert {group.block_tokens for group in full} == {64}
    assert (len(sliding), len(full)) == (5, 1)
    knobs = Knobs(context_tokens=8192, sequences=4, prefill_chunk_tokens=8192)
    accounting = vllm_allocator.account(TWELVE.attention, knobs, 40 * 2**30, rules)
    # A 8192-token request: 5 sliding groups of (8192 - 1 + 2 x 8192 capped at 8192) / 16 + 1 blocks and the
    # global group's 8192 / 64; each block is 8 layers' 16-token pages of 8 x 256 x 2 x 2 bytes.
    block = 8 * 16 * 8 * 256 * 2 * 2
    charged = 5 * (8192 // 16 + 1) + 8192 // 64
    assert accounting.bytes_per_sequence == charged * block
