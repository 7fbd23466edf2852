"""Rendering charts/gemma-operator with the real helm binary, for the chart's unit tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gemma_docgen.operator_manifest import CHART as CHART_PATH
from gemma_docgen.operator_manifest import NAMESPACE, RELEASE

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / CHART_PATH
PINNED_HELM = ROOT / ".e2e" / "bin" / "helm"


def helm_binary() -> str:
    """The pinned helm that `make helm` installs, else one on PATH; the tests fail without either."""
    if PINNED_HELM.is_file():
        return str(PINNED_HELM)
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm is not installed: run `make helm` (make unit does), which puts it in .e2e/bin")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)


def set_flags(values: dict[str, str] | None) -> list[str]:
    return [flag for key, value in (values or {}).items() for flag in ("--set", f"{key}={value}")]


def template_text(values: dict[str, str] | None = None, extra: Iterable[str] = ()) -> str:
    """`helm template` output of the chart, with `values` set."""
    result = helm(
        "template", RELEASE, str(CHART.relative_to(ROOT)), "--namespace", NAMESPACE, *set_flags(values), *extra
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(values: dict[str, str] | None = None, extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(template_text(values, extra)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb) triples."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
