"""`gemma-operator simulate-autoscaling`: the built-in autoscaler against the HPA, KEDA and Knative's KPA, and a
clairvoyant oracle, on one request trace served by the token-level model of a planned replica."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gemma_operator.api import Precision
from gemma_operator.autoscaling.benchmark import Comparison, compare, shape_workload
from gemma_operator.autoscaling.scorecard import Scorecard
from gemma_operator.autoscaling.serving import NotServable
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.autoscaling.traces import (
    BUILTIN_TRACES,
    LENGTHS,
    Lengths,
    TraceError,
    Workload,
    read_workload_csv,
    scaled,
)
from gemma_operator.catalog import default_accelerator_classes, variant_names
from gemma_operator.cli.tables import table

OK, BAD_INPUT = 0, 2
METRICS = ("sloViolationSeconds", "replicaSeconds", "scaleDirectionChanges", "ttftP95Seconds", "tpotP95Seconds")
BASELINES = ("hpa", "keda", "kpa")
DEFAULTS = SimulationConfig()
DEFAULT_LENGTHS = "conversation"


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
        "simulate-autoscaling", help="the built-in autoscaler against the HPA, KEDA and KPA on a request trace"
    )
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", choices=list(BUILTIN_TRACES), help="a built-in rate shape")
    source.add_argument(
        "--trace-file",
        type=Path,
        metavar="CSV",
        help="a CSV trace: `seconds,rps` rows, or Azure `TIMESTAMP,ContextTokens,GeneratedTokens` request rows",
    )
    command.add_argument(
        "--lengths",
        choices=list(LENGTHS),
        default=DEFAULT_LENGTHS,
        help="the token-length statistics requests of a rate trace are drawn from",
    )
    command.add_argument("--rate-scale", type=_positive_float, default=1.0, metavar="X", help="x the request rate")
    command.add_argument("--time-scale", type=_positive_float, default=1.0, metavar="X", help="x the trace's time")
    command.add_argument("--variant", choices=variant_names()["gemma-4"], default=DEFAULTS.variant)
    command.add_argument("--precision", choices=[p.value for p in Precision], default=DEFAULTS.precision.value)
    command.add_argument(
        "--accelerator", choices=list(default_accelerator_classes().classes), default=DEFAULTS.accelerator
    )
    command.add_argument(
        "--max-context-tokens", type=_positive_int, default=DEFAULTS.max_context_tokens, metavar="TOKENS"
    )
    command.add_argument(
        "--max-concurrent-sequences",
        type=_positive_int,
        default=DEFAULTS.max_concurrent_sequences,
        metavar="N",
        help="the deployment's maxConcurrentSequences (default: the most the plan fits)",
    )
    command.add_argument(
        "--startup-seconds",
        metavar="SECONDS",
        type=_non_negative_int,
        default=DEFAULTS.startup_seconds,
        help="pod startup (default: engine initialisation plus the weights at the stated load bandwidth)",
    )
    command.add_argument(
        "--slo-ttft-seconds", metavar="SECONDS", type=_positive_float, default=DEFAULTS.slo_ttft_seconds
    )
    command.add_argument(
        "--slo-tpot-seconds", metavar="SECONDS", type=_positive_float, default=DEFAULTS.slo_tpot_seconds
    )
    command.add_argument("--min", metavar="N", type=_positive_int, default=DEFAULTS.min_replicas, dest="min_replicas")
    command.add_argument("--max", metavar="N", type=_positive_int, default=DEFAULTS.max_replicas, dest="max_replicas")
    command.add_argument("--scrape-seconds", metavar="SECONDS", type=_positive_int, default=DEFAULTS.scrape_seconds)
    command.add_argument("-o", "--output", choices=["table", "json"], default="table")


def simulate_command(args: argparse.Namespace) -> int:
    if args.min_replicas > args.max_replicas:
        print(f"error: --min {args.min_replicas} exceeds --max {args.max_replicas}", file=sys.stderr)
        return BAD_INPUT
    config = SimulationConfig(
        variant=args.variant,
        precision=Precision(args.precision),
        accelerator=args.accelerator,
        max_context_tokens=args.max_context_tokens,
        max_concurrent_sequences=args.max_concurrent_sequences,
        startup_seconds=args.startup_seconds,
        slo_ttft_seconds=args.slo_ttft_seconds,
        slo_tpot_seconds=args.slo_tpot_seconds,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        scrape_seconds=args.scrape_seconds,
    )
    try:
        workload = scaled(_workload(args, config), args.rate_scale, args.time_scale)
        comparison = compare(workload, config)
    except (TraceError, NotServable) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    if args.output == "json":
        print(json.dumps(report(comparison)))
    else:
        print(f"trace {workload.name}: {workload.seconds} s, {len(workload.requests)} requests, {config.serving.label}")
        print(comparison_table(comparison))
    return OK


def report(comparison: Comparison) -> dict[str, object]:
    """The JSON the command prints: `builtin` and `baseline` (the HPA), `baselines` by name, and `oracle`."""
    cards = {side: card.as_json() for side, card in comparison.scorecards().items()}
    return {
        "trace": comparison.trace,
        "builtin": cards["builtin"],
        "baseline": cards["hpa"],
        "baselines": {name: cards[name] for name in BASELINES},
        "oracle": cards["oracle"],
    }


def _workload(args: argparse.Namespace, config: SimulationConfig) -> Workload:
    lengths = LENGTHS[args.lengths]
    path: Path | None = args.trace_file
    if path is None:
        return shape_workload(BUILTIN_TRACES[args.trace](), config, lengths)
    return read_trace_file(path, lengths, config.max_context_tokens)


def read_trace_file(path: Path, lengths: Lengths, max_tokens: int) -> Workload:
    """A CSV trace of either format; a file that cannot be read is a TraceError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"{path}: {error}") from None
    return read_workload_csv(str(path), text, lengths, max_tokens)


def ratio(builtin: float | None, baseline: float | None) -> str:
    if builtin is None or baseline is None:
        return "-"
    if baseline == 0:
        return "-" if builtin == 0 else "inf"
    return f"{builtin / baseline:.2f}"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def comparison_table(comparison: Comparison) -> str:
    cards: dict[str, Scorecard] = comparison.scorecards()
    sides = ("builtin", *BASELINES, "oracle")
    values = {side: cards[side].as_json() for side in sides}
    rows = [
        [
            metric,
            *(_cell(values[side][metric]) for side in sides),
            ratio(values["builtin"][metric], values["hpa"][metric]),
        ]
        for metric in METRICS
    ]
    return table(["METRIC", *(side.upper() for side in sides), "BUILTIN/HPA"], rows)
