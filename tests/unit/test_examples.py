"""manifests/examples/: every example plans, fits and renders valid children; the extra ones show what they say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gemma_operator.api import KIND, parse_deployment
from gemma_operator.rendering import render

from .builders import fitted

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
KUBERNETES_VERSION = "1.36.0"


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((ROOT / "manifests" / "examples" / name).read_text()) if doc]


def gemma_of(name: str) -> dict[str, Any]:
    return next(doc for doc in documents(name) if doc["kind"] == KIND)


def test_the_brief_scenarios_stay_four() -> None:
    # tests/unit/test_cli.py and make demo take gemma-4-*.yaml as the four brief scenarios.
    assert len([path for path in EXAMPLES if path.name.startswith("gemma-4-")]) == 4
    assert len(EXAMPLES) == 7


def test_plan_accepts_every_example() -> None:
    command = [sys.executable, "-m", "gemma_operator.cli", "plan", *map(str, EXAMPLES), "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    plans = json.loads(result.stdout)
    assert len(plans) == len(EXAMPLES)  # the Secret is skipped, one GemmaDeployment per file
    assert all(p["fits"] for p in plans)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_renders_valid_children(path: Path) -> None:
    for doc in documents(path.name):
        if doc["kind"] != KIND:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            continue
        deployment = parse_deployment(doc)
        for child in render(deployment, fitted(deployment)):
            if child["apiVersion"] != "monitoring.coreos.com/v1":
                kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


def test_autoscaling_example() -> None:
    spec = gemma_of("autoscaling-26b-a4b-h100.yaml")["spec"]
    autoscaling = parse_deployment(gemma_of("autoscaling-26b-a4b-h100.yaml")).spec.autoscaling
    assert autoscaling.enabled
    assert autoscaling.min_replicas < autoscaling.max_replicas
    assert "replicas" not in spec  # the autoscaler's to set


def test_token_secret_example_references_its_secret() -> None:
    secret, gemma = documents("token-secret.yaml")
    assert secret["kind"] == "Secret"
    reference = gemma["spec"]["model"]["tokenSecretRef"]
    assert reference["name"] == secret["metadata"]["name"]
    assert secret["metadata"]["namespace"] == gemma["metadata"]["namespace"]
    assert reference["key"] in secret["stringData"]
    assert "REPLACE" in secret["stringData"][reference["key"]]  # a placeholder, never a real token
    deployment = parse_deployment(gemma)
    workload = next(c for c in render(deployment, fitted(deployment)) if c["kind"] == "Deployment")
    env = workload["spec"]["template"]["spec"]["containers"][0]["env"]
    by_reference = [v for v in env if "valueFrom" in v]
    assert by_reference
    assert all(v["valueFrom"]["secretKeyRef"] == reference for v in by_reference)


def test_gemma_3_example_runs_on_tgi() -> None:
    deployment = parse_deployment(gemma_of("gemma-3-27b-tgi-h100.yaml"))
    report = fitted(deployment)
    assert report.runtime.name.value == "tgi"
    assert "text-generation-inference" in report.runtime.image
    assert report.placement.accelerator_class == "h100"
