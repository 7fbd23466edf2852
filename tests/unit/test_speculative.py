"""spec.serving.speculative: the drafter each runtime runs, its weights, and where a release cannot."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gemma_operator.api import Family, SpeculativeSpec
from gemma_operator.catalog import lookup, variants

from .builders import plan_for

VLLM_0191 = "vllm/vllm-openai:v0.19.1"


def speculative_config(args: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(args[args.index("--speculative-config") + 1])
    return config


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"tokens": 2}, "speculative.tokens needs a method other than none"),
        ({"method": "mtp", "tokens": 0}, "greater than or equal to 1"),
        ({"method": "mtp", "tokens": 17}, "less than or equal to 16"),
        ({"method": "eagle"}, "Input should be 'none', 'mtp' or 'ngram'"),
    ],
)
def test_admission_refuses_what_no_runtime_takes(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SpeculativeSpec.model_validate(spec)


def test_mtp_runs_the_variants_assistant_and_counts_its_weights_only() -> None:
    base = {"placement": {"gpusPerReplica": 1}, "serving": {"maxConcurrentSequences": 1}}
    plain = plan_for(**base)
    mtp = plan_for(**base | {"serving": {"maxConcurrentSequences": 1, "speculative": {"method": "mtp"}}})
    assert plain.memory is not None
    assert mtp.memory is not None
    assert mtp.runtime is not None
    assert speculative_config(mtp.runtime.args) == {
        "method": "mtp",
        "model": "google/gemma-4-31B-it-assistant",
        "num_speculative_tokens": 1,
    }
    assistant = lookup(Family.GEMMA_4, "31b").assistant
    assert assistant is not None
    # 4 Q-only layers of width 1024 and the 262144 x 1024 embedding the LM head is tied to: 0.47B parameters.
    assert assistant.parameters == pytest.approx(0.47e9, rel=0.01)
    assert mtp.memory.assistant_gi_b == pytest.approx(assistant.parameters * 2 / 2**30, abs=0.01)
    assert mtp.memory.weights_gi_b - plain.memory.weights_gi_b == pytest.approx(mtp.memory.assistant_gi_b, abs=0.1)
    # Its layers read the target's cache: the pool the requested sequences need is unchanged.
    assert mtp.memory.kv_cache_gi_b == plain.memory.kv_cache_gi_b


def test_mtp_tokens_are_rendered_as_asked() -> None:
    report = plan_for(model={"variant": "26b-a4b"}, serving={"speculative": {"method": "mtp", "tokens": 3}})
    assert report.runtime is not None
    config = speculative_config(report.runtime.args)
    assert config["model"] == "google/gemma-4-26B-A4B-it-assistant"
    assert config["num_speculative_tokens"] == 3


def test_every_gemma_4_variant_but_12b_has_an_assistant() -> None:
    with_one = {name for (family, name), variant in variants().items() if variant.assistant is not None}
    assert with_one == {"e2b", "e4b", "26b-a4b", "31b"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"serving": {"image": VLLM_0191, "speculative": {"method": "mtp"}}},
            "vLLM 0.19.1 has no Gemma4MTPModel (model_executor/models/registry.py), so it cannot run "
            "google/gemma-4-31B-it-assistant",
        ),
        (
            {
                "model": {"variant": "e2b"},
                "placement": {"target": "cpu"},
                "serving": {"speculative": {"method": "mtp"}},
            },
            "llamacpp b11243 would need a build of google/gemma-4-E2B-it-assistant it can load",
        ),
        (
            {"model": {"variant": "12b"}, "serving": {"speculative": {"method": "mtp"}}},
            "gemma-4 12b has no MTP assistant checkpoint in the catalog",
        ),
        (
            {"model": {"family": "gemma-3", "variant": "27b"}, "serving": {"speculative": {"method": "mtp"}}},
            "gemma-3 27b has no MTP assistant checkpoint in the catalog",
        ),
    ],
)
def test_mtp_is_refused_where_it_cannot_run(spec: dict[str, Any], message: str) -> None:
    report = plan_for(**spec)
    assert not report.fits
    assert any(message in problem for problem in report.problems), report.problems


def test_ngram_renders_on_every_runtime_and_costs_nothing() -> None:
    plain = plan_for()
    vllm = plan_for(serving={"speculative": {"method": "ngram"}})
    old = plan_for(serving={"image": VLLM_0191, "speculative": {"method": "ngram", "tokens": 3}})
    assert vllm.runtime is not None
    assert old.runtime is not None
    assert speculative_config(vllm.runtime.args) == {
        "method": "ngram",
        "num_speculative_tokens": 5,
        "prompt_lookup_max": 4,
    }
    assert speculative_config(old.runtime.args)["num_speculative_tokens"] == 3
    assert vllm.memory == plain.memory
    tgi = plan_for(
        model={"family": "gemma-3", "variant": "12b"}, serving={"runtime": "tgi", "speculative": {"method": "ngram"}}
    )
    assert tgi.runtime is not None
    assert tgi.runtime.name.value == "tgi"
    assert tgi.runtime.args[-2:] == ["--speculate", "5"]
    llamacpp = plan_for(
        model={"variant": "e2b"},
        placement={"target": "cpu"},
        serving={"speculative": {"method": "ngram", "tokens": 8}},
    )
    assert llamacpp.runtime is not None
    args = llamacpp.runtime.args
    assert args[args.index("--spec-type") + 1] == "ngram-simple"
    assert args[args.index("--spec-ngram-simple-size-m") + 1] == "8"


def test_the_operators_speculative_flags_are_its_own() -> None:
    report = plan_for(serving={"extraArgs": ["--speculative-config", "{}"]})
    assert not report.fits
    assert "serving.extraArgs --speculative-config sets vllm's --speculative-config" in report.problems[0]
