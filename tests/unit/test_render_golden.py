"""rendering: every child of every spec the other tests render, exactly as the jinja2 templates rendered it.

tests/unit/data/render_golden.json was captured from the template renderer before the children became
Python dicts, so the rewrite changed no manifest. A deliberate change to a child updates the file too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gemma_operator.api import parse_deployment
from gemma_operator.rendering import render

from .builders import fitted

GOLDEN: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "render_golden.json").read_text())


def test_the_golden_cases_cover_every_child_and_option() -> None:
    kinds = {child["kind"] for case in GOLDEN for child in case["children"]}
    assert kinds == {"PersistentVolumeClaim", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"}
    assert len(GOLDEN) == len({case["id"] for case in GOLDEN}) >= 50


@pytest.mark.parametrize("case", GOLDEN, ids=[case["id"] for case in GOLDEN])
def test_children_are_those_of_the_golden_file(case: dict[str, Any]) -> None:
    gd = parse_deployment(case["gemmaDeployment"])
    assert render(gd, fitted(gd), case["replicas"]) == case["children"]
