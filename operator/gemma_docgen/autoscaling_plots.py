"""The autoscaling benchmark's plots: pods, requests waiting and p95 TTFT over time, for every side."""

from __future__ import annotations

from typing import Any

from gemma_docgen.autoscaling_page import SIDES, plot_names
from gemma_docgen.autoscaling_suite import PLOT_EVERY_SECONDS, TTFT_PLOT_CAP_SECONDS
from gemma_docgen.svg import Panel, Series, chart

COLORS = {"builtin": "#1f77b4", "hpa": "#d62728", "keda": "#ff7f0e", "kpa": "#2ca02c", "oracle": "#888888"}
PANELS = (
    ("replicas", "pods (ready or starting)"),
    ("waiting", "requests waiting"),
    ("ttftP95", f"p95 TTFT of each {PLOT_EVERY_SECONDS} s of arrivals (s, at most {TTFT_PLOT_CAP_SECONDS:g})"),
)


def plot(trace: dict[str, Any], every: float) -> str:
    series = trace["series"]
    return chart(
        f"{trace['trace']}: every autoscaler",
        every,
        [
            Panel(
                title,
                tuple(
                    Series(side, COLORS[side], tuple(float(v) for v in series[side][key]), dashed=side == "oracle")
                    for side in SIDES
                ),
            )
            for key, title in PANELS
        ],
    )


def plots(results: dict[str, Any]) -> dict[str, str]:
    """The SVG of each plotted trace, by file name."""
    names = plot_names(results)
    return {names[t["trace"]]: plot(t, results["plotEverySeconds"]) for t in results["traces"] if "series" in t}
