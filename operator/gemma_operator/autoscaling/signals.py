"""The one load signal the autoscaler sees, whatever the runtime: requests waiting and running."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from gemma_operator.api import Runtime
from gemma_operator.catalog import runtimes


@dataclass(frozen=True)
class Load:
    """Requests a serving pod holds: queued (waiting) and in the running batch."""

    waiting: float
    running: float

    @property
    def in_flight(self) -> float:
        return self.waiting + self.running


def _totals(text: str, names: Iterable[str]) -> dict[str, float] | None:
    """Each wanted gauge summed over its label sets (vLLM labels by model_name and engine).

    None when the text is not valid exposition or a value is not a count (NaN, infinite, negative).
    """
    totals: dict[str, float] = {}
    wanted = set(names)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name not in wanted:
                    continue
                if not math.isfinite(sample.value) or sample.value < 0:
                    return None
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    except ValueError:
        return None
    return totals


def load_from_exposition(text: str, runtime: Runtime) -> Load | None:
    """The load a runtime's /metrics page reports, or None when it is unknown.

    A page that is garbled, or lacks either metric, is unknown rather than idle: reading it as
    zero would let the autoscaler scale down a pod it cannot see.
    """
    names = runtimes()[runtime].metrics
    totals = _totals(text, (names.waiting, names.running))
    if totals is None or names.waiting not in totals or names.running not in totals:
        return None
    return Load(waiting=totals[names.waiting], running=totals[names.running])
