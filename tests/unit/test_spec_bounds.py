"""api: every string, list, map and number in the spec is bounded, in the models and in the generated CRD."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gemma_operator.api import InvalidSpec, parse_deployment
from gemma_operator.cli.commands import crd_manifest

from .test_api import document

INT32_MAX = 2**31 - 1
ETCD_LIMIT_BYTES = 1536 << 10


def spec(**sections: Any) -> dict[str, Any]:
    return {"model": {"variant": "31b"}, **sections}


def model(**fields: Any) -> dict[str, Any]:
    return {"model": {"variant": "31b", **fields}}


OVER_BOUNDS: list[tuple[str, dict[str, Any], str]] = [
    ("variant", {"model": {"variant": "v" * 33}}, "spec.model.variant"),
    ("repository length", model(repository="o/" + "r" * 97), "spec.model.repository"),
    ("repository without owner", model(repository="gemma-4"), "spec.model.repository"),
    ("repository with a path", model(repository="google/gemma/../x"), "spec.model.repository"),
    ("repository with a scheme", model(repository="https://evil.example/x"), "spec.model.repository"),
    ("revision length", model(revision="r" * 256), "spec.model.revision"),
    ("revision with a space", model(revision="main --trust-remote-code"), "spec.model.revision"),
    ("revision with ..", model(revision="refs/heads/../../x"), "spec.model.revision"),
    ("secret name path", model(tokenSecretRef={"name": "../../kube-system/x"}), "spec.model.tokenSecretRef.name"),
    ("secret name length", model(tokenSecretRef={"name": "a" * 254}), "spec.model.tokenSecretRef.name"),
    ("secret key", model(tokenSecretRef={"name": "hf", "key": "a/b"}), "spec.model.tokenSecretRef.key"),
    ("secret key length", model(tokenSecretRef={"name": "hf", "key": "k" * 254}), "spec.model.tokenSecretRef.key"),
    ("image length", spec(serving={"image": "i" * 1025}), "spec.serving.image"),
    ("image with a space", spec(serving={"image": "vllm/vllm-openai:latest --x"}), "spec.serving.image"),
    ("extraArgs count", spec(serving={"extraArgs": ["-v"] * 65}), "spec.serving.extraArgs"),
    ("extraArgs length", spec(serving={"extraArgs": ["a" * 2049]}), "spec.serving.extraArgs[0]"),
    ("env count", spec(serving={"env": [{"name": f"V{i}", "value": ""} for i in range(33)]}), "spec.serving.env"),
    ("env name length", spec(serving={"env": [{"name": "N" * 257}]}), "spec.serving.env[0].name"),
    ("env value length", spec(serving={"env": [{"name": "N", "value": "v" * 4097}]}), "spec.serving.env[0].value"),
    (
        "env valueFrom sources",
        spec(serving={"env": [{"name": "N", "valueFrom": {"fieldRef": {}, "secretKeyRef": {}}}]}),
        "spec.serving.env[0].valueFrom",
    ),
    ("accelerator class", spec(placement={"acceleratorClass": "a" * 64}), "spec.placement.acceleratorClass"),
    (
        "nodeSelector count",
        spec(placement={"nodeSelector": {f"k{i}": "v" for i in range(33)}}),
        "spec.placement.nodeSelector",
    ),
    (
        "nodeSelector key",
        spec(placement={"nodeSelector": {"k" * 318: "v"}}),
        f"spec.placement.nodeSelector.{'k' * 318}.[key]",
    ),
    ("nodeSelector value", spec(placement={"nodeSelector": {"k": "v" * 64}}), "spec.placement.nodeSelector.k"),
    ("nodeSelector value chars", spec(placement={"nodeSelector": {"k": "a b"}}), "spec.placement.nodeSelector.k"),
    ("tolerations count", spec(placement={"tolerations": [{"key": "k"}] * 33}), "spec.placement.tolerations"),
    ("toleration key", spec(placement={"tolerations": [{"key": "k" * 318}]}), "spec.placement.tolerations[0].key"),
    (
        "toleration value",
        spec(placement={"tolerations": [{"key": "k", "value": "v" * 64}]}),
        "spec.placement.tolerations[0].value",
    ),
    (
        "tolerationSeconds",
        spec(placement={"tolerations": [{"key": "k", "tolerationSeconds": -1}]}),
        "spec.placement.tolerations[0].tolerationSeconds",
    ),
    ("replicas", spec(replicas=INT32_MAX + 1), "spec.replicas"),
    ("maxReplicas", spec(autoscaling={"maxReplicas": INT32_MAX + 1}), "spec.autoscaling.maxReplicas"),
    ("targetUtilization zero", spec(autoscaling={"targetUtilization": 0}), "spec.autoscaling.targetUtilization"),
    ("stable window", spec(autoscaling={"stableWindowSeconds": 3601}), "spec.autoscaling.stableWindowSeconds"),
    ("scale-down delay", spec(autoscaling={"scaleDownDelaySeconds": 3601}), "spec.autoscaling.scaleDownDelaySeconds"),
    ("panic threshold", spec(autoscaling={"panicThreshold": 101}), "spec.autoscaling.panicThreshold"),
    ("scale-up rate", spec(autoscaling={"maxScaleUpRate": 101}), "spec.autoscaling.maxScaleUpRate"),
    ("scale-up pods", spec(autoscaling={"maxScaleUpPods": INT32_MAX + 1}), "spec.autoscaling.maxScaleUpPods"),
    ("scale-down rate", spec(autoscaling={"maxScaleDownRate": 101}), "spec.autoscaling.maxScaleDownRate"),
    (
        "in-flight target",
        spec(autoscaling={"targetInFlightPerReplica": 100_001}),
        "spec.autoscaling.targetInFlightPerReplica",
    ),
]


@pytest.mark.parametrize(("spec_", "field"), [case[1:] for case in OVER_BOUNDS], ids=[case[0] for case in OVER_BOUNDS])
def test_a_spec_over_a_bound_is_rejected_naming_the_field(spec_: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse_deployment(document(spec_))
    assert raised.value.field == field


WITHIN_BOUNDS: list[dict[str, Any]] = [
    model(repository="unsloth/gemma-4-E2B-it-GGUF"),
    model(repository="google/gemma-3-27b-it", revision="refs/pr/12"),
    model(revision="0123456789abcdef0123456789abcdef01234567"),
    model(revision="v1.2.3"),
    model(tokenSecretRef={"name": "hf-token.prod", "key": "HF_TOKEN.v2"}),
    spec(serving={"image": "registry.example:5000/team/vllm-openai:v0.11.0@sha256:" + "a" * 64}),
    spec(placement={"nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}}),
    spec(placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "tolerationSeconds": 300}]}),
    spec(replicas=INT32_MAX, autoscaling={"minReplicas": 1, "maxReplicas": INT32_MAX}),
]


@pytest.mark.parametrize("spec_", WITHIN_BOUNDS)
def test_real_use_fits_within_the_bounds(spec_: dict[str, Any]) -> None:
    parse_deployment(document(spec_))


def largest_spec() -> dict[str, Any]:
    """A spec at every size bound at once."""
    return {
        "model": {
            "variant": "31b",
            "repository": "o" * 96 + "/" + "r" * 96,
            "revision": "r" * 255,
            "tokenSecretRef": {"name": "s" * 253, "key": "k" * 253},
        },
        "serving": {
            "image": "i" * 1024,
            "extraArgs": ["a" * 2048] * 64,
            "env": [{"name": "N" * 256, "value": "v" * 4096} for _ in range(32)],
            "cache": {"size": "1" * 32, "storageClassName": "s" * 253},
        },
        "placement": {
            "acceleratorClass": "a" * 63,
            "nodeSelector": {"k" * 300 + str(i): "v" * 63 for i in range(32)},
            "tolerations": [{"key": "k" * 317, "value": "v" * 63}] * 32,
        },
    }


def test_the_largest_spec_stays_far_below_etcds_limit() -> None:
    parse_deployment(document(largest_spec()))
    assert len(json.dumps(largest_spec())) < ETCD_LIMIT_BYTES / 4


# --- the generated CRD ----------------------------------------------------------------------------


def spec_schema() -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd_manifest()["spec"]["versions"]  # type: ignore[index]
    schema: dict[str, Any] = versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def at(path: str) -> dict[str, Any]:
    """The schema node at a dotted path of spec, e.g. at("serving.extraArgs")."""
    node = spec_schema()
    for name in path.split("."):
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def schema_nodes(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def test_the_crd_translates_exclusive_bounds() -> None:
    utilization = at("autoscaling.targetUtilization")
    assert {key: utilization.get(key) for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")} == {
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": None,
    }
    tolerance = at("autoscaling.scaleDownTolerance")
    assert {key: tolerance[key] for key in ("minimum", "maximum", "exclusiveMaximum")} == {
        "minimum": 0,
        "maximum": 1,
        "exclusiveMaximum": True,
    }
    assert at("autoscaling.panicThreshold")["exclusiveMinimum"] is True


def test_the_crd_carries_the_size_bounds() -> None:
    assert at("serving.extraArgs")["maxItems"] == 64
    assert at("serving.extraArgs.[]")["maxLength"] == 2048
    assert at("serving.env")["maxItems"] == 32
    assert at("serving.env.[].value")["maxLength"] == 4096
    assert at("serving.env.[].valueFrom")["maxProperties"] == 1
    assert at("serving.image")["maxLength"] == 1024
    assert at("placement.nodeSelector")["maxProperties"] == 32
    assert at("placement.nodeSelector")["additionalProperties"]["maxLength"] == 63
    key_rules = [rule["rule"] for rule in at("placement.nodeSelector")["x-kubernetes-validations"]]
    assert key_rules == ["self.all(key, size(key) >= 1 && size(key) <= 317)"]
    assert at("placement.tolerations")["maxItems"] == 32
    assert at("replicas")["maximum"] == INT32_MAX
    assert at("autoscaling.stableWindowSeconds")["maximum"] == 3600


def test_every_string_list_map_and_number_of_the_spec_is_bounded() -> None:
    unbounded = [
        path
        for path, node in schema_nodes(spec_schema())
        if (node.get("type") == "string" and "maxLength" not in node and "enum" not in node)
        or (node.get("type") == "array" and "maxItems" not in node)
        or (node.get("type") == "object" and "additionalProperties" in node and "maxProperties" not in node)
        or (node.get("type") in {"integer", "number"} and "maximum" not in node)
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("path", "accepted", "refused"),
    [
        (
            "model.repository",
            ["", "google/gemma-3-27b-it", "unsloth/gemma-4-E2B-it-GGUF"],
            ["x", "a/b/c", "/x", "a/.x"],
        ),
        ("model.revision", ["", "main", "refs/pr/1", "v1.2"], ["a b", "a..b", "x\ty", "a~1"]),
        ("model.tokenSecretRef.name", ["hf", "hf-token.prod"], ["../../kube-system/x", "HF", "-x", ""]),
        ("model.tokenSecretRef.key", ["token", "HF_TOKEN.v2", "a-b"], ["a/b", "", "../x"]),
        ("placement.tolerations.[].value", ["", "true", "a.b-c_d"], ["a b", "-x", "v" * 64]),
    ],
)
def test_the_crd_patterns_match_as_the_models_do(path: str, accepted: list[str], refused: list[str]) -> None:
    node = at(path)
    pattern = re.compile(node["pattern"])

    def fits(text: str) -> bool:
        return bool(pattern.search(text)) and len(text) <= node["maxLength"] and len(text) >= node.get("minLength", 0)

    assert [text for text in accepted if not fits(text)] == []
    assert [text for text in refused if fits(text)] == []
