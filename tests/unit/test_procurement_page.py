"""docs/procurement.md says what the measurements say: its one-H100 verdict follows them, not the text."""

from __future__ import annotations

import copy
import json
from typing import Any

from gemma_docgen.procurement_page import procurement_document
from gemma_docgen.procurement_suite import RESULTS

from .chart import ROOT


def _results() -> dict[str, Any]:
    results: dict[str, Any] = json.loads((ROOT / RESULTS).read_text(encoding="utf-8"))
    return results


def _claim(document: str, variant: str) -> str:
    return next(line for line in document.splitlines() if line.startswith(f"- **gemma-4 {variant}**"))


def test_the_one_h100_verdict_follows_the_measurements() -> None:
    results = _results()
    cheaper = copy.deepcopy(results)
    # Make every 31B one-H100 run nearly free: it becomes the variant's cheapest wherever it meets the SLOs.
    for entry in cheaper["slices"]:
        for m in entry["measurements"]:
            if m["variant"] == "31b" and m["accelerator"] == "h100" and m["refusal"] is None:
                m["replicaSeconds"] = 1
    before, after = _claim(procurement_document(results), "31b"), _claim(procurement_document(cheaper), "31b")
    assert "cheapest configuration on no slice" in before
    assert "cheapest configuration on no slice" not in after
    assert "elsewhere it costs more" not in after or after.count("x the cost") < before.count("x the cost")


def test_every_refusal_is_listed() -> None:
    document = procurement_document(_results())
    refused = {
        (m["variant"], m["precision"], m["accelerator"])
        for entry in _results()["slices"]
        for m in entry["measurements"]
        if m["refusal"] is not None
    }
    assert refused
    for variant, precision, accelerator in refused:
        assert f"- gemma-4 {variant} {precision} on {accelerator}: the plan refuses" in document
