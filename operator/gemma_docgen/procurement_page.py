"""docs/procurement.md and its plot: the procurement measurements (procurement_suite.py) judged and priced by
autoscaling/sizing.py, the same code as `gemma-operator size`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gemma_docgen.procurement_suite import RESULTS
from gemma_docgen.svg import Panel, Series, labelled_chart
from gemma_operator.api import Family
from gemma_operator.autoscaling.sizing import (
    DEFAULT_ACCELERATORS,
    DEFAULT_VARIANTS,
    SIZING_MAX_REPLICAS,
    Measurement,
    Sizing,
    Slo,
    cheapest,
    price,
)
from gemma_operator.catalog import lookup
from gemma_operator.cli.tables import markdown

# In docs/benchmarks/, beside the other plots; the page links it from docs/.
PLOT = "procurement-cost.svg"
# Example list prices per GPU-hour, any currency: the illustration, not a quote. Every number below in
# money scales with them; the GPU-hour columns do not depend on them.
EXAMPLE_PRICES = {"h100": 2.9, "h200": 3.8, "l4": 0.7}
# The accelerator the launch coverage names: "26B and 31B on a single 80 GB H100".
CLAIM_ACCELERATOR = "h100"
COLORS = {"26b-a4b": "#1f77b4", "31b": "#d62728"}


@dataclass(frozen=True)
class Slice:
    service: str
    trace: str
    rate_scale: float
    requests_per_second: float
    sizings: tuple[Sizing, ...]

    @property
    def load(self) -> str:
        return f"x{self.rate_scale:g} ({self.requests_per_second:.1f} req/s)"


def slices(results: dict[str, Any]) -> list[Slice]:
    """Each slice judged at the default SLOs and priced at the example prices."""
    return [
        Slice(
            s["service"],
            s["trace"],
            s["rateScale"],
            s["requests"] / s["seconds"],
            price([Measurement.from_json(m) for m in s["measurements"]], Slo(), EXAMPLE_PRICES),
        )
        for s in results["slices"]
    ]


def _label(variant: str) -> str:
    return lookup(Family.GEMMA_4, variant).label


def _describe(s: Sizing) -> str:
    m, c = s.measurement, s.measurement.configuration
    return (
        f"{_label(c.variant)} {c.precision.value}: {m.gpus_per_replica} GPU x {m.replicas_peak} at peak, "
        f"{s.gpu_hours_per_day:.0f} GPU-h/day, {s.cost_per_million_tokens:.2f}/M tokens"
    )


def _best_miss(sizings: Sequence[Sizing]) -> str:
    """Why a class has no configuration meeting the SLOs: its best p95 TTFT and TPOT, or its refusals."""
    served = [s.measurement for s in sizings if s.measurement.refusal is None]
    if not served:
        return "refused"
    ttft = min(m.ttft_p95_seconds for m in served)
    tpot = min(m.tpot_p95_seconds for m in served)
    return f"none meets the SLOs (best p95 TTFT {_seconds(ttft, 3)}, TPOT {_seconds(tpot, 3)})"


def _seconds(value: float, decimals: int) -> str:
    return "never" if math.isinf(value) else f"{value:.{decimals}f} s"


def _cheapest_table(service: list[Slice]) -> str:
    rows = []
    for s in service:
        per_class = [
            [z for z in s.sizings if z.measurement.configuration.accelerator == accelerator]
            for accelerator in DEFAULT_ACCELERATORS
        ]
        overall = cheapest(s.sizings)
        fewest = min((z for z in s.sizings if z.meets_slo), key=lambda z: z.gpu_hours, default=None)
        rows.append(
            [
                s.load,
                *(_describe(best) if (best := cheapest(sized)) else _best_miss(sized) for sized in per_class),
                _name(overall) if overall else "-",
                _name(fewest) if fewest else "-",
            ]
        )
    header = ["load", *DEFAULT_ACCELERATORS, "cheapest (example prices)", "fewest GPU-hours"]
    return markdown(header, rows)


def _name(s: Sizing) -> str:
    c = s.measurement.configuration
    return f"{_label(c.variant)} {c.precision.value} on {c.accelerator}"


def _variant_best(s: Slice, variant: str, accelerator: str | None = None) -> Sizing | None:
    return cheapest(
        [
            z
            for z in s.sizings
            if z.measurement.configuration.variant == variant
            and (accelerator is None or z.measurement.configuration.accelerator == accelerator)
        ]
    )


def _cost(s: Sizing | None) -> float:
    return math.nan if s is None or s.cost_per_million_tokens is None else s.cost_per_million_tokens


def plot(all_slices: list[Slice]) -> str:
    """Per service: each variant's cheapest configuration meeting the SLOs, and its cheapest on one H100."""
    services = list(dict.fromkeys(s.service for s in all_slices))
    panels = []
    for service in services:
        ordered = [s for s in all_slices if s.service == service]
        series: list[Series] = []
        for variant in DEFAULT_VARIANTS:
            color, label = COLORS[variant], variant  # short: the legend shares the panel's title line
            series.append(Series(label, color, tuple(_cost(_variant_best(s, variant)) for s in ordered)))
            series.append(
                Series(
                    f"{label} {CLAIM_ACCELERATOR}",
                    color,
                    tuple(_cost(_variant_best(s, variant, CLAIM_ACCELERATOR)) for s in ordered),
                    dashed=True,
                )
            )
        panels.append(Panel(f"Azure {service}: cost per M tokens", tuple(series)))
    labels = [s.load.split(" ")[0] for s in all_slices if s.service == services[0]]
    title = "Cost per million generated tokens at example prices, by load (gaps: nothing meets the SLOs)"
    return labelled_chart(title, labels, panels)


