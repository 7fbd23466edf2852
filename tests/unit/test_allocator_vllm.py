"""vLLM's KV cache allocator model: published vLLM log lines reproduced, and properties that must always hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_docgen.runtime_logs import (
    GEMMA_FORGE_TWO_L4S,
    ROBOTMUNKI_ANNOTATED_LOG,
    VLLM_ISSUE_39734,
    VLLM_RUNS,
    PublishedRun,
    pool_bytes,
    reproduce,
)
from gemma_operator.api import Family
from gemma_operator.catalog import lookup, variants
from gemma_operator.catalog.facts import Attention
from gemma_operator.catalog.versions.vllm import PINNED, VllmRules, known_versions, rules, version_of_image
from gemma_operator.planning.allocators.base import Knobs
from gemma_operator.planning.allocators.vllm import (
    account,
    default_batched_tokens,
    default_max_sequences,
    kv_cache_groups,
    pool_bytes_for,
)

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def _rules(version: str) -> VllmRules:
    found = rules(version)
    assert found is not None, version
    return found


V0_19_1, V0_33_0 = _rules("0.19.1"), _rules("0.33.0")
ATTENTION_31B = lookup(Family.GEMMA_4, "31b").attention


def _within_one_percent(computed: int, published: int) -> bool:
    return abs(computed - published) <= 0.01 * published


# --- Published log lines -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", VLLM_RUNS, ids=lambda run: run.name)
def test_published_log_lines(run: PublishedRun) -> None:
    """Each published vLLM line (gemma_docgen/runtime_logs.py holds the URL, the quoted lines and the inputs):
    the token count within 1%, the concurrency as printed."""
    reproduced = reproduce(run)
    assert _within_one_percent(reproduced.cache_tokens, run.cache_tokens), run.url
    assert round(reproduced.guaranteed, 2) == run.concurrency, run.url


def test_issue_39734_to_the_block() -> None:
    """https://github.com/vllm-project/vllm/issues/39734 logged 37,392 tokens: 2,337 blocks per group of the six
    groups (16 tokens each), so the pool held 14,022 to 14,027 blocks of 2.5 MiB. With that pool both figures are
    exact, and 1.53x needs --max-num-batched-tokens 2048 (8192 would give 1.27x)."""
    run = VLLM_ISSUE_39734
    derived_pool = account(run.attention, run.knobs, 14022 * int(2.5 * MIB), V0_19_1)
    assert (derived_pool.cache_tokens, round(derived_pool.guaranteed, 2)) == (run.cache_tokens, run.concurrency)
    at_default_chunk = account(ATTENTION_31B, Knobs(262144, 1, 8192), 14022 * int(2.5 * MIB), V0_19_1)
    assert round(at_default_chunk.guaranteed, 2) == 1.27


def test_gemma_forge_takes_the_default_chunk_of_an_l4() -> None:
    """https://kenrollins.github.io/gemma-forge/journal/gotchas/context-window-edge/ ran vLLM's default chunk: 3.58x
    then checks the per-rank KV heads (8 sliding, 2 global), the fp8 page and the sliding charge together."""
    assert default_batched_tokens(V0_19_1, 23034 / 1024, "NVIDIA-L4") == GEMMA_FORGE_TWO_L4S.knobs.prefill_chunk_tokens


def test_robotmunki_ran_one_batch_in_flight() -> None:
    """https://www.robotmunki.com/pages/vllm-startup-log-annotated.html: 0.33.0's default of two batches in flight
    (async scheduling) would have logged less than 5.97x from the same pool."""
    run = ROBOTMUNKI_ANNOTATED_LOG
    two_batches = account(run.attention, run.knobs, pool_bytes(run), V0_33_0)
    assert round(two_batches.guaranteed, 2) < (run.concurrency or 0)


@pytest.mark.parametrize("rules_at", [V0_19_1, V0_33_0], ids=lambda r: r.version)
def test_lmcache_e4b_block_sizes(rules_at: VllmRules) -> None:
    """https://docs.lmcache.ai/recipes/gemma4.html: for google/gemma-4-E4B-it vLLM unifies pages by giving the
    two attention types different block sizes, "sliding 32, full 16"."""
    groups = kv_cache_groups(lookup(Family.GEMMA_4, "e4b").attention, 1, rules_at)
    assert {(group.attention, group.block_tokens) for group in groups} == {("sliding", 32), ("full", 16)}


# --- Structure read from the source -------------------------------------------------------------------------------


def test_gemma_3_27b_pads_its_sliding_groups() -> None:
    # 52 sliding and 10 full layers: groups of 10, so six sliding groups hold 52 layers in 60 slots.
    groups = kv_cache_groups(lookup(Family.GEMMA_3, "27b").attention, 1, V0_19_1)
    assert sorted(group.layers for group in groups if group.attention == "sliding") == [8, 8, 9, 9, 9, 9]
    assert [group.layers for group in groups if group.attention == "full"] == [10]


def test_k_equals_v_layers_keep_a_v_slot() -> None:
    one_slot = V0_19_1.model_copy(
        update={"k_equals_v": V0_19_1.k_equals_v.model_copy(update={"separate_v_slot": False})}
    )
    knobs = Knobs(context_tokens=32768, sequences=1, prefill_chunk_tokens=2048)
    both = account(ATTENTION_31B, knobs, 20 * GIB, V0_19_1)
    single = account(ATTENTION_31B, knobs, 20 * GIB, one_slot)
    assert both.bytes_per_sequence > single.bytes_per_sequence


def test_pinned_release_charges_two_batches_in_flight() -> None:
    knobs = Knobs(context_tokens=32768, sequences=1, prefill_chunk_tokens=8192)
    assert (
        account(ATTENTION_31B, knobs, 20 * GIB, V0_33_0).bytes_per_sequence
        > account(ATTENTION_31B, knobs, 20 * GIB, V0_19_1).bytes_per_sequence
    )


def test_a_cache_too_small_for_one_request_keeps_vllm_from_starting() -> None:
    knobs = Knobs(context_tokens=262144, sequences=1, prefill_chunk_tokens=2048)
    needed = pool_bytes_for(ATTENTION_31B, knobs, V0_19_1)
    assert account(ATTENTION_31B, knobs, needed, V0_19_1).guaranteed == 1
    # 0.33.0 holds the null block (2.5 MiB for 31B on one GPU) back before the check: one request needs one more.
    assert pool_bytes_for(ATTENTION_31B, knobs, V0_33_0) == pool_bytes_for(
        ATTENTION_31B, knobs, V0_33_0.model_copy(update={"fit_check": V0_19_1.fit_check})
    ) + int(2.5 * MIB)


@pytest.mark.parametrize(
    ("rules_at", "memory_mib", "product", "tokens", "sequences"),
    [
        (V0_19_1, 81559, "NVIDIA-H100-80GB-HBM3", 8192, 1024),
        (V0_19_1, 81920, "NVIDIA-A100-SXM4-80GB", 2048, 256),
        (V0_19_1, 23034, "NVIDIA-L4", 2048, 256),
        (V0_19_1, 183359, "NVIDIA-B200", 8192, 1024),
        (V0_33_0, 143771, "NVIDIA-H200", 8192, 1024),
        (V0_33_0, 183359, "NVIDIA-B200", 16384, 1024),
        (V0_33_0, 81920, "NVIDIA-A100-SXM4-80GB", 2048, 256),
        (V0_33_0, 122572, "NVIDIA-GB10", 2048, 256),
    ],
)
def test_default_batch_limits_by_gpu(
    rules_at: VllmRules, memory_mib: int, product: str, tokens: int, sequences: int
) -> None:
    assert default_batched_tokens(rules_at, memory_mib / 1024, product) == tokens
    assert default_max_sequences(rules_at, memory_mib / 1024, product) == sequences


def test_versions() -> None:
    assert rules("0.1.0") is None
    assert PINNED in known_versions()
    assert version_of_image("vllm/vllm-openai:v0.19.1") == "0.19.1"
    assert version_of_image("docker.io/vllm/vllm-openai:v0.33.0-cu130") == "0.33.0"
    assert version_of_image("registry:5000/vllm/vllm-openai:v0.33.0@sha256:ab") == "0.33.0"
    assert version_of_image("vllm/vllm-openai:latest") is None
    assert version_of_image("registry:5000/vllm/vllm-openai") is None


@pytest.mark.parametrize("version", known_versions())
def test_every_release_serves_the_catalogued_architectures(version: str) -> None:
    architectures = _rules(version).support.architectures
    assert {"Gemma3ForConditionalGeneration", "Gemma4ForConditionalGeneration"} <= set(architectures)


# --- Properties ---------------------------------------------------------------------------------------------------

CATALOGUED = [variant.attention for variant in variants().values()]
attentions = st.sampled_from(CATALOGUED)
releases = st.sampled_from([V0_19_1, V0_33_0])
contexts = st.integers(min_value=1, max_value=262144)
chunks = st.integers(min_value=1, max_value=16384)
pools = st.integers(min_value=0, max_value=160 * GIB)
counts = st.integers(min_value=1, max_value=64)


def _valid_tensor_parallel(attention: Attention) -> list[int]:
    def fits(tp: int, kv: int) -> bool:
        return kv % tp == 0 if kv >= tp else tp % kv == 0

    return [
        tp
        for tp in (1, 2, 4, 8, 16)
        if attention.attention_heads % tp == 0 and all(fits(tp, kv) for kv in attention.head_counts()[1:])
    ]


@given(attentions, releases, contexts, contexts, chunks, pools)
def test_longer_contexts_never_admit_more(  # type: ignore[no-untyped-def]
    attention, rules_at, first: int, second: int, chunk: int, pool: int
) -> None:
    short, long = sorted((first, second))
    at_short = account(attention, Knobs(short, 1, chunk), pool, rules_at)
    at_long = account(attention, Knobs(long, 1, chunk), pool, rules_at)
    assert at_long.guaranteed <= at_short.guaranteed
    assert at_long.steady_decode <= at_short.steady_decode
    assert at_long.bytes_per_sequence >= at_short.bytes_per_sequence


@given(attentions, releases, contexts, chunks, chunks, pools)
def test_larger_chunks_never_admit_more(  # type: ignore[no-untyped-def]
    attention, rules_at, context: int, first: int, second: int, pool: int
) -> None:
    small, large = sorted((first, second))
    assert (
        account(attention, Knobs(context, 1, large), pool, rules_at).guaranteed
        <= account(attention, Knobs(context, 1, small), pool, rules_at).guaranteed
    )


@given(attentions, releases, contexts, chunks, pools, pools)
def test_a_larger_pool_never_holds_less(  # type: ignore[no-untyped-def]
    attention, rules_at, context: int, chunk: int, first: int, second: int
) -> None:
    small, large = sorted((first, second))
    knobs = Knobs(context, 1, chunk)
    less, more = account(attention, knobs, small, rules_at), account(attention, knobs, large, rules_at)
    assert more.cache_tokens >= less.cache_tokens
    assert more.guaranteed >= less.guaranteed
    assert more.steady_decode >= less.steady_decode


@given(attentions, releases, contexts, chunks, counts)
def test_pool_bytes_for_is_the_smallest_pool_that_admits_the_sequences(  # type: ignore[no-untyped-def]
    attention, rules_at, context: int, chunk: int, sequences: int
) -> None:
    knobs = Knobs(context, sequences, chunk)
    pool = pool_bytes_for(attention, knobs, rules_at)
    assert account(attention, knobs, pool, rules_at).guaranteed >= sequences
    if sequences > 1:
        assert account(attention, knobs, pool - 1, rules_at).guaranteed < sequences
    # Decode needs no more than the worst case vLLM charges.
    assert account(attention, knobs, pool, rules_at).steady_decode >= sequences - 1


@given(attentions, releases, contexts, contexts, chunks, chunks, counts, counts)
def test_pool_bytes_for_grows_with_every_knob(  # type: ignore[no-untyped-def]
    attention, rules_at, context_a: int, context_b: int, chunk_a: int, chunk_b: int, seqs_a: int, seqs_b: int
) -> None:
    low = Knobs(min(context_a, context_b), min(seqs_a, seqs_b), min(chunk_a, chunk_b))
    high = Knobs(max(context_a, context_b), max(seqs_a, seqs_b), max(chunk_a, chunk_b))
    assert pool_bytes_for(attention, low, rules_at) <= pool_bytes_for(attention, high, rules_at)


@given(attentions, releases, contexts, chunks)
def test_tensor_parallel_shares_the_cache_at_most_evenly(  # type: ignore[no-untyped-def]
    attention, rules_at, context: int, chunk: int
) -> None:
    alone = account(attention, Knobs(context, 1, chunk), 8 * GIB, rules_at).bytes_per_sequence
    for tp in _valid_tensor_parallel(attention):
        shared = account(attention, Knobs(context, 1, chunk, tp), 8 * GIB, rules_at).bytes_per_sequence
        assert shared <= alone
        # Heads replicate when a rank would get less than one, so the split is never better than even.
        assert shared * tp >= alone


@pytest.mark.parametrize(
    ("variant", "tensor_parallel"),
    [("31b", 3), ("31b", 64), ("e2b", 16), ("26b-a4b", 32)],
)
def test_tensor_parallel_must_divide_the_heads(variant: str, tensor_parallel: int) -> None:
    attention = lookup(Family.GEMMA_4, variant).attention
    with pytest.raises(ValueError, match="tensor parallel"):
        account(attention, Knobs(8192, 1, 2048, tensor_parallel), 8 * GIB, V0_19_1)


def test_heads_replicate_when_tensor_parallel_exceeds_them() -> None:
    # 31B's global layers have 4 KV heads: at TP 8 each rank keeps one, so they cost as much per rank as at TP 4.
    knobs4, knobs8 = Knobs(262144, 1, 2048, 4), Knobs(262144, 1, 2048, 8)
    full4 = [g for g in kv_cache_groups(ATTENTION_31B, 4, V0_19_1) if g.attention == "full"]
    full8 = [g for g in kv_cache_groups(ATTENTION_31B, 8, V0_19_1) if g.attention == "full"]
    assert (full4[0].block_tokens, full8[0].block_tokens) == (32, 16)
    assert account(ATTENTION_31B, knobs8, 8 * GIB, V0_19_1).bytes_per_sequence > (
        account(ATTENTION_31B, knobs4, 8 * GIB, V0_19_1).bytes_per_sequence // 2
    )
