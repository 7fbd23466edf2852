"""TGI's own KV-cache accounting (planning/allocators/tgi.py) against its source's rules and a published run."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_docgen.runtime_logs import TGI_TWO_A6000S, model_lines, planner_cache_tokens
from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import lookup, runtimes, variants
from gemma_operator.catalog.facts import Attention, Variant
from gemma_operator.catalog.versions.tgi import (
    PINNED,
    AttentionBackend,
    System,
    TgiImage,
    TgiRules,
    model_type,
    parse_image,
    rules,
)
from gemma_operator.planning.allocators import tgi
from gemma_operator.planning.allocators.base import Knobs
from gemma_operator.planning.weights import weights

MIB, GIB = 1 << 20, 1 << 30


def _pinned() -> TgiRules:
    found = rules(PINNED)
    assert found is not None
    return found


RULES = _pinned()
GEMMA_3 = [variant for (family, _), variant in variants().items() if family is Family.GEMMA_3]
GEMMA_3_27B = lookup(Family.GEMMA_3, "27b")


def _bf16_weight_bytes(variant: Variant) -> int:
    return int(weights(variant, Precision.BF16, Runtime.TGI).total_bytes)


@st.composite
def setups(draw: st.DrawFn) -> tuple[Attention, Knobs]:
    attention = draw(st.sampled_from(GEMMA_3)).attention
    heads = attention.global_.kv_heads
    tensor_parallel = draw(st.sampled_from([tp for tp in (1, 2, 4, 8) if heads % tp == 0]))
    knobs = Knobs(
        context_tokens=draw(st.integers(2, 131072)),
        sequences=draw(st.integers(1, 64)),
        prefill_chunk_tokens=draw(st.integers(1, 65536)),
        tensor_parallel=tensor_parallel,
    )
    return attention, knobs


systems = st.sampled_from(list(System))
pools = st.integers(0, 200 * GIB)


@given(setups(), systems, st.integers(2, 131072), pools)
def test_longer_contexts_never_admit_more(
    setup: tuple[Attention, Knobs], system: System, other: int, pool: int
) -> None:
    attention, knobs = setup
    short, long = sorted((knobs.context_tokens, other))
    at = {
        c: tgi.account(
            attention, Knobs(c, 1, knobs.prefill_chunk_tokens, knobs.tensor_parallel), pool, RULES, system=system
        )
        for c in (short, long)
    }
    assert at[long].guaranteed <= at[short].guaranteed
    assert at[long].bytes_per_sequence >= at[short].bytes_per_sequence


@given(setups(), systems, pools, pools)
def test_a_larger_pool_never_fits_fewer(setup: tuple[Attention, Knobs], system: System, a: int, b: int) -> None:
    attention, knobs = setup
    small, large = (tgi.account(attention, knobs, pool, RULES, system=system) for pool in sorted((a, b)))
    assert large.cache_tokens >= small.cache_tokens
    assert large.guaranteed >= small.guaranteed


@given(setups(), systems, st.integers(1, 64), st.integers(2, 131072), st.integers(1, 65536))
def test_the_pool_needed_grows_with_every_knob(
    setup: tuple[Attention, Knobs], system: System, sequences: int, context: int, prefill: int
) -> None:
    attention, knobs = setup

    def need(k: Knobs) -> int:
        return tgi.pool_bytes_for(attention, k, RULES, system=system)

    base = need(knobs)
    assert (
        need(
            Knobs(
                knobs.context_tokens, max(sequences, knobs.sequences), knobs.prefill_chunk_tokens, knobs.tensor_parallel
            )
        )
        >= base
    )
    assert (
        need(
            Knobs(
                max(context, knobs.context_tokens), knobs.sequences, knobs.prefill_chunk_tokens, knobs.tensor_parallel
            )
        )
        >= base
    )
    assert (
        need(
            Knobs(
                knobs.context_tokens, knobs.sequences, max(prefill, knobs.prefill_chunk_tokens), knobs.tensor_parallel
            )
        )
        >= base
    )


@given(setups(), systems)
def test_pool_bytes_for_is_the_smallest_pool_that_admits_the_sequences(
    setup: tuple[Attention, Knobs], system: System
) -> None:
    attention, knobs = setup
    need = tgi.pool_bytes_for(attention, knobs, RULES, system=system)
    assert tgi.account(attention, knobs, need, RULES, system=system).guaranteed >= knobs.sequences
    assert tgi.account(attention, knobs, need - 1, RULES, system=system).guaranteed < knobs.sequences


@given(setups(), systems, pools)
def test_decode_needs_what_admission_charges(setup: tuple[Attention, Knobs], system: System, pool: int) -> None:
    # No sliding-window saving anywhere in TGI: the working set of a decoding sequence is its admission charge.
    attention, knobs = setup
    accounting = tgi.account(attention, knobs, pool, RULES, system=system)
    assert accounting.steady_decode == accounting.guaranteed


@given(setups(), systems, pools, st.integers(1, 65536))
def test_the_sliding_window_changes_nothing(
    setup: tuple[Attention, Knobs], system: System, pool: int, window: int
) -> None:
    attention, knobs = setup
    other = attention.model_copy(update={"sliding_window": window})
    assert tgi.account(other, knobs, pool, RULES, system=system) == tgi.account(
        attention, knobs, pool, RULES, system=system
    )


@given(setups())
def test_tensor_parallel_splits_the_kv_heads(setup: tuple[Attention, Knobs]) -> None:
    attention, knobs = setup
    per_shard = tgi.bytes_per_token(attention, knobs.tensor_parallel, RULES)
    assert per_shard * knobs.tensor_parallel == tgi.bytes_per_token(attention, 1, RULES)


def test_a_degree_that_does_not_divide_the_kv_heads_is_refused() -> None:
    with pytest.raises(ValueError, match="does not divide the 16 KV heads"):
        tgi.bytes_per_token(GEMMA_3_27B.attention, 3, RULES)


def test_a_model_with_two_layer_shapes_is_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        tgi.bytes_per_token(lookup(Family.GEMMA_4, "31b").attention, 1, RULES)


@given(setups(), pools)
def test_the_cpu_build_pads_each_sequence_to_64_token_blocks(setup: tuple[Attention, Knobs], pool: int) -> None:
    attention, knobs = setup
    per_token = tgi.bytes_per_token(attention, knobs.tensor_parallel, RULES)
    charge = tgi.account(attention, knobs, pool, RULES, system=System.INTEL_CPU).bytes_per_sequence
    assert charge % (64 * per_token) == 0
    assert (knobs.context_tokens - 1) * per_token <= charge < (knobs.context_tokens - 1 + 64) * per_token


def test_every_layer_is_cached_at_full_length() -> None:
    # Gemma 3 27B: 62 layers x 16 KV heads x 128 x 2 (K, V) x 2 bytes = 496 KiB per token, sliding layers included;
    # a 32K sequence is charged 32767 of them (input + max_new_tokens - 1).
    one = tgi.account(GEMMA_3_27B.attention, Knobs(32768, 1, 32768), 100 * GIB, RULES)
    assert one.bytes_per_sequence == 32767 * 496 * 1024


def test_gemma_3_27b_at_32k_by_4_is_not_one_h100() -> None:
    """Issue 13: the planner put 32K x 4 on one H100; TGI's warmup leaves room for at most one sequence.

    81559 MiB x 0.9 (--cuda-memory-fraction) x 0.9 (TGI_WIGGLE_ROOM) = 64.5 GiB, less the 53.7 GiB of bf16
    weights TGI holds (the tied embeddings twice), leaves 10.8 GiB of cache before any activation: 22814
    tokens, under max_total_tokens, so TGI stops.
    """
    h100, weights = 81559 * MIB, _bf16_weight_bytes(GEMMA_3_27B)
    knobs = Knobs(context_tokens=32768, sequences=4, prefill_chunk_tokens=32768)
    at_plan = tgi.account(
        GEMMA_3_27B.attention, knobs, tgi.pool_bytes(h100, weights, RULES, cuda_memory_fraction=0.9), RULES
    )
    assert at_plan.cache_tokens == 22814
    assert at_plan.guaranteed == 0
    assert (
        tgi.refusal(knobs, at_plan.cache_tokens, False, RULES) == "Not enough memory to handle `max_total_tokens=32768`"
    )
    # At TGI's own default fraction (1.0) the same GPU holds one sequence, still before activations.
    at_default = tgi.account(GEMMA_3_27B.attention, knobs, tgi.pool_bytes(h100, weights, RULES), RULES)
    assert at_default.guaranteed == 1
    # The four need 62 GiB of cache per GPU on one GPU; on two (8 KV heads each) the weights and cache fit.
    assert round(tgi.pool_bytes_for(GEMMA_3_27B.attention, knobs, RULES) / GIB, 1) == 62.0
    two = Knobs(32768, 4, 32768, tensor_parallel=2)
    pool_each = tgi.pool_bytes(h100, weights // 2, RULES, cuda_memory_fraction=0.9)
    assert tgi.account(GEMMA_3_27B.attention, two, pool_each, RULES).guaranteed >= 4


# A published TGI run (gemma_docgen/runtime_logs.py TGI_TWO_A6000S): gemma-3-27b-it on two RTX A6000s, --num-shard 2,
# every other knob at its default, TGI 3.3.4, whose accounting is 3.3.7's. Its lines, verbatim:
A6000 = TGI_TWO_A6000S
A6000_BLOCKS, A6000_ROUTER = A6000.printed
A6000_ATTENTION, A6000_PREFILL, A6000_TOTAL = A6000.also_printed


def test_published_a6000_run_resolves_the_same_backend_and_defaults() -> None:
    head_dim = GEMMA_3_27B.attention.global_.head_dim
    assert RULES.attention_backend(head_dim, System.CUDA) is AttentionBackend.FLASHINFER
    assert A6000_ATTENTION.startswith(f"Using attention {RULES.attention_backend(head_dim, System.CUDA)}")
    assert A6000_BLOCKS.endswith(f"size: {tgi.block_size(GEMMA_3_27B.attention, RULES)}")
    gemma3 = model_type(GEMMA_3_27B)
    assert gemma3 is not None
    assert A6000_PREFILL.endswith(str(RULES.default_max_batch_prefill_tokens(gemma3)))
    # Without chunking TGI defaults max_total_tokens to the warmup's prefill (FlashCausalLM.warmup).
    assert not RULES.prefill_chunking(gemma3)
    assert A6000_TOTAL.endswith(str(A6000.knobs.context_tokens))


def test_published_a6000_run_prints_the_lines_the_model_prints() -> None:
    assert model_lines(A6000) == ("KV-cache blocks: 52125, size: 1", A6000_ROUTER)


@pytest.mark.parametrize("logged_tokens", [52719, 52125])
def test_published_a6000_cache_is_every_layer_at_full_length_on_half_the_heads(logged_tokens: int) -> None:
    """What the log's cache costs at TGI's per-token charge must fit what the GPU had after the weights.

    Per shard: 49140 MiB x 1.0 x 0.9 = 43.2 GiB, less 26.9 GiB of weights (half of what TGI holds, the tied
    embeddings twice), holds the logged 52125-52719 tokens at 248 KiB each (62 layers, 8 of 16 KV heads) with
    3.9-4.0 GiB left for the CUDA context and the prefill's activations. Were the heads not split, or only the
    global layers stored, the remainder would be negative or over 15 GiB.
    """
    assert A6000.device_mib is not None
    budget = tgi.pool_bytes(A6000.device_mib * MIB, _bf16_weight_bytes(GEMMA_3_27B) // 2, RULES)
    cache = logged_tokens * tgi.bytes_per_token(GEMMA_3_27B.attention, 2, RULES)
    assert 3 * GIB < budget - cache < 5 * GIB


def test_the_planners_sizing_of_the_a6000_run_is_at_most_what_tgi_logged() -> None:
    """The planner sizes TGI's pool from the GPU, the weights and its overhead model: never more cache than the
    published run's 52,125 tokens (a plan must not promise what TGI will not allocate), and within 2% of it."""
    predicted = planner_cache_tokens(TGI_TWO_A6000S)
    assert predicted is not None
    assert 0.98 * 52125 <= predicted <= 52125


