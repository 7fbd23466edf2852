"""Weights per tensor group: the counts against Google's published figures, and how each runtime stores them."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Family, Precision, Runtime
from gemma_operator.catalog import ConditionalFormat, TensorGroup, Variant, lookup, runtimes, variants, weight_storage
from gemma_operator.planning.weights import GIB, StorageUnknown, weights

MIB = 1 << 20
STORAGE = weight_storage()
# Every (runtime, version) with rules, and the variants of the families each loads.
RUNTIME_VERSIONS = [(runtime, version) for runtime, by_version in STORAGE.runtimes.items() for version in by_version]
ORDER = [Precision.BF16, Precision.FP8, Precision.INT4]
ENCODER_GROUPS = {
    TensorGroup.VISION_ATTENTION,
    TensorGroup.VISION_MLP,
    TensorGroup.VISION_OTHER,
    TensorGroup.AUDIO_LINEAR,
    TensorGroup.AUDIO_OTHER,
}


def language_model(variant: Variant) -> int:
    return sum(count for group, count in variant.checkpoint_parameters().items() if group not in ENCODER_GROUPS)


def served(runtime: Runtime, version: str) -> list[tuple[Variant, Precision]]:
    rules = STORAGE.runtimes[runtime][version]
    return [(variant, precision) for variant in variants().values() for precision in rules.get(variant.family, {})]


# Google's Gemma 4 launch figures (reference/gemma4.md): E2B "5.1B with per-layer embeddings", E4B "8B with
# embeddings" count the encoders; 26B-A4B's 25.2B and 31B's 30.7B are the language model alone.
@pytest.mark.parametrize(
    ("variant", "published", "with_encoders"),
    [("e2b", 5.1e9, True), ("e4b", 8.0e9, True), ("26b-a4b", 25.2e9, False), ("31b", 30.7e9, False)],
)
def test_parameter_counts_give_the_published_totals(variant: str, published: float, with_encoders: bool) -> None:
    found = lookup(Family.GEMMA_4, variant)
    counted = found.parameters if with_encoders else language_model(found)
    assert counted == pytest.approx(published, rel=0.01)


def test_26b_a4b_activates_the_published_3_8b_per_token() -> None:
    variant = lookup(Family.GEMMA_4, "26b-a4b")
    assert variant.experts is not None
    groups = variant.checkpoint_parameters()
    routed = groups[TensorGroup.EXPERTS] * variant.experts.active / variant.experts.count
    active = language_model(variant) - groups[TensorGroup.EXPERTS] + routed
    assert active == pytest.approx(3.8e9, rel=0.01)


# Google's Gemma 4 overview (reference/gemma4.md, the first of its two tables) in "GB" that are GiB: all four
# checkpoints land within 1% in GiB and 6-7% above in decimal GB. The figures are rounded to 0.1 or to 1.
@pytest.mark.parametrize(("variant", "published_gib"), [("e2b", 9.6), ("e4b", 15.0), ("26b-a4b", 48.0), ("31b", 58.3)])
def test_gemma_4_bf16_checkpoint_is_googles_figure(variant: str, published_gib: float) -> None:
    assert lookup(Family.GEMMA_4, variant).parameters * 2 / GIB == pytest.approx(published_gib, rel=0.02)


# Google's Gemma 3 QAT post gives the bf16 weights of the language model in whole decimal GB:
# https://developers.googleblog.com/ja/gemma-3-quantized-aware-trained-bringing-state-of-the-art-ai-to-consumer-gpus
@pytest.mark.parametrize(("variant", "published_gb"), [("1b", 2), ("4b", 8), ("12b", 24), ("27b", 54)])
def test_gemma_3_bf16_language_model_is_googles_figure(variant: str, published_gb: int) -> None:
    assert language_model(lookup(Family.GEMMA_3, variant)) * 2 / 1e9 == pytest.approx(published_gb, abs=0.5)


def test_the_e_models_count_their_encoders_once() -> None:
    # The catalog used to add ~450M of encoders to totals that already held them (10.3 GiB for E2B).
    e2b = lookup(Family.GEMMA_4, "e2b")
    assert weights(e2b, Precision.BF16, Runtime.LLAMACPP).total_gib < 9.7


@pytest.mark.parametrize(("runtime", "version"), RUNTIME_VERSIONS)
def test_every_rule_holds_every_checkpoint_tensor(runtime: Runtime, version: str) -> None:
    # Only the K/V projections no forward pass reads may be dropped; anything else missing is a hole in the rules.
    for variant, precision in served(runtime, version):
        held = {group.group for group in weights(variant, precision, runtime, version).groups}
        missing = set(variant.checkpoint_parameters()) - held - {TensorGroup.KV_SHARED_PROJECTIONS}
        assert not missing, (variant.label, precision, missing)


def test_default_versions_are_the_pinned_images() -> None:
    for runtime, version in STORAGE.default_versions.items():
        assert version in STORAGE.runtimes[runtime]
        assert all(version in image.image for image in runtimes()[runtime].images.values())


def test_llamacpp_stores_the_linear_weights_in_the_quantisation_it_downloads() -> None:
    gguf = runtimes()[Runtime.LLAMACPP].gguf_quant
    for variant, precision in served(Runtime.LLAMACPP, STORAGE.default_versions[Runtime.LLAMACPP]):
        (linear,) = [g for g in weights(variant, precision, Runtime.LLAMACPP).groups if g.group is TensorGroup.LINEAR]
        assert linear.format.upper() == gguf[precision]


@given(st.sampled_from(RUNTIME_VERSIONS), st.sampled_from(list(variants().values())))
def test_a_lower_precision_never_stores_more(runtime_version: tuple[Runtime, str], variant: Variant) -> None:
    runtime, version = runtime_version
    loaded = [p for p in ORDER if p in STORAGE.runtimes[runtime][version].get(variant.family, {})]
    breakdowns = [weights(variant, precision, runtime, version) for precision in loaded]
    for higher, lower in itertools.pairwise(breakdowns):
        assert lower.total_bytes <= higher.total_bytes
        if any(group.format == "w4a16g128" for group in lower.groups):
            continue  # a pre-quantised checkpoint ships its towers as they were made, unquantised
        for group in TensorGroup:
            assert lower.bytes_of(group) <= higher.bytes_of(group)


@given(
    st.sampled_from([rv for rv in RUNTIME_VERSIONS if rv[0] is not Runtime.LLAMACPP]),
    st.sampled_from(list(variants().values())),
    st.sampled_from(ORDER[1:]),
)
def test_vllm_and_tgi_quantise_no_embedding_and_no_norm(
    runtime_version: tuple[Runtime, str], variant: Variant, precision: Precision
) -> None:
    runtime, version = runtime_version
    rules = STORAGE.runtimes[runtime][version].get(variant.family, {})
    if precision not in rules:
        return
    bf16, quantised = weights(variant, Precision.BF16, runtime, version), weights(variant, precision, runtime, version)
    for group in (
        TensorGroup.TOKEN_EMBEDDINGS,
        TensorGroup.PER_LAYER_EMBEDDINGS,
        TensorGroup.TIED_HEAD_COPY,
        TensorGroup.OTHER,
        TensorGroup.VISION_OTHER,
        TensorGroup.AUDIO_OTHER,
    ):
        assert quantised.bytes_of(group) == bf16.bytes_of(group), group
    assert quantised.bytes_of(TensorGroup.LINEAR) < bf16.bytes_of(TensorGroup.LINEAR)


def test_e2b_fp8_on_vllm_keeps_its_per_layer_embeddings_in_bf16() -> None:
    # Issue 13: quantising every parameter gave about 5 GiB; vLLM stores 7-8.
    e2b = lookup(Family.GEMMA_4, "e2b")
    breakdown = weights(e2b, Precision.FP8, Runtime.VLLM, "0.19.1")
    assert breakdown.bytes_of(TensorGroup.PER_LAYER_EMBEDDINGS) == 2348810240 * 2
    assert 7.0 < breakdown.total_gib < 8.0


def test_vllm_copies_k_into_the_v_slot_of_31b() -> None:
    # reference/gemma4.md: about 210 MiB more weights for 31B.
    breakdown = weights(lookup(Family.GEMMA_4, "31b"), Precision.BF16, Runtime.VLLM)
    assert breakdown.bytes_of(TensorGroup.V_COPY) / MIB == pytest.approx(210, abs=1)
    assert weights(lookup(Family.GEMMA_4, "31b"), Precision.BF16, Runtime.LLAMACPP).bytes_of(TensorGroup.V_COPY) == 0


def test_only_vllm_0_19_1_holds_the_kv_shared_projections() -> None:
    e4b = lookup(Family.GEMMA_4, "e4b")
    old, new = (
        weights(e4b, Precision.BF16, Runtime.VLLM, "0.19.1"),
        weights(e4b, Precision.BF16, Runtime.VLLM, "0.33.0"),
    )
    assert old.total_bytes - new.total_bytes == old.bytes_of(TensorGroup.KV_SHARED_PROJECTIONS) > 100 * MIB


def test_tgi_holds_the_tied_embeddings_twice() -> None:
    gemma3_27b = lookup(Family.GEMMA_3, "27b")
    tgi, vllm = weights(gemma3_27b, Precision.BF16, Runtime.TGI), weights(gemma3_27b, Precision.BF16, Runtime.VLLM)
    assert tgi.total_bytes - vllm.total_bytes == vllm.bytes_of(TensorGroup.TOKEN_EMBEDDINGS)
    # ... and at every precision, since the head is a bare tensor.
    assert weights(gemma3_27b, Precision.INT4, Runtime.TGI).bytes_of(TensorGroup.TIED_HEAD_COPY) == 1409630208 * 2


@pytest.mark.parametrize(
    ("variant", "version", "vision_attention", "vision_mlp"),
    [
        ("e4b", "0.19.1", "bf16", "bf16"),  # 0.19.1 builds the towers without a quant_config
        ("e4b", "0.33.0", "fp8PerTensor", "fp8PerTensor"),  # 768 and 3072 are multiples of 64
        ("31b", "0.33.0", "bf16", "bf16"),  # 4304 is not
    ],
)
def test_vllm_fp8_quantises_gemma_4_towers_by_version_and_shape(
    variant: str, version: str, vision_attention: str, vision_mlp: str
) -> None:
    breakdown = weights(lookup(Family.GEMMA_4, variant), Precision.FP8, Runtime.VLLM, version)
    formats = {group.group: group.format for group in breakdown.groups}
    assert (formats[TensorGroup.VISION_ATTENTION], formats[TensorGroup.VISION_MLP]) == (vision_attention, vision_mlp)


def test_gemma_3_siglip_mlp_stays_bf16_under_vllm_fp8_but_not_under_tgi() -> None:
    gemma3_4b = lookup(Family.GEMMA_3, "4b")
    vllm = {g.group: g.format for g in weights(gemma3_4b, Precision.FP8, Runtime.VLLM).groups}
    tgi = {g.group: g.format for g in weights(gemma3_4b, Precision.FP8, Runtime.TGI).groups}
    assert (vllm[TensorGroup.VISION_ATTENTION], vllm[TensorGroup.VISION_MLP]) == ("fp8PerTensor", "bf16")
    assert (tgi[TensorGroup.VISION_ATTENTION], tgi[TensorGroup.VISION_MLP]) == ("fp8PerRow", "fp8PerRow")


def test_llamacpp_q4_0_keeps_the_token_embeddings_at_q6_k() -> None:
    e2b = lookup(Family.GEMMA_4, "e2b")
    breakdown = weights(e2b, Precision.INT4, Runtime.LLAMACPP)
    assert breakdown.bytes_of(TensorGroup.PER_LAYER_EMBEDDINGS) == 2348810240 * 210 / 256
    assert breakdown.bytes_of(TensorGroup.LINEAR) == 1863057408 * 18 / 32


def test_nf4_stores_absmax_per_64_weights() -> None:
    assert STORAGE.formats["nf4"] == 4 + 8 / 64 + 32 / (64 * 256)


def test_a_precision_a_version_cannot_load_is_refused() -> None:
    with pytest.raises(StorageUnknown, match=re.escape("tgi 3.3.7 does not load gemma-4")):
        weights(lookup(Family.GEMMA_4, "31b"), Precision.BF16, Runtime.TGI)


def test_an_unknown_version_takes_the_pinned_rules_and_says_so() -> None:
    variant = lookup(Family.GEMMA_4, "e4b")
    unknown = weights(variant, Precision.BF16, Runtime.VLLM, "0.25.0")
    assert (unknown.version, unknown.version_known) == ("0.33.0", False)
    assert unknown.total_bytes == weights(variant, Precision.BF16, Runtime.VLLM).total_bytes
    assert weights(variant, Precision.BF16, Runtime.VLLM, "0.19.1").version_known


def test_int4_on_vllm_0_33_is_a_prequantised_checkpoint() -> None:
    """0.33.0 has no bitsandbytes: int4 weights are a W4A16 checkpoint's, embeddings and towers as shipped."""
    stored = weights(lookup(Family.GEMMA_4, "31b"), Precision.INT4, Runtime.VLLM, "0.33.0")
    formats = {group.group: group.format for group in stored.groups}
    assert formats[TensorGroup.LINEAR] == "w4a16g128"
    assert formats[TensorGroup.TOKEN_EMBEDDINGS] == "bf16"
    assert formats[TensorGroup.VISION_ATTENTION] == "bf16"


def test_a_conditional_format_needs_every_tower_size_divisible() -> None:
    rule = ConditionalFormat(format="fp8PerTensor", when_tower_sizes_multiple_of=64, otherwise="bf16")
    assert rule.resolve((768, 3072)) == "fp8PerTensor"
    assert rule.resolve((1152, 4304)) == "bf16"
