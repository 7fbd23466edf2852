"""What the built-in autoscaler remembers between decisions; the caller carries it, the decision replaces it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """The in-flight load the autoscaler counted at one scrape."""

    at: float
    in_flight: float


@dataclass(frozen=True)
class Recommendation:
    """The replicas the demand asked for at one scrape; scale-down never goes below the recent ones."""

    at: float
    replicas: int


@dataclass(frozen=True)
class AutoscalerState:
    """Immutable memory of past scrapes and decisions. A fresh state is how an autoscaler starts."""

    samples: tuple[Sample, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    panic_until: float = -math.inf
    last_waiting: float = 0.0
    last_ready: int = 0
    backlog_at_order: float | None = None
    last_scale_down_at: float | None = None
    undone_scale_downs: tuple[float, ...] = ()


def mean_since(samples: tuple[Sample, ...], since: float) -> float:
    """Mean in-flight load of the samples newer than `since`, or the newest sample's if none is."""
    window = [s.in_flight for s in samples if s.at > since] or [samples[-1].in_flight]
    return sum(window) / len(window)
