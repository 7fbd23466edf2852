"""A small SVG line chart: stacked panels sharing one x axis (time, or labelled points), enough for the docs' plots.

A value that is NaN is a gap: the line stops before it and starts again after it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
PANEL_HEIGHT = 190
LEFT, RIGHT, TOP, GAP = 56, 16, 34, 46
TICKS = 5  # intervals on the y axis: a nice ceiling / 5 is a round step


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: tuple[float, ...]
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[Series, ...]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def chart(title: str, seconds_per_value: float, panels: Sequence[Panel]) -> str:
    """An SVG document: one panel per entry, top to bottom, x in minutes."""
    count = max(len(s.values) for panel in panels for s in panel.series)
    minutes = count * seconds_per_value / 60
    ticks = [(minute * 60 / seconds_per_value, f"{minute} min") for minute in range(0, int(minutes) + 1, 10)]
    return _document(title, panels, count, ticks)


def labelled_chart(title: str, labels: Sequence[str], panels: Sequence[Panel]) -> str:
    """An SVG document: one panel per entry, the values at evenly spaced x positions named by `labels`."""
    return _document(title, panels, len(labels), list(enumerate(labels)))


def _document(title: str, panels: Sequence[Panel], count: int, ticks: Sequence[tuple[float, str]]) -> str:
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        parts += _panel(panel, TOP + index * (PANEL_HEIGHT + GAP) + 18, count, ticks)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _runs(values: Sequence[float]) -> list[list[tuple[int, float]]]:
    """The indexed values split at every NaN."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(values):
        if math.isnan(value):
            runs.append([])
        else:
            runs[-1].append((index, value))
    return [run for run in runs if run]


def _panel(panel: Panel, top: float, count: int, ticks: Sequence[tuple[float, str]]) -> list[str]:
    plot_width = WIDTH - LEFT - RIGHT
    drawn = [v for s in panel.series for v in s.values if not math.isnan(v)]
    ceiling = nice_ceiling(max(drawn, default=0.0))

    def x(index: float) -> float:
        return LEFT + plot_width * index / max(count - 1, 1)

    def y(value: float) -> float:
        return top + PANEL_HEIGHT * (1 - value / ceiling)

    parts = [f'<text x="{LEFT}" y="{top - 6}" font-size="12">{escape(panel.title)}</text>']
    for tick in range(TICKS + 1):
        value = ceiling * tick / TICKS
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    for index, label in ticks:
        at = x(index)
        anchor = "end" if at > WIDTH - RIGHT - 20 else "middle"
        parts.append(f'<text x="{at:.1f}" y="{top + PANEL_HEIGHT + 14}" text-anchor="{anchor}">{escape(label)}</text>')
    legend_x = WIDTH - RIGHT
    for series in reversed(panel.series):
        dash = ' stroke-dasharray="4 3"' if series.dashed else ""
        for run in _runs(series.values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            parts.append(f'<polyline fill="none" stroke="{series.color}" stroke-width="1.5"{dash} points="{points}"/>')
            if len(run) == 1:  # a lone point draws no line
                ((i, v),) = run
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{series.color}"/>')
        legend_x -= 30 + 6 * len(series.label)  # the legend sits on the title line, right-aligned
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{top - 10}" y2="{top - 10}" '
            f'stroke="{series.color}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 22}" y="{top - 6}">{escape(series.label)}</text>'
        )
    return parts
