"""KV cache sizing: reference/gemma4.md's worked 31B example, and properties that must always hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Family, Runtime
from gemma_operator.catalog import lookup, runtimes, variants
from gemma_operator.planning.memory import kv_bytes_per_sequence, kv_cache_gib, naive_kv_cache_gib

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
VLLM = runtimes()[Runtime.VLLM]
ATTENTION_31B = lookup(Family.GEMMA_4, "31b").attention


@pytest.mark.parametrize(
    ("what", "context", "expected_bytes"),
    [
        # Sliding: 16 KV heads x 256 x 2 (K, V) x 2 bytes = 16 KiB per layer per token, 50 layers = 800 KiB per token.
        ("sliding, one token", 1, 800 * KIB + 80 * KIB),
        # ... capped at the 1024-token window: 800 MiB per sequence at most.
        ("sliding cap reached", 1024, 800 * MIB + 80 * KIB * 1024),
        # Global: 4 KV heads x 512 x 2 x 2 = 8 KiB per layer per token, 10 layers = 80 KiB per token:
        ("32K context", 32768, 800 * MIB + int(2.5 * GIB)),  # 2.5 GiB of global cache at 32K
        ("256K context", 262144, 800 * MIB + 20 * GIB),  # 20 GiB of global cache at 256K
    ],
)
def test_worked_31b_example(what: str, context: int, expected_bytes: int) -> None:
    assert kv_bytes_per_sequence(ATTENTION_31B, context, VLLM) == expected_bytes, what


def test_runtime_that_stores_k_equals_v_once_halves_the_global_cache() -> None:
    single = VLLM.model_copy(update={"allocates_shared_kv_twice": False})
    assert kv_bytes_per_sequence(ATTENTION_31B, 32768, single) == 800 * MIB + int(1.25 * GIB)


def test_shared_kv_layers_hold_nothing() -> None:
    e2b = lookup(Family.GEMMA_4, "e2b").attention
    unshared = e2b.model_copy(update={"kv_shared_layers": 0})
    assert kv_bytes_per_sequence(e2b, 8192, VLLM) < kv_bytes_per_sequence(unshared, 8192, VLLM)


def test_naive_formula_overestimates_long_contexts_several_fold() -> None:
    ours = kv_cache_gib(ATTENTION_31B, 131072, 1, VLLM)
    assert naive_kv_cache_gib(ATTENTION_31B, 131072, 1) > 5 * ours


attentions = st.sampled_from([variant.attention for variant in variants().values()])
contexts = st.integers(min_value=1, max_value=262144)
sequences = st.integers(min_value=1, max_value=256)


@given(attentions, contexts, contexts, sequences)
def test_kv_cache_grows_monotonically_with_context(attention, first: int, second: int, count: int) -> None:  # type: ignore[no-untyped-def]
    low, high = sorted((first, second))
    assert kv_cache_gib(attention, low, count, VLLM) <= kv_cache_gib(attention, high, count, VLLM)


@given(attentions, contexts, sequences, sequences)
def test_kv_cache_grows_monotonically_with_concurrency(attention, context: int, first: int, second: int) -> None:  # type: ignore[no-untyped-def]
    low, high = sorted((first, second))
    assert kv_cache_gib(attention, context, low, VLLM) <= kv_cache_gib(attention, context, high, VLLM)


@given(attentions, contexts, sequences)
def test_never_more_than_the_naive_formula(attention, context: int, count: int) -> None:  # type: ignore[no-untyped-def]
    assert kv_cache_gib(attention, context, count, VLLM) <= naive_kv_cache_gib(attention, context, count)
