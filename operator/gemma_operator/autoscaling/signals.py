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


@dataclass(frozen=True)
class _Page:
    totals: dict[str, float]
    only_own_metrics: bool


def _read(text: str, names: Iterable[str], prefix: str) -> _Page | None:
    """Each wanted gauge summed over its label sets (vLLM labels by model_name and engine).

    None when the text is not valid exposition or a value is not a count (NaN, infinite, negative).
    """
    totals: dict[str, float] = {}
    wanted = set(names)
    only_own = True
    try:
        for family in text_string_to_metric_families(text):
            only_own = only_own and family.name.startswith(prefix)
            for sample in family.samples:
                if sample.name not in wanted:
                    continue
                if not math.isfinite(sample.value) or sample.value < 0:
                    return None
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    except ValueError:
        return None
    return _Page(totals, only_own)


def load_from_exposition(text: str, runtime: Runtime) -> Load | None:
    """The load a runtime's /metrics page reports, or None when it is unknown.

    A page that is garbled, or lacks either metric, is unknown rather than idle: reading it as
    zero would let the autoscaler scale down a pod it cannot see. The exception is a runtime that
    creates its gauges on the first request (TGI): a valid page of only its own metrics without them
    is a server that has not been asked anything yet.
    """
    names = runtimes()[runtime].metrics
    page = _read(text, (names.waiting, names.running), names.prefix)
    if page is None:
        return None
    if names.created_on_first_request and page.only_own_metrics:
        return Load(waiting=page.totals.get(names.waiting, 0.0), running=page.totals.get(names.running, 0.0))
    if names.waiting not in page.totals or names.running not in page.totals:
        return None
    return Load(waiting=page.totals[names.waiting], running=page.totals[names.running])