def test_a_vision_gemma_must_prefill_a_whole_prompt_at_once() -> None:
    knobs = Knobs(context_tokens=32768, sequences=1, prefill_chunk_tokens=8192)
    gemma3, text_only = model_type(GEMMA_3_27B), model_type(lookup(Family.GEMMA_3, "1b"))
    assert (gemma3, text_only) == ("gemma3", "gemma3_text")
    assert tgi.refusal(knobs, 100000, RULES.prefill_chunking(gemma3), RULES) == (
        "`max_batch_prefill_tokens` must be >= `max_input_tokens`. Given: 8192 and 32767"
    )
    assert tgi.refusal(knobs, 100000, RULES.prefill_chunking(text_only), RULES) is None


def test_a_prefill_larger_than_the_cache_stops_tgi() -> None:
    knobs = Knobs(context_tokens=4096, sequences=1, prefill_chunk_tokens=16384)
    per_token = tgi.bytes_per_token(GEMMA_3_27B.attention, 1, RULES)
    accounting = tgi.account(GEMMA_3_27B.attention, knobs, 10000 * per_token, RULES)
    assert accounting.cache_tokens == 10000
    assert accounting.guaranteed == 0
    assert tgi.refusal(knobs, accounting.cache_tokens, True, RULES) == (
        "`max_batch_prefill_tokens` must be <= `max_batch_total_tokens`. Given: 16384 and 10000"
    )


