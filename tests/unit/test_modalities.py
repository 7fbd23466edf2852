"""spec.serving.modalities: admission, the runtimes' arguments, and the memory a tower and its profile take."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gemma_operator.api import Family, ModalitiesSpec, Precision, Runtime, ServingSpec
from gemma_operator.catalog import lookup
from gemma_operator.catalog.versions import vllm as vllm_versions
from gemma_operator.planning import modalities
from gemma_operator.planning.weights import weights

from .builders import plan_for

VLLM_0191 = "vllm/vllm-openai:v0.19.1"


def args_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"textOnly": True, "image": {"maxPerPrompt": 1}}, "textOnly excludes image, video and audio"),
        ({"image": {"tokensPerImage": 300}}, "tokensPerImage must be one of 70, 140, 280, 560, 1120"),
        ({"image": {"maxPerPrompt": 1000}}, "less than or equal to 999"),
        ({"video": {"maxPerPrompt": -1}}, "greater than or equal to 0"),
        ({"audio": {"maxPerPrompt": 1, "seconds": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_admission_refuses_what_no_runtime_takes(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModalitiesSpec.model_validate(spec)


def test_the_default_is_every_modality_at_the_runtimes_defaults() -> None:
    default = ServingSpec().modalities
    assert not default.text_only
    assert default.image is None
    assert default.video is None
    assert default.audio is None
    report = plan_for(model={"variant": "e4b"}, placement={"target": "gpu"})
    assert report.runtime is not None
    assert not {"--language-model-only", "--limit-mm-per-prompt", "--mm-processor-kwargs"} & set(report.runtime.args)


def test_vllm_renders_text_only_limits_and_the_image_budget() -> None:
    text_only = plan_for(serving={"modalities": {"textOnly": True}})
    assert text_only.runtime is not None
    assert "--language-model-only" in text_only.runtime.args
    # Every limit 0 is text only too.
    zeros = plan_for(serving={"modalities": {"image": {"maxPerPrompt": 0}, "video": {"maxPerPrompt": 0}}})
    assert zeros.runtime is not None
    assert "--language-model-only" in zeros.runtime.args
    images = plan_for(serving={"modalities": {"image": {"maxPerPrompt": 4, "tokensPerImage": 1120}}})
    assert images.runtime is not None
    assert json.loads(args_after(images.runtime.args, "--limit-mm-per-prompt")) == {"image": 4}
    assert json.loads(args_after(images.runtime.args, "--mm-processor-kwargs")) == {"max_soft_tokens": 1120}


def test_llamacpp_drops_the_projector_only_when_text_only() -> None:
    cpu = {"model": {"variant": "e2b"}, "placement": {"target": "cpu"}}
    text_only = plan_for(**cpu, serving={"modalities": {"textOnly": True}})
    every = plan_for(**cpu)
    assert text_only.runtime is not None
    assert every.runtime is not None
    assert "--no-mmproj" in text_only.runtime.args
    assert "--no-mmproj" not in every.runtime.args
    # The projector file holds both towers: text only frees both.
    assert every.memory is not None
    assert text_only.memory is not None
    stored = weights(lookup(Family.GEMMA_4, "e2b"), Precision.BF16, Runtime.LLAMACPP)
    assert every.memory.weights_gi_b - text_only.memory.weights_gi_b == pytest.approx(
        stored.tower_bytes / 2**30, abs=0.06
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"model": {"variant": "31b"}, "serving": {"modalities": {"audio": {"maxPerPrompt": 1}}}},
            "spec.serving.modalities.audio: gemma-4 31b takes no audio input (it takes image, video)",
        ),
        (
            {
                "model": {"family": "gemma-3", "variant": "27b"},
                "serving": {"modalities": {"video": {"maxPerPrompt": 1}}},
            },
            "spec.serving.modalities.video: gemma-3 27b takes no video input",
        ),
        (
            {
                "model": {"family": "gemma-3", "variant": "27b"},
                "serving": {"runtime": "vllm", "modalities": {"image": {"tokensPerImage": 560}}},
            },
            "spec.serving.modalities.image.tokensPerImage: gemma-3 27b's processor has a fixed image budget of 256",
        ),
        (
            {
                "model": {"family": "gemma-3", "variant": "27b"},
                "serving": {"runtime": "tgi", "modalities": {"textOnly": True}},
            },
            "TGI 3.3.7 has no option to limit or turn off image inputs",
        ),
        (
            {
                "model": {"variant": "e2b"},
                "placement": {"target": "cpu"},
                "serving": {"modalities": {"audio": {"maxPerPrompt": 0}}},
            },
            "llama.cpp b11243 has no per-modality limit",
        ),
    ],
)
def test_what_a_variant_or_runtime_cannot_serve_is_refused_naming_the_field(spec: dict[str, Any], message: str) -> None:
    report = plan_for(**spec)
    assert not report.fits
    assert any(message in problem for problem in report.problems), report.problems


def test_runtime_auto_leaves_tgi_for_vllm_when_gemma_3_is_text_only() -> None:
    report = plan_for(model={"family": "gemma-3", "variant": "27b"}, serving={"modalities": {"textOnly": True}})
    assert report.fits
    assert report.runtime is not None
    assert report.runtime.name is Runtime.VLLM
    assert "--language-model-only" in report.runtime.args


def test_text_only_frees_the_vision_tower_and_its_profile_on_31b() -> None:
    one_gpu = {"placement": {"gpusPerReplica": 1}}
    every = plan_for(**one_gpu, serving={"maxConcurrentSequences": 1})
    text_only = plan_for(**one_gpu, serving={"maxConcurrentSequences": 1, "modalities": {"textOnly": True}})
    assert every.memory is not None
    assert text_only.memory is not None
    assert every.concurrency is not None
    assert text_only.concurrency is not None
    tower = weights(lookup(Family.GEMMA_4, "31b"), Precision.BF16, Runtime.VLLM).tower_bytes / 2**30
    # 0.58B parameters of SigLIP-like tower in bf16.
    assert tower == pytest.approx(1.07, abs=0.01)
    assert every.memory.weights_gi_b - text_only.memory.weights_gi_b == pytest.approx(tower, abs=0.06)
    assert text_only.memory.multimodal_gi_b == 0
    assert every.memory.multimodal_gi_b > tower
    # What the towers and the profile free goes to the cache: vLLM admits more sequences.
    assert text_only.concurrency.guaranteed > every.concurrency.guaranteed


def test_the_vision_tower_stays_while_video_is_on() -> None:
    # The commonly copied {"image": 0} still loads the tower: vLLM skips it only with image and video both 0.
    one_gpu = {"placement": {"gpusPerReplica": 1}}
    images_off = plan_for(**one_gpu, serving={"modalities": {"image": {"maxPerPrompt": 0}}})
    both_off = plan_for(**one_gpu, serving={"modalities": {"image": {"maxPerPrompt": 0}, "video": {"maxPerPrompt": 0}}})
    assert images_off.memory is not None
    assert both_off.memory is not None
    assert images_off.memory.weights_gi_b - both_off.memory.weights_gi_b == pytest.approx(1.07, abs=0.06)


def test_audio_off_frees_the_audio_tower_only() -> None:
    gpu = {"model": {"variant": "e4b"}, "placement": {"target": "gpu"}}
    every = plan_for(**gpu)
    no_audio = plan_for(**gpu, serving={"modalities": {"audio": {"maxPerPrompt": 0}}})
    assert every.memory is not None
    assert no_audio.memory is not None
    assert no_audio.runtime is not None
    assert json.loads(args_after(no_audio.runtime.args, "--limit-mm-per-prompt")) == {"audio": 0}
    variant = lookup(Family.GEMMA_4, "e4b")
    audio = variant.checkpoint_parameters()
    audio_gib = sum(count for group, count in audio.items() if group.value.startswith("audio")) * 2 / 2**30
    assert every.memory.weights_gi_b - no_audio.memory.weights_gi_b == pytest.approx(audio_gib, abs=0.06)
    assert no_audio.memory.multimodal_gi_b > 0


def test_vllm_holds_the_towers_whole_on_every_rank() -> None:
    one = plan_for(placement={"gpusPerReplica": 1}, serving={"maxConcurrentSequences": 1})
    two = plan_for(placement={"gpusPerReplica": 2}, serving={"maxConcurrentSequences": 1})
    assert one.memory is not None
    assert two.memory is not None
    assert two.memory.weights_gi_b - one.memory.weights_gi_b == pytest.approx(1.07, abs=0.1)


def test_the_encoder_profile_follows_vllms_budget_and_chunks() -> None:
    """The numbers of vLLM 0.33.0's profile for 31B at --max-num-batched-tokens 8192, 4 sequences of 8192."""
    rules = vllm_versions.rules("0.33.0")
    variant = lookup(Family.GEMMA_4, "31b")
    spec = ModalitiesSpec.model_validate({"image": {"tokensPerImage": 1120}, "video": {"maxPerPrompt": 0}})
    served = modalities.resolve(spec, variant, Runtime.VLLM, rules)
    (image,) = served.items
    assert (image.tokens, image.rows) == (1120, 10080)
    h100 = 81559 * 2**20
    # 7 images fill the 8192-token budget; their outputs (7 x 1120 x 5376 x 2 bytes) outlast the tower's
    # activations, which chunks of 2 images (8 GiB allowance / 3.3 GB a one-hot) keep below the dummy pass's.
    held = served.encoder_bytes(
        8192, 4, 8192, variant.hidden_size, free=20 * 2**30, total=h100, activation_bytes_per_hidden_unit=32
    )
    assert held == 7 * 1120 * 5376 * 2
    # Without the chunking every image would go through at once and the tower would dominate.
    unchunked = modalities.Modalities(
        served.vision_loaded,
        served.audio_loaded,
        served.text_only,
        served.limits,
        served.tokens_per_image,
        (modalities.Item("image", image.limit, image.tokens, 1, image.rows, image.tower_hidden, None),),
    )
    assert (
        unchunked.encoder_bytes(
            8192, 4, 8192, variant.hidden_size, free=20 * 2**30, total=h100, activation_bytes_per_hidden_unit=32
        )
        > 2 * held
    )


