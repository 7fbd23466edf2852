"""`gemma-operator size`: what a request trace costs on every configuration that can serve it, under the
built-in autoscaler, at its SLOs; the cheapest that meets them marked."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gemma_operator.api import Precision
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.autoscaling.sizing import (
    DEFAULT_ACCELERATORS,
    DEFAULT_PRECISIONS,
    DEFAULT_VARIANTS,
    WARM_UP_SECONDS,
    Sizing,
    Slo,
    cheapest,
    configurations,
    size,
)
from gemma_operator.autoscaling.traces import LENGTHS, TraceError, scaled
from gemma_operator.catalog import default_accelerator_classes, variant_names
from gemma_operator.cli.simulate import DEFAULT_LENGTHS, _non_negative_int, _positive_float, read_trace_file
from gemma_operator.cli.tables import table

OK, BAD_INPUT = 0, 2
SLO_DEFAULTS = Slo()


def _listed(allowed: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)} (known: {', '.join(allowed)})"
            )
        return items

    return parse


def parse_prices(text: str) -> dict[str, float]:
    """`CLASS=PRICE,...` per GPU-hour; an error names the item it cannot read."""
    classes = default_accelerator_classes().classes
    prices: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        name, equals, value = item.partition("=")
        if not equals or name.strip() not in classes:
            raise argparse.ArgumentTypeError(f"{item!r}: expected CLASS=PRICE with CLASS one of {', '.join(classes)}")
        try:
            price = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: the price {value!r} is not a number") from None
        if not price >= 0:
            raise argparse.ArgumentTypeError(f"{item!r}: a price must be >= 0")
        prices[name.strip()] = price
    return prices


def add_parser(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subcommands.add_parser(
        "size", help="what a request trace costs on each variant, precision and accelerator, at its SLOs"
    )
    command.add_argument("--trace-file", type=Path, metavar="CSV", required=True, help="a trace of either format")
    command.add_argument("--lengths", choices=list(LENGTHS), default=DEFAULT_LENGTHS, help="for a rate trace")
    command.add_argument("--rate-scale", type=_positive_float, default=1.0, metavar="X", help="x the request rate")
    command.add_argument("--time-scale", type=_positive_float, default=1.0, metavar="X", help="x the trace's time")
    command.add_argument(
        "--variants", type=_listed(variant_names()["gemma-4"], "variant"), default=DEFAULT_VARIANTS, metavar="LIST"
    )
    command.add_argument(
        "--precisions",
        type=_listed([p.value for p in Precision], "precision"),
        default=tuple(p.value for p in DEFAULT_PRECISIONS),
        metavar="LIST",
    )
    command.add_argument(
        "--accelerators",
        type=_listed(list(default_accelerator_classes().classes), "accelerator class"),
        default=DEFAULT_ACCELERATORS,
        metavar="LIST",
    )
    command.add_argument(
        "--prices", type=parse_prices, metavar="CLASS=PRICE,...", help="per GPU-hour (without: rank by GPU-hours)"
    )
    command.add_argument("--ttft-p95", type=_positive_float, default=SLO_DEFAULTS.ttft_p95_seconds, metavar="SECONDS")
    command.add_argument("--tpot-p95", type=_positive_float, default=SLO_DEFAULTS.tpot_p95_seconds, metavar="SECONDS")
    command.add_argument(
        "--warm-up-seconds",
        type=_non_negative_int,
        default=WARM_UP_SECONDS,
        metavar="SECONDS",
        help="the trace's first seconds, left out of the verdict and the GPU-hours (the simulation starts cold)",
    )
    command.add_argument("-o", "--output", choices=["table", "json"], default="table")


def size_command(args: argparse.Namespace) -> int:
    candidates = configurations(args.variants, [Precision(p) for p in args.precisions], args.accelerators)
    prices: dict[str, float] | None = args.prices
    if prices is not None:
        missing = [a for a in args.accelerators if a not in prices]
        if missing:
            print(f"error: --prices has no price for {', '.join(missing)}", file=sys.stderr)
            return BAD_INPUT
    try:
        workload = read_trace_file(args.trace_file, LENGTHS[args.lengths], SimulationConfig().max_context_tokens)
        workload = scaled(workload, args.rate_scale, args.time_scale)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    sizings = size(workload, candidates, Slo(args.ttft_p95, args.tpot_p95), prices, args.warm_up_seconds)
    if args.output == "json":
        print(json.dumps([s.as_json() for s in sizings]))
    else:
        warm_up = sizings[0].measurement.warm_up_seconds
        print(f"trace {workload.name}: {workload.seconds} s ({warm_up} s warm-up), {len(workload.requests)} requests")
        print(sizing_table(sizings))
    return OK


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.3g}"


def sizing_table(sizings: Sequence[Sizing]) -> str:
    best = cheapest(sizings)
    rows = []
    for s in sizings:
        c, m = s.measurement.configuration, s.measurement
        head = ["*" if s is best else "", c.variant, c.precision.value, c.accelerator]
        if m.refusal is not None:
            rows.append([*head, "-", "-", "-", "-", "-", "-", "-", "no", f"refused: {m.refusal}"])
            continue
        p95 = f"ttft {_seconds(m.ttft_p95_seconds)} tpot {_seconds(m.tpot_p95_seconds)}"
        rows.append(
            [
                *head,
                str(m.gpus_per_replica),
                f"{m.replicas_peak}{'+' if m.at_max_replicas else ''}",
                f"{s.gpu_hours:.2f}",
                f"{s.gpu_hours_per_day:.1f}",
                _number(s.cost_per_hour_peak),
                _number(s.cost_per_hour),
                _number(s.cost_per_million_tokens),
                "yes" if s.meets_slo else "no",
                p95,
            ]
        )
    header = ["", "VARIANT", "PRECISION", "ACCEL", "GPUS/REPLICA", "PEAK REPLICAS", "GPU-H", "GPU-H/DAY"]
    header += ["COST/H PEAK", "COST/H AVG", "COST/M TOKENS", "SLO", "P95 (s) / REASON"]
    note = "* the cheapest that meets the SLOs" + ("" if best else ": none does")
    return table(header, rows) + "\n" + note
