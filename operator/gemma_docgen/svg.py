"""A small SVG line chart: stacked panels sharing one time axis, enough for the benchmark's plots."""

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
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        parts += _panel(panel, TOP + index * (PANEL_HEIGHT + GAP) + 18, seconds_per_value)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(panel: Panel, top: float, seconds_per_value: float) -> list[str]:
    plot_width = WIDTH - LEFT - RIGHT
    count = max(len(s.values) for s in panel.series)
    ceiling = nice_ceiling(max(max(s.values, default=0.0) for s in panel.series))
    minutes = count * seconds_per_value / 60

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
    for minute in range(0, int(minutes) + 1, 10):
        at = x(minute * 60 / seconds_per_value)
        anchor = "end" if at > WIDTH - RIGHT - 20 else "middle"
        parts.append(f'<text x="{at:.1f}" y="{top + PANEL_HEIGHT + 14}" text-anchor="{anchor}">{minute} min</text>')
    legend_x = WIDTH - RIGHT
    for series in reversed(panel.series):
        dash = ' stroke-dasharray="4 3"' if series.dashed else ""
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series.values))
        parts.append(f'<polyline fill="none" stroke="{series.color}" stroke-width="1.5"{dash} points="{points}"/>')
        legend_x -= 30 + 6 * len(series.label)  # the legend sits on the title line, right-aligned
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{top - 10}" y2="{top - 10}" '
            f'stroke="{series.color}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 22}" y="{top - 6}">{escape(series.label)}</text>'
        )
    return parts
