"""Load for the autoscaling simulation: rate shapes (requests per second), and requests with their token counts.

A rate shape becomes requests through `requests_at`: Poisson arrivals at the shape's rate, and prompt and output
lengths drawn from a log-normal fitted to a production trace (LENGTHS). A request trace is read from CSV: either
`seconds,rps` rows (a shape) or the Azure LLM inference trace's `TIMESTAMP,ContextTokens,GeneratedTokens` rows,
told apart by the header. Every random draw comes from a generator seeded by the trace's name, so a run is a
pure function of its inputs.
"""

from __future__ import annotations

import csv
import io
import math
import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
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


@dataclass(frozen=True)
class Request:
    """One request: when it arrives (seconds from the trace's start) and its token counts."""

    arrival: float
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Workload:
    """Requests in arrival order, over `seconds` simulated seconds."""

    name: str
    requests: tuple[Request, ...]
    seconds: int


@dataclass(frozen=True)
class Lengths:
    """Log-normal prompt and output lengths: medians and the standard deviations of their logarithms."""

    prompt_median: float
    prompt_sigma: float
    output_median: float
    output_sigma: float


# Measured on docs/benchmarks/traces/AzureLLMInferenceTrace_conv.csv (19,366 requests): the medians are the
# Splitwise paper's (ISCA 2024, conversation: 1020 prompt and 129 output tokens); the sigmas are those of the
# log token counts of the same rows.
CONVERSATION = Lengths(1020, 0.99, 129, 0.86)
# The code service's trace (8,819 requests): medians 1469 and 13 tokens.
CODE = Lengths(1469, 1.36, 13, 0.85)
LENGTHS = {"conversation": CONVERSATION, "code": CODE}
RATE_HEADER = ["seconds", "rps"]
AZURE_HEADER = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
AZURE_TIME = "%Y-%m-%d %H:%M:%S"


def _rng(name: str) -> random.Random:
    return random.Random(zlib.crc32(name.encode()))


def requests_at(trace: Trace, lengths: Lengths = CONVERSATION, max_tokens: int | None = None) -> Workload:
    """Poisson arrivals at the shape's rate, each second at its own rate, with log-normal lengths.

    `max_tokens` caps prompt + output (the plan's maxContextTokens): the prompt keeps at most all but one token.
    """
    rng = _rng(trace.name)
    requests: list[Request] = []
    for second, rps in enumerate(trace.rps):
        at = second + (rng.expovariate(rps) if rps > 0 else 1.0)
        while at < second + 1:
            requests.append(_drawn(rng, at, lengths, max_tokens))
            at += rng.expovariate(rps)
    return Workload(trace.name, tuple(requests), len(trace.rps))


def _drawn(rng: random.Random, at: float, lengths: Lengths, max_tokens: int | None) -> Request:
    prompt = max(1, round(lengths.prompt_median * math.exp(rng.gauss(0, lengths.prompt_sigma))))
    output = max(1, round(lengths.output_median * math.exp(rng.gauss(0, lengths.output_sigma))))
    return _capped(Request(at, prompt, output), max_tokens)


def _capped(request: Request, max_tokens: int | None) -> Request:
    if max_tokens is None or request.prompt_tokens + request.output_tokens <= max_tokens:
        return request
    prompt = min(request.prompt_tokens, max_tokens - 1)
    return replace(request, prompt_tokens=prompt, output_tokens=max_tokens - prompt)


def scaled(workload: Workload, rate: float = 1.0, time: float = 1.0) -> Workload:
    """The workload with its time axis stretched by `time`, then `rate` x its requests.

    Rate above 1 adds copies of each request, spread over the gap to the next one (a fraction of a copy is a
    seeded coin); rate below 1 keeps each request with that probability. The shape of the load is kept.
    """
    rng = _rng(f"{workload.name}@{rate}x{time}")
    stretched = [replace(r, arrival=r.arrival * time) for r in workload.requests]
    seconds = max(1, math.ceil(workload.seconds * time))
    result: list[Request] = []
    for index, request in enumerate(stretched):
        following = stretched[index + 1].arrival if index + 1 < len(stretched) else seconds
        copies = int(rate) + (1 if rng.random() < rate - int(rate) else 0)
        gap = (following - request.arrival) / max(copies, 1)
        result += [replace(request, arrival=request.arrival + copy * gap) for copy in range(copies)]
    name = workload.name + (f" x{rate:g}" if rate != 1 else "") + (f" t{time:g}" if time != 1 else "")
    return Workload(name, tuple(sorted(result, key=lambda r: r.arrival)), seconds)


def window(workload: Workload, start: int, seconds: int) -> Workload:
    """The requests arriving in [start, start + seconds), moved to start at 0."""
    kept = tuple(
        replace(r, arrival=r.arrival - start) for r in workload.requests if start <= r.arrival < start + seconds
    )
    return Workload(f"{workload.name} [{start // MINUTE}-{(start + seconds) // MINUTE} min]", kept, seconds)


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


def surge(amplitude: float = RIPPLE) -> Trace:
    """A launch: 4 rps for 10 minutes, a 6-minute ramp to 6x, a 15-minute plateau, then back to 4 rps."""

    def rate(minute: float) -> float:
        if minute < 10 or minute >= 31:
            return 4.0
        return 4.0 + 20.0 * min(1.0, (minute - 10) / 6)

    return _sampled("surge", 40, rate, amplitude)


