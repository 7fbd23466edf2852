"""KV cache by the runtimes' own accounting: what always holds, and how far off the naive formula is."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Family
from gemma_operator.catalog import Attention, lookup, variants
from gemma_operator.catalog.versions import llamacpp as llamacpp_versions
from gemma_operator.catalog.versions import vllm as vllm_versions
from gemma_operator.planning.allocators import Knobs, llamacpp, vllm
from gemma_operator.planning.memory import naive_kv_cache_gib

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
VLLM = vllm_versions.rules(vllm_versions.PINNED)
assert VLLM is not None
LLAMACPP = llamacpp_versions.pinned_rules()
ATTENTION_31B = lookup(Family.GEMMA_4, "31b").attention


def test_the_31b_decode_working_set_is_the_window_plus_the_global_context() -> None:
    """reference/gemma4.md: sliding layers 800 KiB a token up to the 1024-token window, global 80 KiB a token.

    At 32K that is 800 MiB + 2.5 GiB a sequence; vLLM rounds each to whole blocks (one more for the window).
    """
    knobs = Knobs(context_tokens=32768, sequences=1, prefill_chunk_tokens=2048)
    per_sequence = 800 * MIB + int(2.5 * GIB)
    steady = vllm.account(ATTENTION_31B, knobs, 10 * per_sequence, VLLM).steady_decode
    assert steady == 9  # not 10: the window's extra block and the pool's null block


def test_shared_kv_layers_hold_nothing() -> None:
    e2b = lookup(Family.GEMMA_4, "e2b").attention
    unshared = e2b.model_copy(update={"kv_shared_layers": 0})
    knobs = Knobs(context_tokens=8192, sequences=1, prefill_chunk_tokens=2048)
    for charge in (
        lambda attention: vllm.pool_bytes_for(attention, knobs, VLLM),
        lambda attention: llamacpp.kv_cache_bytes(attention, knobs, LLAMACPP),
    ):
        assert charge(e2b) < charge(unshared)


def test_naive_formula_overestimates_long_contexts_several_fold() -> None:
    knobs = Knobs(context_tokens=131072, sequences=1, prefill_chunk_tokens=2048)
    charged = vllm.pool_bytes_for(ATTENTION_31B, knobs, VLLM) / GIB
    assert naive_kv_cache_gib(ATTENTION_31B, 131072, 1) > 5 * charged


attentions = st.sampled_from([variant.attention for variant in variants().values()])
contexts = st.integers(min_value=1, max_value=262144)
chunks = st.sampled_from([2048, 4096, 8192])


@given(attentions, contexts, chunks)
def test_steady_decode_never_admits_fewer_than_the_worst_case(attention: Attention, context: int, chunk: int) -> None:
    knobs = Knobs(context_tokens=context, sequences=1, prefill_chunk_tokens=chunk)
    accounting = vllm.account(attention, knobs, 40 * GIB, VLLM)
    assert accounting.steady_decode >= math.floor(accounting.guaranteed) - 1  # the null block


@pytest.mark.parametrize("variant", [v for v in variants().values() if v.family is Family.GEMMA_4], ids=str)
@given(context=st.integers(min_value=4096, max_value=262144))
def test_vllm_never_charges_more_than_the_naive_formula(variant, context: int) -> None:  # type: ignore[no-untyped-def]
    knobs = Knobs(context_tokens=min(context, variant.max_context_tokens), sequences=1, prefill_chunk_tokens=2048)
    charged = vllm.pool_bytes_for(variant.attention, knobs, VLLM) / GIB
    assert charged <= naive_kv_cache_gib(variant.attention, knobs.context_tokens, 1) * 1.01
