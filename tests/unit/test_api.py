"""api: defaults as API.md fixes them, and invalid input rejected with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from gemma_operator.api import (
    Family,
    InvalidSpec,
    Precision,
    RuntimeChoice,
    TargetChoice,
    parse_deployment,
)


def document(spec: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.gemma.dev/v1alpha1",
        "kind": "GemmaDeployment",
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": spec,
        **top,
    }


def test_defaults_follow_the_contract() -> None:
    spec = parse_deployment(document({"model": {"variant": "31b"}})).spec
    assert spec.model.family is Family.GEMMA_4
    assert spec.model.instruction_tuned is True
    assert spec.model.precision is Precision.BF16
    assert spec.model.token_secret_ref is None
    assert spec.serving.runtime is RuntimeChoice.AUTO
    assert (spec.serving.max_context_tokens, spec.serving.max_concurrent_sequences) == (8192, 4)
    assert spec.placement.target is TargetChoice.AUTO
    assert spec.placement.gpus_per_replica == 0
    assert spec.replicas == 1
    assert (spec.autoscaling.enabled, spec.autoscaling.min_replicas, spec.autoscaling.max_replicas) == (False, 1, 1)


def test_wire_names_are_camel_case_and_round_trip() -> None:
    original = document(
        {
            "model": {"variant": "e4b", "tokenSecretRef": {"name": "hf-token"}, "instructionTuned": False},
            "serving": {"maxContextTokens": 4096, "extraArgs": ["--foo"], "env": [{"name": "A", "value": "b"}]},
            "placement": {"target": "edge", "tolerations": [{"key": "k", "operator": "Exists"}]},
        }
    )
    parsed = parse_deployment(original)
    wire = parsed.spec.to_wire()
    assert wire["model"]["tokenSecretRef"] == {"name": "hf-token", "key": "token"}
    assert wire["serving"]["maxContextTokens"] == 4096
    assert parse_deployment(document(wire)).spec == parsed.spec


def test_status_in_a_document_is_not_read() -> None:
    parsed = parse_deployment(document({"model": {"variant": "31b"}}, status={"anything": "goes"}))
    assert parsed.metadata.name == "chat"


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing model", {}, "spec.model", "Field required"),
    ("missing variant", {"model": {}}, "spec.model.variant", "Field required"),
    (
        "unknown family",
        {"model": {"family": "gemma-5", "variant": "31b"}},
        "spec.model.family",
        "'gemma-4' or 'gemma-3'",
    ),
    (
        "bad precision",
        {"model": {"variant": "31b", "precision": "fp4"}},
        "spec.model.precision",
        "'bf16', 'fp8' or 'int4'",
    ),
    (
        "bad runtime",
        {"model": {"variant": "31b"}, "serving": {"runtime": "sglang"}},
        "spec.serving.runtime",
        "'llamacpp'",
    ),
    (
        "context too small",
        {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 16}},
        "spec.serving.maxContextTokens",
        "greater than or equal to 128",
    ),
    (
        "no sequences",
        {"model": {"variant": "31b"}, "serving": {"maxConcurrentSequences": 0}},
        "spec.serving.maxConcurrentSequences",
        "greater than or equal to 1",
    ),
    (
        "three GPUs",
        {"model": {"variant": "31b"}, "placement": {"gpusPerReplica": 3}},
        "spec.placement.gpusPerReplica",
        "must be 0, 1, 2, 4 or 8",
    ),
    ("bad target", {"model": {"variant": "31b"}, "placement": {"target": "tpu"}}, "spec.placement.target", "'edge'"),
    ("negative replicas", {"model": {"variant": "31b"}, "replicas": -1}, "spec.replicas", "greater than or equal to 0"),
    (
        "min over max",
        {"model": {"variant": "31b"}, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "spec.autoscaling",
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "misspelt field",
        {"model": {"variant": "31b", "varient": "e2b"}},
        "spec.model.varient",
        "Extra inputs are not permitted",
    ),
    (
        "empty secret name",
        {"model": {"variant": "31b", "tokenSecretRef": {"name": ""}}},
        "spec.model.tokenSecretRef.name",
        "at least 1 character",
    ),
    (
        "bad toleration",
        {"model": {"variant": "31b"}, "placement": {"tolerations": [{"operator": "Maybe"}]}},
        "spec.placement.tolerations[0].operator",
        "'Exists' or 'Equal'",
    ),
    (
        "env without name",
        {"model": {"variant": "31b"}, "serving": {"env": [{"value": "x"}]}},
        "spec.serving.env[0].name",
        "Field required",
    ),
    (
        "bad class name",
        {"model": {"variant": "31b"}, "placement": {"acceleratorClass": "H100!"}},
        "spec.placement.acceleratorClass",
        "should match pattern",
    ),
    (
        "cache with neither claim nor size",
        {"model": {"variant": "31b"}, "serving": {"cache": {}}},
        "spec.serving.cache",
        "cache needs exactly one of claimName (an existing claim) or size (a claim to create)",
    ),
    (
        "cache with both claim and size",
        {"model": {"variant": "31b"}, "serving": {"cache": {"claimName": "weights", "size": "100Gi"}}},
        "spec.serving.cache",
        "exactly one of claimName",
    ),
    (
        "storage class for an existing claim",
        {"model": {"variant": "31b"}, "serving": {"cache": {"claimName": "weights", "storageClassName": "ssd"}}},
        "spec.serving.cache",
        "storageClassName applies only to a claim the operator creates (with size)",
    ),
    (
        "cache size not a quantity",
        {"model": {"variant": "31b"}, "serving": {"cache": {"size": "200GB"}}},
        "spec.serving.cache.size",
        "should match pattern",
    ),
    (
        "cache claim not a name",
        {"model": {"variant": "31b"}, "serving": {"cache": {"claimName": "My_Claim"}}},
        "spec.serving.cache.claimName",
        "should match pattern",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_names_the_field(spec: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_deployment(document(spec))
    assert caught.value.field == field
    assert message in caught.value.message


def test_verification_is_on_and_the_cache_off_by_default() -> None:
    serving = parse_deployment(document({"model": {"variant": "31b"}})).spec.serving
    assert serving.verify is True
    assert serving.cache is None
    cached = parse_deployment(
        document({"model": {"variant": "31b"}, "serving": {"verify": False, "cache": {"size": "1.5Ti"}}})
    ).spec.serving
    assert cached.verify is False
    assert cached.cache is not None
    assert (cached.cache.claim_name, cached.cache.size, cached.cache.storage_class_name) == ("", "1.5Ti", "")
    assert cached.to_wire()["cache"] == {"claimName": "", "size": "1.5Ti", "storageClassName": ""}


def test_wrong_kind_and_bad_name_are_rejected() -> None:
    with pytest.raises(InvalidSpec, match=r"^kind: "):
        parse_deployment({**document({"model": {"variant": "31b"}}), "kind": "Deployment"})
    with pytest.raises(InvalidSpec, match=r"^metadata\.name: "):
        parse_deployment({**document({"model": {"variant": "31b"}}), "metadata": {"name": "Chat_Bot"}})


def test_models_are_frozen() -> None:
    parsed = parse_deployment(document({"model": {"variant": "31b"}}))
    with pytest.raises(ValueError, match="frozen"):
        parsed.spec.replicas = 3  # type: ignore[misc]
