"""`gemma-operator simulate-autoscaling` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_operator.cli.simulate import METRICS as ORDERED_METRICS

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
CLI = [sys.executable, "-m", "gemma_operator.cli", "simulate-autoscaling"]
METRICS = set(ORDERED_METRICS)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False, cwd=ROOT)


def test_json_has_the_agreed_keys_on_every_side() -> None:
    result = run("--trace-file", DATA / "azure_conv_head.csv", "--rate-scale", "3", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"trace", "builtin", "baseline", "baselines", "oracle"}
    assert set(report["baselines"]) == {"hpa", "keda", "kpa"}
    assert report["baseline"] == report["baselines"]["hpa"]
    for side in (report["builtin"], report["oracle"], *report["baselines"].values()):
        assert set(side) == METRICS
        assert side["replicaSeconds"] > 0


def test_table_compares_every_side(tmp_path: Path) -> None:
    trace = tmp_path / "burst.csv"
    trace.write_text("seconds,rps\n0,3\n120,9\n240,3\n300,3\n")
    result = run("--trace-file", trace, "--startup-seconds", "60", "--max", "8", "--time-scale", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace} t2: 602 s, ")
    assert lines[0].endswith("gemma-4 26b-a4b bf16 on h100 (vllm 0.33.0)")
    assert lines[1].split() == ["METRIC", "BUILTIN", "HPA", "KEDA", "KPA", "ORACLE", "BUILTIN/HPA"]
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
        (["--trace", "step", "--accelerator", "tpu"], "argument --accelerator: invalid choice"),
        (["--trace", "step", "--max-context-tokens", "100000000"], "error: spec.serving.maxContextTokens"),
        ([], "one of the arguments --trace --trace-file is required"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
