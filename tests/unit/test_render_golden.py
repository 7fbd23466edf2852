"""rendering: every child of every spec the other tests render, exactly as the jinja2 templates rendered it.

tests/unit/data/render_golden.json was captured from the template renderer before the children became
Python dicts, so the rewrite changed no manifest. A deliberate change to a child updates the file too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gemma_operator.api import parse_deployment
from gemma_operator.rendering import render

from .builders import fitted

GOLDEN: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "render_golden.json").read_text())
# What JSON and YAML write as they are: no enum or other subclass (yaml.safe_dump refuses those), no tuple.
PLAIN_TYPES = {dict, list, str, int, bool}


def rendered(case: dict[str, Any]) -> list[dict[str, Any]]:
    gd = parse_deployment(case["gemmaDeployment"])
    return render(gd, fitted(gd), case["replicas"])


def values(value: object) -> Iterator[object]:
    yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        yield from values(child)


def test_the_golden_cases_cover_every_child_and_option() -> None:
    kinds = {child["kind"] for case in GOLDEN for child in case["children"]}
    assert kinds == {"PersistentVolumeClaim", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"}
    assert len(GOLDEN) == len({case["id"] for case in GOLDEN}) >= 50


@pytest.mark.parametrize("case", GOLDEN, ids=[case["id"] for case in GOLDEN])
def test_children_are_those_of_the_golden_file(case: dict[str, Any]) -> None:
    children = rendered(case)
    assert children == case["children"]
    # == takes True for 1 and 1.0 for 1; JSON tells them apart.
    assert json.dumps(children, sort_keys=True) == json.dumps(case["children"], sort_keys=True)
    assert {type(value) for value in values(children)} <= PLAIN_TYPES


def test_children_share_no_dict_or_list() -> None:
    # The reconciler adds ownerReferences to each child's metadata: a dict shared between children, or kept
    # by the renderer, would carry it elsewhere.
    (case,) = [case for case in GOLDEN if case["id"] == "everything-gpu"]
    first = rendered(case)
    containers = [value for value in values(first) if isinstance(value, dict | list)]
    assert len({id(value) for value in containers}) == len(containers)
    for container in containers:
        if isinstance(container, dict):
            container["changed"] = True
        else:
            container.append("changed")
    assert rendered(case) == case["children"]
