"""`gemma-operator simulate-autoscaling`: the built-in autoscaler against the Kubernetes HPA on one load trace."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gemma_operator.autoscaling.benchmark import compare
from gemma_operator.autoscaling.scorecard import Scorecard
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.autoscaling.traces import BUILTIN_TRACES, Trace, TraceError, read_trace_csv
from gemma_operator.cli.tables import table

OK, BAD_INPUT = 0, 2
METRICS = ("sloViolationSeconds", "replicaSeconds", "scaleDirectionChanges", "scaleUpReactionSeconds")
DEFAULTS = SimulationConfig()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subcommands.add_parser(
        "simulate-autoscaling", help="the built-in autoscaler against the Kubernetes HPA on a load trace"
    )
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", choices=list(BUILTIN_TRACES), help="a built-in trace")
    source.add_argument("--trace-file", type=Path, metavar="CSV", help="a CSV trace with the header seconds,rps")
    command.add_argument(
        "--replica-capacity", type=_positive_float, default=DEFAULTS.replica_capacity_rps, metavar="RPS"
    )
    command.add_argument(
        "--request-seconds",
        metavar="SECONDS",
        type=_positive_float,
        default=DEFAULTS.request_seconds,
        help="mean request duration; a full pod holds capacity x this many requests, the per-pod target",
    )
    command.add_argument(
        "--startup-seconds", metavar="SECONDS", type=_non_negative_int, default=DEFAULTS.startup_seconds
    )
    command.add_argument(
        "--slo-queue-seconds", metavar="SECONDS", type=_positive_float, default=DEFAULTS.slo_queue_seconds
    )
    command.add_argument("--min", metavar="N", type=_positive_int, default=DEFAULTS.min_replicas, dest="min_replicas")
    command.add_argument("--max", metavar="N", type=_positive_int, default=DEFAULTS.max_replicas, dest="max_replicas")
    command.add_argument("--scrape-seconds", metavar="SECONDS", type=_positive_int, default=DEFAULTS.scrape_seconds)
    command.add_argument("-o", "--output", choices=["table", "json"], default="table")


def simulate_command(args: argparse.Namespace) -> int:
    if args.min_replicas > args.max_replicas:
        print(f"error: --min {args.min_replicas} exceeds --max {args.max_replicas}", file=sys.stderr)
        return BAD_INPUT
    try:
        trace = _trace(args)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    config = SimulationConfig(
        replica_capacity_rps=args.replica_capacity,
        request_seconds=args.request_seconds,
        startup_seconds=args.startup_seconds,
        slo_queue_seconds=args.slo_queue_seconds,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        scrape_seconds=args.scrape_seconds,
    )
    builtin, baseline = compare(trace, config).scorecards()
    if args.output == "json":
        print(json.dumps({"trace": trace.name, "builtin": builtin.as_json(), "baseline": baseline.as_json()}))
    else:
        print(f"trace {trace.name}: {len(trace.rps)} s\n" + comparison_table(builtin, baseline))
    return OK


def _trace(args: argparse.Namespace) -> Trace:
    path: Path | None = args.trace_file
    if path is None:
        return BUILTIN_TRACES[args.trace]()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"{path}: {error}") from None
    return read_trace_csv(str(path), text)


def ratio(builtin: float | None, baseline: float | None) -> str:
    if builtin is None or baseline is None:
        return "-"
    if baseline == 0:
        return "-" if builtin == 0 else "inf"
    return f"{builtin / baseline:.2f}"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def comparison_table(builtin: Scorecard, baseline: Scorecard) -> str:
    ours, theirs = builtin.as_json(), baseline.as_json()
    rows = [
        [metric, _cell(ours[metric]), _cell(theirs[metric]), ratio(ours[metric], theirs[metric])] for metric in METRICS
    ]
    return table(["METRIC", "BUILTIN", "BASELINE", "BUILTIN/BASELINE"], rows)