def _claim(all_slices: list[Slice]) -> list[str]:
    """Per variant: where one H100 per replica meets the SLOs, and where it is not the variant's cheapest."""
    lines = []
    for variant in DEFAULT_VARIANTS:
        holds, pays, stops, against_any = [], [], [], []
        fits = {
            z.measurement.configuration.precision.value: z.measurement.max_batch
            for z in all_slices[0].sizings
            if z.measurement.configuration.variant == variant
            and z.measurement.configuration.accelerator == CLAIM_ACCELERATOR
            and z.measurement.gpus_per_replica == 1
        }
        for s in all_slices:
            on_h100 = _variant_best(s, variant, CLAIM_ACCELERATOR)
            best = _variant_best(s, variant)
            where = f"{s.service} {s.load}"
            if on_h100 is None or on_h100.measurement.gpus_per_replica != 1:
                continue
            holds.append(where)
            overall = cheapest(s.sizings)
            if overall is not None:
                against_any.append(_cost(on_h100) / _cost(overall))
            if best is on_h100:
                pays.append(where)
            elif best is not None:
                ratio = _cost(on_h100) / _cost(best)
                stops.append(f"{where}: {ratio:.1f}x the cost of {_name(best)}")
        batches = ", ".join(f"{precision} with {batch} sequences" for precision, batch in fits.items())
        lines.append(
            f"- **{_label(variant)}** fits one 80 GB H100 per replica at {batches or 'no precision'} "
            f"(8192-token sequences, the planner's maxBatch). One H100 per replica meets the SLOs on "
            f"{', '.join(holds) or 'no slice'}; it is the variant's cheapest configuration on "
            f"{', '.join(pays) or 'no slice'}"
            + (f"; elsewhere it costs more: {'; '.join(stops)}." if stops else ".")
            + (
                f" Against the cheapest configuration of any variant at the same load, it costs "
                f"{min(against_any):.1f}x to {max(against_any):.1f}x per token."
                if against_any
                else ""
            )
        )
    return lines


def _refusals(all_slices: list[Slice]) -> list[str]:
    reasons = {_name(z): z.measurement.refusal for z in all_slices[0].sizings if z.measurement.refusal is not None}
    return [f"- {name}: {reason}" for name, reason in reasons.items()]


def procurement_document(results: dict[str, Any]) -> str:
    all_slices = slices(results)
    slo = Slo()
    first = all_slices[0].sizings[0].measurement
    window_minutes = results["windowSeconds"] // 60
    prices = ", ".join(f"{name} {value:g}" for name, value in EXAMPLE_PRICES.items())
    sections = [
        "# Procurement: what Gemma 4 costs on each accelerator, at its SLOs",
        "",
        f"Generated by `make generate` from {RESULTS}, which `make bench-procurement` writes by running "
        "the sizing of every default configuration (about a minute); a unit test fails when this page or its plot "
        "is stale against that file.",
        "",
        "The launch coverage of Gemma 4 names a hardware target, 26B and 31B on a single 80 GB H100, as what "
        "shapes procurement and capacity planning. This page computes the question behind it with "
        "`gemma-operator size`: every variant, precision and accelerator class the planner can place, run under "
        "the operator's built-in autoscaler on real traffic, priced per GPU-hour.",
        "",
        "How each number is made:",
        "",
        f"- Traffic: the first {window_minutes} minutes of the public Azure LLM inference traces "
        "(docs/benchmarks/traces), conversation and code, at several rate scales (each request's arrival and "
        "token counts kept, the rate multiplied).",
        "- Each configuration: the replica the planner makes (GPUs per replica, the runtime's sequence limit and "
        "prefill chunk at 8192-token contexts), served by the token-level roofline model, scaled by the built-in "
        f"autoscaler from 1 to at most {SIZING_MAX_REPLICAS} replicas (`gemma-operator size` marks a run that "
        "reached the bound with a `+`).",
        f"- The SLOs, `simulate-autoscaling`'s: p95 TTFT <= {slo.ttft_p95_seconds:g} s and p95 TPOT <= "
        f"{slo.tpot_p95_seconds:g} s over the requests that arrive after a {first.warm_up_seconds} s warm-up "
        "(the simulation starts cold; see autoscaling/sizing.py). The GPU-hours are those of the same seconds: "
        "every pod holds its GPUs from its creation.",
        f"- Prices: **example list prices per GPU-hour ({prices}; any currency), for illustration only**. The "
        "cost columns scale with them; the GPU-hour columns and the `fewest GPU-hours` ranking do not.",
        "",
        "## The cheapest configuration per accelerator class",
        "",
        "Each cell: the class's cheapest configuration that meets the SLOs at that load, its GPUs per replica and "
        "replicas at peak, the GPU-hours a day of that load takes, and its cost per million generated tokens.",
        "",
    ]
    for service in dict.fromkeys(s.service for s in all_slices):
        sections += [f"### Azure {service}", "", _cheapest_table([s for s in all_slices if s.service == service]), ""]
    sections += [
        "## Cost per million tokens against load",
        "",
        "Per variant, the cheapest configuration that meets the SLOs at each load (solid), and its cheapest on the "
        "H100 class (dashed); a gap where none does. The x axis is the rate scale of the table's loads.",
        "",
        f"![cost per million tokens against load](benchmarks/{PLOT})",
        "",
        "## 26B and 31B on a single 80 GB H100",
        "",
        *_claim(all_slices),
        "",
        "## Refused by the planner",
        "",
        "Listed, never dropped (`gemma-operator size` reports them the same way):",
        "",
        *_refusals(all_slices),
        "",
    ]
    return "\n".join(sections)


def procurement_results(text: str) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(text)
    return results
