"""The CRD: generated from the models, structural and documented (test_generated.py: committed as generated)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from gemma_operator.cli.commands import crd_manifest


def version() -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd_manifest()["spec"]["versions"]  # type: ignore[index]
    return versions[0]


def fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from fields(child, f"{path}.{name}")
    if "items" in schema:
        yield from fields(schema["items"], f"{path}[]")


def test_every_field_is_described_and_typed() -> None:
    schema = version()["schema"]["openAPIV3Schema"]
    undocumented = [path for path, node in fields(schema) if not node.get("description") and path != ".metadata"]
    untyped = [path for path, node in fields(schema) if "type" not in node]
    assert undocumented == []
    assert untyped == []
    text = yaml.safe_dump(schema)
    assert "$ref" not in text
    assert "anyOf" not in text


def test_defaults_enums_and_bounds_reach_the_schema() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    model = spec["properties"]["model"]["properties"]
    serving = spec["properties"]["serving"]["properties"]
    assert model["family"] == {**model["family"], "default": "gemma-4", "enum": ["gemma-4", "gemma-3"]}
    assert serving["maxContextTokens"]["default"] == 8192
    assert serving["maxConcurrentSequences"]["minimum"] == 1
    assert spec["properties"]["serving"]["default"] == {}
    assert spec["properties"]["replicas"]["default"] == 1


def test_cel_rules_cover_the_cross_field_constraints() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    model_rules = spec["properties"]["model"]["x-kubernetes-validations"]
    assert "self.variant in ['e2b', 'e4b', '26b-a4b', '31b', '12b']" in model_rules[0]["rule"]
    assert "self.variant in ['1b', '4b', '12b', '27b']" in model_rules[0]["rule"]
    autoscaling_rules = spec["properties"]["autoscaling"]["x-kubernetes-validations"]
    assert autoscaling_rules[0]["rule"].endswith("self.minReplicas <= self.maxReplicas")
    gpu_rules = spec["properties"]["placement"]["properties"]["gpusPerReplica"]["x-kubernetes-validations"]
    assert gpu_rules[0]["rule"] == "self in [0, 1, 2, 4, 8]"
    cache_rules = [
        rule["rule"] for rule in spec["properties"]["serving"]["properties"]["cache"]["x-kubernetes-validations"]
    ]
    assert cache_rules == [
        "(has(self.claimName) && self.claimName != '') != (has(self.size) && self.size != '')",
        "!has(self.storageClassName) || self.storageClassName == '' || (has(self.size) && self.size != '')",
    ]
    gpu_only = spec["x-kubernetes-validations"][0]
    assert "['26b-a4b', '31b']" in gpu_only["rule"]
    assert gpu_only["fieldPath"] == ".placement.target"


def test_subresources_names_and_columns() -> None:
    manifest = crd_manifest()
    names = manifest["spec"]["names"]  # type: ignore[index]
    assert names["shortNames"] == ["gd", "gemma"]
    assert names["plural"] == "gemmadeployments"
    scale = version()["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert version()["subresources"]["status"] == {}
    columns = [column["name"] for column in version()["additionalPrinterColumns"]]
    for wanted in ["Variant", "Runtime", "Accelerator", "GPUs", "Ready", "Age"]:
        assert wanted in columns
