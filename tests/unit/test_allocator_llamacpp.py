"""llama.cpp's KV cache model (planning/allocators/llamacpp.py) and its versioned facts (catalog/versions/llamacpp).

The model is checked against the real llama-server in e2e/test_real_llamacpp_kv.py; here: its properties over every
catalogued Gemma variant, a line recorded from that real server, and the mapping of image tags to builds.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_docgen.runtime_logs import LLAMACPP_26B_A4B_SWA
from gemma_operator.api import Family, Runtime, Target
from gemma_operator.catalog import runtimes, variants
from gemma_operator.catalog.facts import Attention
from gemma_operator.catalog.versions import llamacpp as versions
from gemma_operator.planning.allocators.base import Knobs
from gemma_operator.planning.allocators.llamacpp import (
    account,
    checkpoint_bytes,
    kv_cache_bytes,
    layout,
    pool_bytes_for,
)

RULES = [versions.rules(build) for build in versions.versions().builds]
ATTENTIONS = {f"{v.family.value} {v.name}": v.attention for v in variants().values()}
MiB = 1024 * 1024

attentions = st.sampled_from(sorted(ATTENTIONS)).map(ATTENTIONS.__getitem__)
rule_sets = st.sampled_from([rules for rules in RULES if rules is not None])
contexts = st.integers(1, 262144)
slots = st.integers(1, 16)
ubatches = st.integers(1, 4096)


def knobs(context: int, sequences: int, ubatch: int) -> Knobs:
    return Knobs(context_tokens=context, sequences=sequences, prefill_chunk_tokens=ubatch)


@given(attentions, rule_sets, contexts, contexts, slots, ubatches)
def test_the_cache_grows_with_the_context(
    attention: Attention, rules: versions.LlamaCppRules, a: int, b: int, sequences: int, ubatch: int
) -> None:
    small, large = sorted((a, b))
    assert kv_cache_bytes(attention, knobs(small, sequences, ubatch), rules) <= kv_cache_bytes(
        attention, knobs(large, sequences, ubatch), rules
    )
    assert checkpoint_bytes(attention, knobs(small, sequences, ubatch), rules, 4) <= checkpoint_bytes(
        attention, knobs(large, sequences, ubatch), rules, 4
    )


@given(attentions, rule_sets, contexts, slots, slots, ubatches)
def test_the_cache_grows_with_the_slots(
    attention: Attention, rules: versions.LlamaCppRules, context: int, a: int, b: int, ubatch: int
) -> None:
    few, many = sorted((a, b))
    assert kv_cache_bytes(attention, knobs(context, few, ubatch), rules) <= kv_cache_bytes(
        attention, knobs(context, many, ubatch), rules
    )
    assert checkpoint_bytes(attention, knobs(context, few, ubatch), rules, 4) <= checkpoint_bytes(
        attention, knobs(context, many, ubatch), rules, 4
    )


@given(attentions, rule_sets, contexts, slots, ubatches, ubatches)
def test_the_sliding_cache_grows_with_the_ubatch(
    attention: Attention, rules: versions.LlamaCppRules, context: int, sequences: int, a: int, b: int
) -> None:
    small, large = sorted((a, b))
    assert kv_cache_bytes(attention, knobs(context, sequences, small), rules) <= kv_cache_bytes(
        attention, knobs(context, sequences, large), rules
    )


@given(attentions, rule_sets, contexts, slots, ubatches)
def test_every_slot_gets_at_least_its_context_in_whole_pages(
    attention: Attention, rules: versions.LlamaCppRules, context: int, sequences: int, ubatch: int
) -> None:
    caches = layout(attention, knobs(context, sequences, ubatch), rules)
    assert caches.slot_tokens >= context
    assert caches.slot_tokens % rules.context_pad_tokens.value == 0
    assert caches.full.streams == caches.sliding.streams == sequences
    # The sliding cache holds the window and one ubatch, unless the slot is shorter than that.
    assert caches.sliding.cells >= min(attention.sliding_window + caches.ubatch_tokens, caches.slot_tokens)
    assert caches.sliding.cells <= caches.slot_tokens
    assert caches.sliding.cells % rules.sliding_pad_tokens.value == 0
    assert caches.ubatch_tokens <= min(ubatch, rules.default_batch_tokens.value)


@given(attentions, rule_sets, contexts, slots, ubatches, st.integers(0, 2**42), st.integers(0, 2**42))
def test_a_larger_pool_never_holds_fewer_slots(
    attention: Attention, rules: versions.LlamaCppRules, context: int, sequences: int, ubatch: int, a: int, b: int
) -> None:
    small, large = sorted((a, b))
    plan = knobs(context, sequences, ubatch)
    less, more = account(attention, plan, small, rules, 2), account(attention, plan, large, rules, 2)
    assert less.guaranteed <= more.guaranteed <= sequences
    assert less.steady_decode <= more.steady_decode <= sequences
    assert more.guaranteed <= more.steady_decode


@given(attentions, rule_sets, contexts, slots, ubatches, st.integers(0, 64))
def test_the_pool_it_asks_for_is_exactly_enough(
    attention: Attention, rules: versions.LlamaCppRules, context: int, sequences: int, ubatch: int, checkpoints: int
) -> None:
    plan = knobs(context, sequences, ubatch)
    needed = pool_bytes_for(attention, plan, rules, checkpoints)
    assert needed == kv_cache_bytes(attention, plan, rules) + checkpoint_bytes(attention, plan, rules, checkpoints)
    assert account(attention, plan, needed, rules, checkpoints).guaranteed == sequences
    assert account(attention, plan, needed - 1, rules, checkpoints).guaranteed == sequences - 1


@given(attentions, rule_sets, contexts, slots, ubatches)
def test_without_a_checkpoint_bound_the_build_default_is_kept(
    attention: Attention, rules: versions.LlamaCppRules, context: int, sequences: int, ubatch: int
) -> None:
    plan = knobs(context, sequences, ubatch)
    default = rules.ctx_checkpoints_default.value
    assert pool_bytes_for(attention, plan, rules) == pool_bytes_for(attention, plan, rules, default)
    assert pool_bytes_for(attention, plan, rules, 0) == kv_cache_bytes(attention, plan, rules)


def test_a_line_recorded_from_the_real_llama_server() -> None:
    """The SWA cache line llama-server build 11669 logged (gemma_docgen/runtime_logs.py LLAMACPP_26B_A4B_SWA), read
    field by field against the model's layout, and printed as the build prints it."""
    recorded = LLAMACPP_26B_A4B_SWA
    rules = versions.rules(recorded.build)
    assert rules is not None
    sliding = layout(recorded.attention, recorded.knobs, rules).sliding
    found = re.search(
        r"\((\s*\d+) cells,\s*(\d+) layers,\s*\d+/(\d+) seqs\), K \(f16\):\s*(\S+) MiB, V \(f16\):\s*(\S+) MiB",
        recorded.printed,
    )
    assert found
    cells, layers, streams, k_mib, v_mib = found.groups()
    assert (sliding.cells, sliding.layers, sliding.streams) == (int(cells), int(layers), int(streams))
    assert (f"{sliding.k_bytes / MiB:.2f}", f"{sliding.v_bytes / MiB:.2f}") == (k_mib, v_mib)
    assert recorded.model_line() == recorded.printed