def test_block_zero_is_never_lent() -> None:
    # Exactly two sequences' worth of blocks admits one: block 0 is kept for health checks.
    knobs = Knobs(context_tokens=1001, sequences=2, prefill_chunk_tokens=1000)
    per_token = tgi.bytes_per_token(GEMMA_3_27B.attention, 1, RULES)
    assert tgi.account(GEMMA_3_27B.attention, knobs, 2000 * per_token, RULES).guaranteed == 1
    assert tgi.account(GEMMA_3_27B.attention, knobs, 2001 * per_token, RULES).guaranteed == 2


def test_the_cpu_build_takes_95_percent_of_the_ram_left_split_over_shards() -> None:
    assert tgi.pool_bytes(64 * GIB, 24 * GIB, RULES, system=System.INTEL_CPU, shards=2) == int(40 * GIB * 0.95 / 2)
    assert tgi.pool_bytes(8 * GIB, 9 * GIB, RULES, system=System.INTEL_CPU) == 0


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/huggingface/text-generation-inference:3.3.7", TgiImage("3.3.7", System.CUDA)),
        ("ghcr.io/huggingface/text-generation-inference:3.3.7-intel-cpu", TgiImage("3.3.7", System.INTEL_CPU)),
        ("registry.local:5000/mirror/text-generation-inference:3.2.1", TgiImage("3.2.1", System.CUDA)),
        ("ghcr.io/huggingface/text-generation-inference:3.3.7-rocm", None),
        ("ghcr.io/huggingface/text-generation-inference:latest", None),
        ("ghcr.io/huggingface/text-generation-inference", None),
        ("registry.local:5000/text-generation-inference", None),
        ("ghcr.io/huggingface/text-generation-inference@sha256:" + "0" * 64, None),
        ("ghcr.io/huggingface/text-generation-inference:3.3.5@sha256:" + "0" * 64, TgiImage("3.3.5", System.CUDA)),
    ],
)
def test_image_tags_name_their_release(image: str, expected: TgiImage | None) -> None:
    assert parse_image(image) == expected


def test_the_catalogued_images_run_the_pinned_release() -> None:
    images = runtimes()[Runtime.TGI].images
    assert parse_image(images[Target.GPU].image) == TgiImage(PINNED, System.CUDA)
    assert parse_image(images[Target.CPU].image) == TgiImage(PINNED, System.INTEL_CPU)


def test_unknown_releases_have_no_rules() -> None:
    assert rules("3.2.1") is None
    assert rules("3.3.7") is RULES
    assert model_type(lookup(Family.GEMMA_4, "31b")) is None
