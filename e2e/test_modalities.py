"""spec.serving.modalities and spec.serving.speculative on the real local control plane: admission, and the flags
in the live Deployment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from gemma import Gemma, manifest
from harness.plane import Plane
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Gemma:
    return Gemma(plane.api, namespace)


def test_text_only_with_ngram_goes_ready_with_its_flags(gemma: Gemma, operator: OperatorProcess) -> None:
    body = manifest(
        "lean",
        model={"variant": "31b"},
        serving={"modalities": {"textOnly": True}, "speculative": {"method": "ngram", "tokens": 3}},
    )
    gemma.create(body)
    ready = gemma.wait("lean", "Ready", timeout=120)
    assert ready["status"]["plan"]["memory"]["multimodalGiB"] == 0
    assert "textOnly would free" not in gemma.condition("lean", "Planned")["message"]
    (container,) = gemma.deployment("lean").spec.template.spec.containers
    args: list[str] = container.args
    assert "--language-model-only" in args
    assert json.loads(args[args.index("--speculative-config") + 1]) == {
        "method": "ngram",
        "num_speculative_tokens": 3,
        "prompt_lookup_max": 4,
    }


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "odd-budget",
        {"modalities": {"image": {"tokensPerImage": 300}}},
        "tokensPerImage must be one of 70, 140, 280, 560, 1120",
    ),
    ("text-and-images", {"modalities": {"textOnly": True, "image": {"maxPerPrompt": 1}}}, "textOnly excludes image"),
    ("tokens-alone", {"speculative": {"tokens": 2}}, "speculative.tokens needs a method other than none"),
]


@pytest.mark.parametrize(("name", "serving", "message"), REJECTED, ids=[case[0] for case in REJECTED])
def test_admission_refuses_what_no_runtime_takes(
    gemma: Gemma, operator: OperatorProcess, name: str, serving: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        gemma.create(manifest(name, model={"variant": "31b"}, serving=serving))
    assert rejected.value.status == 422
    assert message in str(rejected.value.body)
