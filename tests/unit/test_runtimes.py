"""The compatibility matrix: every combination the catalog rules out is refused by name, and docs/runtimes.md agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemma_operator.api import Family, Runtime, Target
from gemma_operator.catalog import runtimes
from gemma_operator.cli.tables import markdown

from .builders import MATRIX_PRECISION, MATRIX_VARIANTS, plan_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtimes.md"
REFUSED = [
    (facts.name, family, target)
    for facts in runtimes().values()
    for family in Family
    for target in Target
    if not facts.can_serve(family, target)
]


def auto_choice(family: Family, target: Target) -> str:
    return next((facts.name.value for facts in runtimes().values() if facts.auto_serves(family, target)), "none")


@pytest.mark.parametrize(
    ("runtime", "family", "target"), REFUSED, ids=[f"{r.value}-{f.value}-{t.value}" for r, f, t in REFUSED]
)
def test_a_runtime_that_cannot_serve_is_refused_naming_both_and_the_way_out(
    runtime: Runtime, family: Family, target: Target
) -> None:
    variant = MATRIX_VARIANTS[(family, target)]
    report = plan_for(
        model={"family": family.value, "variant": variant, "precision": MATRIX_PRECISION},
        serving={"runtime": runtime.value},
        placement={"target": target.value},
    )
    assert not report.fits
    assert report.runtime is None
    [problem] = report.problems
    assert problem.startswith(
        f"runtime {runtime.value} cannot serve {family.value} {variant} on {target.value} nodes: "
    )
    reason = runtimes()[runtime].unsupported_reason.get(family)
    if reason:
        assert reason in problem
    assert problem.endswith(f"; use runtime {auto_choice(family, target)} (or auto)")


def test_tgi_is_refused_for_every_gemma_4_with_the_reason() -> None:
    for target in Target:
        assert not runtimes()[Runtime.TGI].can_serve(Family.GEMMA_4, target)
    assert "no Gemma 4 architecture code" in runtimes()[Runtime.TGI].unsupported_reason[Family.GEMMA_4]


def matrix_table() -> str:
    """The compatibility matrix as docs/runtimes.md shows it, from catalog/runtimes.yaml."""

    def cell(runtime: Runtime, family: Family, target: Target) -> str:
        facts = runtimes()[runtime]
        if facts.auto_serves(family, target):
            return "yes"
        return "explicit only" if facts.can_serve(family, target) else "no"

    rows = [
        [
            family.value,
            target.value,
            *(cell(runtime, family, target) for runtime in runtimes()),
            auto_choice(family, target),
        ]
        for family in Family
        for target in Target
    ]
    return markdown(["family", "hardware", *(runtime.value for runtime in runtimes()), "auto picks"], rows)


def test_the_documented_matrix_is_the_catalog() -> None:
    assert matrix_table() in DOC.read_text(encoding="utf-8"), (
        "docs/runtimes.md's compatibility matrix differs from catalog/runtimes.yaml; it should read:\n" + matrix_table()
    )