def bursts(amplitude: float = RIPPLE) -> Trace:
    """Agents at 6 rps, and batch jobs doubling it for 30 s, 1, 2 and 4 minutes, one every 8 minutes."""
    widths = (0.5, 1.0, 2.0, 4.0)

    def rate(minute: float) -> float:
        index, offset = divmod(minute - 4, 8)
        return 12.0 if minute >= 4 and index < len(widths) and offset < widths[int(index)] else 6.0

    return _sampled("bursts", 40, rate, amplitude)


def flash_crowd(amplitude: float = RIPPLE) -> Trace:
    """A link goes viral: 4 rps, then at minute 10 at once 16 rps for 5 minutes, decaying back over about 10."""

    def rate(minute: float) -> float:
        if minute < 10:
            return 4.0
        if minute < 15:
            return 16.0
        return 4.0 + 12.0 * math.exp(-(minute - 15) / 4)

    return _sampled("flash-crowd", 40, rate, amplitude)


def step_down(amplitude: float = RIPPLE) -> Trace:
    """A batch backfill ends: 16 rps for 15 minutes, then 6 rps for 25."""
    return _sampled("step-down", 40, lambda minute: 16.0 if minute < 15 else 6.0, amplitude)


def ramp(amplitude: float = RIPPLE) -> Trace:
    """A region's morning: a steady climb from 2 to 18 rps over 40 minutes."""
    return _sampled("ramp", 40, lambda minute: 2.0 + 16.0 * minute / 40, amplitude)


class TraceShape(Protocol):
    def __call__(self, *, amplitude: float = RIPPLE) -> Trace: ...


BUILTIN_TRACES: dict[str, TraceShape] = {
    "step": step,
    "spike": spike,
    "diurnal": diurnal,
    "oscillating": oscillating,
    "surge": surge,
    "bursts": bursts,
    "flash-crowd": flash_crowd,
    "step-down": step_down,
    "ramp": ramp,
}


def read_workload_csv(name: str, text: str, lengths: Lengths = CONVERSATION, max_tokens: int | None = None) -> Workload:
    """Requests from CSV text: `seconds,rps` rows (see read_trace_csv; lengths drawn from `lengths`), or Azure
    `TIMESTAMP,ContextTokens,GeneratedTokens` rows (one per request, times relative to the first row's)."""
    rows = csv.reader(io.StringIO(text))
    header = [cell.strip() for cell in next(rows, [])]
    if header == RATE_HEADER:
        return requests_at(_rates(name, rows), lengths, max_tokens)
    if header == AZURE_HEADER:
        return _azure(name, rows, max_tokens)
    raise TraceError(f"{name}: line 1: the header must be `seconds,rps` or `TIMESTAMP,ContextTokens,GeneratedTokens`")


def _azure(name: str, rows: Iterable[list[str]], max_tokens: int | None) -> Workload:
    timed: list[tuple[datetime, int, int]] = []
    for index, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(AZURE_HEADER):
            raise TraceError(f"{name}: line {index}: expected 3 fields (TIMESTAMP,ContextTokens,GeneratedTokens)")
        at = _timestamp(name, index, row[0].strip())
        prompt = _field(name, index, "ContextTokens", row[1], int, "an integer")
        output = _field(name, index, "GeneratedTokens", row[2], int, "an integer")
        if prompt < 1 or output < 1:
            raise TraceError(f"{name}: line {index}: token counts must be >= 1, got {prompt},{output}")
        if timed and at < timed[-1][0]:
            raise TraceError(f"{name}: line {index}: field TIMESTAMP: earlier than the row before")
        timed.append((at, prompt, output))
    if not timed:
        raise TraceError(f"{name}: no rows after the header")
    start = timed[0][0]
    requests = tuple(
        _capped(Request((at - start).total_seconds(), prompt, output), max_tokens) for at, prompt, output in timed
    )
    return Workload(name, requests, math.floor(requests[-1].arrival) + 1)


def _timestamp(name: str, line: int, text: str) -> datetime:
    """`2023-11-16 18:15:46.6805900`: seconds with up to 7 fractional digits (more than strptime's %f takes)."""
    whole, _, fraction = text.partition(".")
    try:
        parsed = datetime.strptime(whole, AZURE_TIME)
        micro = round(float(f"0.{fraction or 0}") * 1e6)
    except ValueError:
        raise TraceError(
            f"{name}: line {line}: field TIMESTAMP: not `YYYY-MM-DD HH:MM:SS[.fraction]`: {text!r}"
        ) from None
    return parsed.replace(microsecond=min(micro, 999_999))


def read_trace_csv(name: str, text: str) -> Trace:
    """A trace from CSV text with the header `seconds,rps`; each row holds from its second until the next row's.

    Rows must start at second 0 and go strictly forward; the last row lasts one second.
    """
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or [cell.strip() for cell in header] != RATE_HEADER:
        raise TraceError(f"{name}: line 1: the header must be `seconds,rps`")
    return _rates(name, rows)


def _rates(name: str, rows: Iterable[list[str]]) -> Trace:
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
