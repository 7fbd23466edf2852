"""The operator's own Prometheus metrics."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

RECONCILES = Counter("gemma_operator_reconciles_total", "Reconciles of GemmaDeployments, by result.", ["result"])
RECONCILE_SECONDS = Histogram(
    "gemma_operator_reconcile_duration_seconds",
    "Time one reconcile takes, API calls included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_ERRORS = Counter(
    "gemma_operator_api_errors_total",
    "Failed Kubernetes API calls, by operation and status code.",
    ["operation", "code"],
)
API_WRITES = Counter(
    "gemma_operator_api_writes_total", "Kubernetes API writes the operator made, by operation.", ["operation"]
)


class Census(Collector):
    """GemmaDeployments by variant, runtime, target and Ready condition, from the last status each got."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[tuple[str, str], tuple[str, str, str, str]] = {}

    def record(self, key: tuple[str, str], variant: str, runtime: str, target: str, ready: str) -> None:
        with self._lock:
            self._labels[key] = (variant, runtime, target, ready)

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._labels.pop(key, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gemma_operator_gemmadeployments",
            "GemmaDeployments by variant, runtime, target and Ready condition.",
            labels=["variant", "runtime", "target", "ready"],
        )
        with self._lock:
            counts = Tally(self._labels.values())
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        yield family


CENSUS = Census()
REGISTRY.register(CENSUS)
