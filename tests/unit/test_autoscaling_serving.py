"""The roofline serving model: calibrated against published vLLM numbers, and monotone where physics says so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Family, Precision, Runtime
from gemma_operator.autoscaling.serving import (
    CALIBRATION_TOLERANCE,
    LOAD_BYTES_PER_SECOND,
    NotServable,
    Roofline,
    serving_for,
    startup_seconds,
)
from gemma_operator.catalog import accelerator_performance, lookup
from gemma_operator.planning.weights import weights

GB10 = "NVIDIA-GB10"
RTX_PRO_6000 = "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition"


def roofline(variant: str, precision: Precision, version: str, product: str) -> Roofline:
    model = lookup(Family.GEMMA_4, variant)
    breakdown = weights(model, precision, Runtime.VLLM, version, vision=False, audio=False)
    return Roofline.of(model, breakdown, accelerator_performance()[product], 1)


def test_gemma4_26b_a4b_bf16_on_dgx_spark_reproduces_the_published_decode_rate() -> None:
    # https://djangodevreng.nl/en/arena/gemma-4-26b-a4b-it-bf16-v23/ (vLLM v0.23.0, GB10): the chat test at
    # c=10 made 11.47 tokens/s per user and 91 tokens/s in all, so 91 / 11.47 = 7.9 sequences decoded at once.
    model = roofline("26b-a4b", Precision.BF16, "0.23.0", GB10)
    decoding = round(91 / 11.47)
    total = decoding / model.step_seconds([1500] * decoding, 0)
    assert total == pytest.approx(91, rel=CALIBRATION_TOLERANCE)


def test_gemma4_31b_fp8_on_rtx_pro_6000_reproduces_the_published_throughput() -> None:
    # https://blog.hexgrid.cloud/gemma-4-31b-vllm-on-rtx-6000-pro-1-17k-tokens-sec-and-still-asking-for-more
    # (vLLM 0.20, max_num_seqs 21, ShareGPT, 24 concurrent): about 548 output tokens/s.
    model = roofline("31b", Precision.FP8, "0.20.0", RTX_PRO_6000)
    total = 21 / model.step_seconds([1000] * 21, 0)
    assert total == pytest.approx(548, rel=CALIBRATION_TOLERANCE)


def test_startup_reproduces_the_published_h200_log() -> None:
    # https://huggingface.co/LargitData/gemma-4-26b-a4b-it-fp8: weights loaded in 15.76 s, ready at about 153 s.
    fp8 = weights(lookup(Family.GEMMA_4, "26b-a4b"), Precision.FP8, Runtime.VLLM).total_bytes
    assert fp8 / LOAD_BYTES_PER_SECOND == pytest.approx(15.76, rel=0.1)
    assert startup_seconds(fp8) == pytest.approx(153, rel=0.05)


def test_a_moe_step_reads_only_the_experts_its_tokens_reach() -> None:
    model = roofline("26b-a4b", Precision.BF16, "0.33.0", "NVIDIA-H100-80GB-HBM3")
    assert model.weights_read(1) - model.dense_bytes == pytest.approx(model.expert_bytes * 8 / 128)
    assert model.weights_read(4096) == pytest.approx(model.dense_bytes + model.expert_bytes)
    dense = roofline("31b", Precision.BF16, "0.33.0", "NVIDIA-H100-80GB-HBM3")
    assert dense.weights_read(1) == dense.weights_read(64)


@given(
    batch=st.integers(1, 64),
    context=st.integers(1, 32768),
    more=st.integers(1, 16),
    prefill=st.integers(0, 8192),
)
def test_a_step_never_gets_faster_with_more_sequences_context_or_prefill(
    batch: int, context: int, more: int, prefill: int
) -> None:
    model = roofline("26b-a4b", Precision.BF16, "0.33.0", "NVIDIA-H100-80GB-HBM3")
    base = model.step_seconds([context] * batch, prefill)
    assert model.step_seconds([context] * (batch + more), prefill) >= base
    assert model.step_seconds([context + more] * batch, prefill) >= base
    assert model.step_seconds([context] * batch, prefill + more) >= base


def test_a_long_prefill_is_compute_bound() -> None:
    model = roofline("26b-a4b", Precision.BF16, "0.33.0", "NVIDIA-H100-80GB-HBM3")
    step = model.step_seconds([], 8192)
    assert step > model.weights_read(8192) / model.bytes_per_second
    assert step == pytest.approx(2 * model.active_parameters * 8192 / model.flops_per_second, rel=0.05)


def test_the_default_deployment_is_the_planners() -> None:
    serving = serving_for("26b-a4b", Precision.BF16, "h100", 8192, None)
    assert serving.max_batch == 16  # the plan's fitsUpTo at 8192 tokens, within its guaranteed concurrency
    assert serving.prefill_budget > 0
    assert 150 < serving.startup_seconds < 200
    assert serving_for("26b-a4b", Precision.BF16, "h100", 8192, 4).max_batch == 4


@pytest.mark.parametrize(
    ("accelerator", "context", "message"),
    [
        ("tpu", 8192, "not a class"),
        ("l4", 262144, "the plan refuses"),
        ("h100", 10**9, "maxContextTokens"),
    ],
)
def test_what_cannot_be_served_says_why(accelerator: str, context: int, message: str) -> None:
    with pytest.raises(NotServable, match=message):
        serving_for("26b-a4b", Precision.BF16, accelerator, context, None)
