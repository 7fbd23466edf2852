"""The autoscaling benchmark suite: every rate shape, and slices of the Azure LLM inference traces at several
rate and time scales, under every side of the benchmark.

`python -m gemma_docgen.autoscaling_suite` (`make bench-autoscaling`, a few minutes) runs it and writes
docs/benchmarks/autoscaling-suite.json: each trace's scorecards and, for the plotted ones, the series the plots
draw. docs/benchmarks/autoscaling.md and its plots are generated from that file by `make generate`, so that
the fast unit tests can check the page against it without running the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from gemma_operator.autoscaling.benchmark import BuiltinAutoscaler, Comparison, compare, default_policy, shape_workload
from gemma_operator.autoscaling.scorecard import percentile, score
from gemma_operator.autoscaling.simulation import SimulationConfig, simulate
from gemma_operator.autoscaling.traces import BUILTIN_TRACES, Workload, read_workload_csv, scaled, window

CONFIG = SimulationConfig()
# The built-in once more, without headroom: how much of its lead, and of its cost, the headroom is.
LEAN_UTILIZATION = 1.0
LEAN = CONFIG.autoscaling_spec().model_copy(update={"target_utilization": LEAN_UTILIZATION})
TRACES = Path("docs/benchmarks/traces")
RESULTS = Path("docs/benchmarks/autoscaling-suite.json")
PLOTTED = ("surge", "bursts", "azure-conv [0-30 min] x4", "azure-code [0-30 min] x6")
PLOT_EVERY_SECONDS = 10
# The plots' TTFT axis stops here (a request never served counts at it): beyond it, a wait is a wait.
TTFT_PLOT_CAP_SECONDS = 30.0
HALF_HOUR = 1800


@dataclass(frozen=True)
class Case:
    label: str
    make: Callable[[], Workload]


def _azure(service: str, root: Path) -> Workload:
    path = root / TRACES / f"AzureLLMInferenceTrace_{service}.csv"
    workload = read_workload_csv(
        f"azure-{service}", path.read_text(encoding="utf-8"), max_tokens=CONFIG.max_context_tokens
    )
    return workload


def cases(root: Path) -> list[Case]:
    """The suite: every rate shape, and slices of the two Azure services: half hours at two rate scales (a pod
    serves about 5 conversation requests a second, or 30 code ones), and each whole hour compressed to half."""
    shapes = [Case(name, partial(_shape, name)) for name in BUILTIN_TRACES]
    real: list[Case] = []
    for service, rates in (("conv", (4, 8)), ("code", (6, 12))):
        for start, rate in ((0, rates[0]), (0, rates[1]), (HALF_HOUR, rates[0])):
            label = f"azure-{service} [{start // 60}-{(start + HALF_HOUR) // 60} min] x{rate}"
            real.append(Case(label, partial(_slice, root, service, start, HALF_HOUR, rate, 1.0)))
        label = f"azure-{service} [0-60 min] x{rates[0]} t0.5"
        real.append(Case(label, partial(_slice, root, service, 0, 2 * HALF_HOUR, rates[0], 0.5)))
    return shapes + real


def _shape(name: str) -> Workload:
    return shape_workload(BUILTIN_TRACES[name](), CONFIG)


def _slice(root: Path, service: str, start: int, seconds: int, rate: float, time: float) -> Workload:
    return scaled(window(_azure(service, root), start, seconds), rate, time)


def _series(comparison: Comparison) -> dict[str, dict[str, list[float]]]:
    """Per side, downsampled: replicas, requests waiting, and the p95 TTFT of each interval's arrivals (capped)."""
    series: dict[str, dict[str, list[float]]] = {}
    for side, run in comparison.runs.items():
        buckets: dict[int, list[float]] = {}
        for outcome in run.outcomes:
            ttft = TTFT_PLOT_CAP_SECONDS if outcome.ttft is None else min(outcome.ttft, TTFT_PLOT_CAP_SECONDS)
            buckets.setdefault(int(outcome.arrival) // PLOT_EVERY_SECONDS, []).append(ttft)
        count = len(run.seconds) // PLOT_EVERY_SECONDS
        series[side] = {
            "replicas": [run.seconds[k * PLOT_EVERY_SECONDS].replicas for k in range(count)],
            "waiting": [run.seconds[k * PLOT_EVERY_SECONDS].waiting for k in range(count)],
            "ttftP95": [round(percentile(buckets.get(k, []), 0.95), 3) for k in range(count)],
        }
    return series


def run_suite(root: Path) -> dict[str, object]:
    results: list[dict[str, object]] = []
    for case in cases(root):
        workload = case.make()
        comparison = compare(workload, CONFIG)
        lean = BuiltinAutoscaler(default_policy(CONFIG, LEAN), CONFIG.scrape_seconds)
        entry: dict[str, object] = {
            "trace": case.label,
            "seconds": workload.seconds,
            "requests": len(workload.requests),
            "sides": {side: card.as_json() for side, card in comparison.scorecards().items()},
            "leanBuiltin": score(simulate(workload, CONFIG, lean)).as_json(),
        }
        if case.label in PLOTTED:
            entry["series"] = _series(comparison)
        results.append(entry)
        print(case.label, json.dumps(entry["sides"]), flush=True)
    return {
        "model": CONFIG.serving.label,
        "maxBatch": CONFIG.serving.max_batch,
        "startupSeconds": CONFIG.pod_startup_seconds,
        "plotEverySeconds": PLOT_EVERY_SECONDS,
        "traces": results,
    }


def main() -> None:
    root = Path()
    (root / RESULTS).write_text(json.dumps(run_suite(root), indent=1) + "\n", encoding="utf-8")
    print(RESULTS)


if __name__ == "__main__":
    main()
