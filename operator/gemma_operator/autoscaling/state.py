"""What the built-in autoscaler remembers between decisions; the caller carries it, the decision replaces it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """The in-flight load the autoscaler counted at one scrape, as reported and with running requests at
    full-batch speed (what scale-down sizes on)."""

    at: float
    in_flight: float
    at_full_batch: float


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


def mean_since(samples: tuple[Sample, ...], since: float, at_full_batch: bool = False) -> float:
    """Mean in-flight load of the samples newer than `since`, or the newest sample's if none is."""
    kept = [s for s in samples if s.at > since] or [samples[-1]]
    return sum(s.at_full_batch if at_full_batch else s.in_flight for s in kept) / len(kept)
