"""`gemma-operator simulate-autoscaling` as a user runs it, and the benchmark goal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_docgen.autoscaling_page import CONFIG, goal_met
from gemma_operator.autoscaling.benchmark import compare
from gemma_operator.autoscaling.traces import BUILTIN_TRACES
from gemma_operator.cli.simulate import METRICS as ORDERED_METRICS

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "gemma_operator.cli", "simulate-autoscaling"]
METRICS = set(ORDERED_METRICS)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False, cwd=ROOT)


def test_json_has_exactly_the_agreed_keys() -> None:
    result = run("--trace", "spike", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"trace", "builtin", "baseline"}
    assert report["trace"] == "spike"
    assert set(report["builtin"]) == METRICS
    assert set(report["baseline"]) == METRICS


def test_table_compares_the_two_sides(tmp_path: Path) -> None:
    trace = tmp_path / "burst.csv"
    trace.write_text("seconds,rps\n0,3\n300,9\n600,3\n1200,3\n")
    result = run("--trace-file", trace, "--startup-seconds", "60", "--max", "8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"trace {trace}: 1201 s"
    assert lines[1].split() == ["METRIC", "BUILTIN", "BASELINE", "BUILTIN/BASELINE"]
    assert [line.split()[0] for line in lines[2:]] == list(ORDERED_METRICS)


def test_a_bad_csv_names_line_and_field_and_exits_2(tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("seconds,rps\n0,3\n60,lots\n")
    result = run("--trace-file", trace)
    assert result.returncode == 2
    assert result.stderr == f"error: {trace}: line 3: field rps: not a number: 'lots'\n"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace-file", "/nonexistent.csv"], "error: /nonexistent.csv:"),
        (["--trace", "step", "--min", "5", "--max", "2"], "error: --min 5 exceeds --max 2"),
        (["--trace", "step", "--min", "0"], "argument --min: must be >= 1, got 0"),
        (["--trace", "weekly"], "argument --trace: invalid choice"),
        ([], "one of the arguments --trace --trace-file is required"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", list(BUILTIN_TRACES))
def test_the_goal_holds_on_every_builtin_trace(name: str) -> None:
    builtin, baseline = compare(BUILTIN_TRACES[name](), CONFIG).scorecards()
    assert goal_met(builtin, baseline), (builtin, baseline)
