"""Load traces for the autoscaling simulation: the four built-in ones, and a reader for `seconds,rps` CSV files."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

MINUTE = 60
RIPPLE = 0.08
Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Trace:
    """Requests per second arriving in each simulated second."""

    name: str
    rps: tuple[float, ...]


class TraceError(ValueError):
    """A trace file the simulator cannot read; the message names the line and field."""


def ripple(second: int, amplitude: float) -> float:
    """Minute-scale fluctuation of real traffic: three incommensurate waves, so no phase repeats."""
    waves = (0.5, 97, 0.0), (0.3, 211, 1.0), (0.2, 43, 2.0)
    return 1 + amplitude * sum(
        weight * math.sin(2 * math.pi * second / period + phase) for weight, period, phase in waves
    )


def _sampled(name: str, minutes: int, rate: Callable[[float], float], amplitude: float) -> Trace:
    seconds = range(minutes * MINUTE)
    return Trace(name, tuple(round(rate(second / MINUTE) * ripple(second, amplitude), 3) for second in seconds))


def step(high: float = 8.5, amplitude: float = RIPPLE) -> Trace:
    """A second tenant goes live: 5 rps for 10 minutes, `high` (+70%) for 25 minutes, 5 rps again for 10."""
    return _sampled("step", 45, lambda minute: high if 10 <= minute < 35 else 5.0, amplitude)


def spike(burst: float = 12.0, amplitude: float = RIPPLE) -> Trace:
    """Chat at 6 rps with two bursts of agent traffic: 3 minutes at `burst` (2x), later 90 s at 9.6 rps (+60%)."""

    def rate(minute: float) -> float:
        if 10 <= minute < 13:
            return burst
        if 28 <= minute < 29.5:
            return 9.6
        return 6.0

    return _sampled("spike", 45, rate, amplitude)


def diurnal(amplitude: float = RIPPLE) -> Trace:
    """A working day compressed into an hour: 2 rps at night, a morning ramp to a 16 rps peak, an evening decline."""
    return _sampled("diurnal", 60, lambda minute: 2.0 + 14.0 * math.sin(math.pi * minute / 60) ** 2, amplitude)


def oscillating(amplitude: float = RIPPLE) -> Trace:
    """A batch pipeline every 12 minutes: 6 minutes of interactive load at 5 rps, then 6 minutes at 11 rps."""
    return _sampled("oscillating", 60, lambda minute: 11.0 if minute % 12 >= 6 else 5.0, amplitude)


class TraceShape(Protocol):
    def __call__(self, *, amplitude: float = RIPPLE) -> Trace: ...


BUILTIN_TRACES: dict[str, TraceShape] = {
    "step": step,
    "spike": spike,
    "diurnal": diurnal,
    "oscillating": oscillating,
}


def read_trace_csv(name: str, text: str) -> Trace:
    """A trace from CSV text with the header `seconds,rps`; each row holds from its second until the next row's.

    Rows must start at second 0 and go strictly forward; the last row lasts one second.
    """
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or [cell.strip() for cell in header] != ["seconds", "rps"]:
        raise TraceError(f"{name}: line 1: the header must be `seconds,rps`")
    points: list[tuple[int, float]] = []
    for index, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != 2:
            raise TraceError(f"{name}: line {index}: expected 2 fields (seconds,rps), found {len(row)}")
        second = _field(name, index, "seconds", row[0], int, "an integer")
        rps = _field(name, index, "rps", row[1], float, "a number")
        if not math.isfinite(rps) or rps < 0:
            raise TraceError(f"{name}: line {index}: field rps: must be a finite number >= 0, got {row[1].strip()!r}")
        expected_first = not points
        if (expected_first and second != 0) or (points and second <= points[-1][0]):
            rule = "the first row must be second 0" if expected_first else "seconds must increase from row to row"
            raise TraceError(f"{name}: line {index}: field seconds: {rule}, got {second}")
        points.append((second, rps))
    if not points:
        raise TraceError(f"{name}: no rows after the header")
    ends = [start for start, _ in points[1:]] + [points[-1][0] + 1]
    return Trace(name, tuple(rps for (start, rps), end in zip(points, ends, strict=True) for _ in range(end - start)))


def _field(name: str, line: int, field: str, text: str, kind: type[Number], expected: str) -> Number:
    try:
        return kind(text.strip())
    except ValueError:
        raise TraceError(f"{name}: line {line}: field {field}: not {expected}: {text.strip()!r}") from None
