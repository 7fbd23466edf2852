"""The autoscaling benchmark's plots: replicas and queue over time, built-in against the HPA baseline."""

from __future__ import annotations

from collections.abc import Sequence

from gemma_docgen.svg import Panel, Series, chart
from gemma_operator.autoscaling.benchmark import Comparison
from gemma_operator.autoscaling.simulation import Run

PLOT_EVERY_SECONDS = 10
BUILTIN_COLOR, BASELINE_COLOR, LOAD_COLOR = "#1f77b4", "#d62728", "#888888"


def _downsampled(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(values[::PLOT_EVERY_SECONDS])


def plot(comparison: Comparison) -> str:
    """Replicas and queue over time for both autoscalers, with the load in pods for reference."""

    def replicas(run: Run) -> tuple[float, ...]:
        return _downsampled([s.replicas for s in run.seconds])

    def queue(run: Run) -> tuple[float, ...]:
        return _downsampled([s.queue for s in run.seconds])

    load = _downsampled([s.rps / comparison.builtin.config.replica_capacity_rps for s in comparison.builtin.seconds])
    return chart(
        f"{comparison.trace}: built-in autoscaler vs the HPA baseline",
        PLOT_EVERY_SECONDS,
        [
            Panel(
                "replicas (ready or starting)",
                (
                    Series("built-in", BUILTIN_COLOR, replicas(comparison.builtin)),
                    Series("HPA baseline", BASELINE_COLOR, replicas(comparison.baseline)),
                    Series("load / replica capacity", LOAD_COLOR, load, dashed=True),
                ),
            ),
            Panel(
                "queue (requests waiting)",
                (
                    Series("built-in", BUILTIN_COLOR, queue(comparison.builtin)),
                    Series("HPA baseline", BASELINE_COLOR, queue(comparison.baseline)),
                ),
            ),
        ],
    )


def plots(comparisons: Sequence[tuple[str, Comparison]]) -> dict[str, str]:
    """The SVG of each (trace name, comparison), by file name."""
    return {f"autoscaling-{name}.svg": plot(comparison) for name, comparison in comparisons}