def test_llama_cpp_shards_nothing() -> None:
    attention = variants()[(Family.GEMMA_3, "1b")].attention
    rules = versions.pinned_rules()
    with pytest.raises(ValueError, match="tensor_parallel"):
        kv_cache_bytes(attention, Knobs(4096, 1, 512, tensor_parallel=2), rules)


def test_the_rendered_image_is_the_pinned_build() -> None:
    facts = runtimes()[Runtime.LLAMACPP]
    for target in (Target.CPU, Target.EDGE):
        assert versions.build_of(facts.images[target].image) == versions.pinned_rules().build


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("ghcr.io/ggml-org/llama.cpp:server-b11243", 11243),
        ("ghcr.io/ggml-org/llama.cpp:server-vulkan-b11669@sha256:f9115c95", 11669),
        ("registry.local:5000/mirror/llama.cpp:full-b11243", 11243),
        ("b11669", 11669),
        ("11243", 11243),
        ("0.7.0+dfsg", 11669),
        ("1:0.7.0+dfsg-2", 11669),
        ("ghcr.io/ggml-org/llama.cpp:server", None),
        ("registry.local:5000/llama.cpp", None),
        ("0.6.9+dfsg-1", None),
    ],
)
def test_image_tags_and_debian_versions_name_their_build(version: str, build: int | None) -> None:
    assert versions.build_of(version) == build


def test_only_catalogued_builds_have_rules() -> None:
    assert versions.rules("ghcr.io/ggml-org/llama.cpp:server-b11243") == versions.pinned_rules()
    assert versions.rules("0.7.0+dfsg-2") == versions.rules("b11669") is not None
    assert versions.rules("server-b99") is None
    assert versions.rules("server") is None


def test_the_catalog_layer_pattern_of_gemma_3_is_the_one_llama_cpp_fixes() -> None:
    """gemma3 GGUFs carry no layer pattern: llama.cpp's own rule decides which layers are global."""
    for rules in RULES:
        assert rules is not None
        fixed = rules.architectures["gemma3"].global_every
        for variant in variants().values():
            if variant.family is Family.GEMMA_3:
                assert variant.attention.global_every == fixed, variant.label