@settings(max_examples=40, deadline=None)
@given(
    variant=st.sampled_from(["e2b", "e4b", "26b-a4b", "31b", "12b"]),
    context=st.sampled_from([4096, 8192, 32768]),
    sequences=st.integers(min_value=1, max_value=8),
)
def test_text_only_never_needs_more_than_serving_images(variant: str, context: int, sequences: int) -> None:
    base = {"model": {"variant": variant}, "placement": {"target": "gpu"}}
    limits = {"maxContextTokens": context, "maxConcurrentSequences": sequences}
    every = plan_for(**base, serving=limits)
    text_only = plan_for(**base, serving={**limits, "modalities": {"textOnly": True}})
    assert every.fits_up_to is not None
    assert text_only.fits_up_to is not None
    assert text_only.fits_up_to.concurrent_sequences >= every.fits_up_to.concurrent_sequences
    if every.fits:
        assert text_only.fits


def test_vllm_0_19_1_profiles_images_at_the_checkpoints_budget() -> None:
    old = vllm_versions.rules("0.19.1")
    new = vllm_versions.rules("0.33.0")
    assert old is not None
    assert new is not None
    assert not old.multimodal.profiles_configured_tokens_per_image
    assert new.multimodal.profiles_configured_tokens_per_image
    report = plan_for(serving={"image": VLLM_0191, "modalities": {"image": {"tokensPerImage": 560}}})
    assert report.runtime is not None
    assert report.runtime.version == "0.19.1"
    assert "vllm 0.19.1 profiles an image at the checkpoint's 280 tokens" in " ".join(report.runtime.decisions)
    current = plan_for(serving={"modalities": {"image": {"tokensPerImage": 560}}})
    assert current.runtime is not None
    assert "profiles an image" not in " ".join(current.runtime.decisions)
