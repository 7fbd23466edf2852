"""The operator's own Prometheus metrics."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from gemma_operator.fleet import ClassReport, FleetReport
from gemma_operator.probes.scrape import Scrape

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
DESIRED_REPLICAS = Gauge(
    "gemma_operator_autoscaler_desired_replicas", "Replicas the built-in autoscaler asks for.", ["namespace", "name"]
)
OBSERVED_LOAD = Gauge(
    "gemma_operator_autoscaler_in_flight_requests",
    "Requests waiting and running over the ready pods that reported, at the last scrape.",
    ["namespace", "name"],
)
SCRAPE_ERRORS = Counter(
    "gemma_operator_autoscaler_scrape_errors_total", "Pod metrics scrapes that gave no load.", ["namespace", "name"]
)
API_WRITES = Counter(
    "gemma_operator_api_writes_total", "Kubernetes API writes the operator made, by operation.", ["operation"]
)
LEADER = Gauge(
    "gemma_operator_leader",
    "1 while this process leads (holds the leader election Lease, or runs without leader election), 0 while it "
    "stands by.",
)


@dataclass(frozen=True)
class Standing:
    """What one GemmaDeployment's last status said, as the census counts it."""

    variant: str
    runtime: str
    target: str
    ready: str
    # The replicas the operator wants (the autoscaler's, else spec.replicas; 0 for a spec it cannot read), and the
    # serving pods that are ready.
    replicas: int
    ready_replicas: int


class Census(Collector):
    """GemmaDeployments by variant, runtime, target and Ready condition, and each one's replicas, from the last
    status each got."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._standings: dict[tuple[str, str], Standing] = {}

    def record(self, key: tuple[str, str], standing: Standing) -> None:
        with self._lock:
            self._standings[key] = standing

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._standings.pop(key, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gemma_operator_gemmadeployments",
            "GemmaDeployments by variant, runtime, target and Ready condition.",
            labels=["variant", "runtime", "target", "ready"],
        )
        wanted = GaugeMetricFamily(
            "gemma_operator_gemmadeployment_replicas",
            "Replicas the operator wants for a GemmaDeployment: the autoscaler's, else spec.replicas.",
            labels=["namespace", "name"],
        )
        ready = GaugeMetricFamily(
            "gemma_operator_gemmadeployment_ready_replicas",
            "Ready serving pods of a GemmaDeployment.",
            labels=["namespace", "name"],
        )
        with self._lock:
            standings = sorted(self._standings.items())
        counts = Tally((s.variant, s.runtime, s.target, s.ready) for _, s in standings)
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        for key, standing in standings:
            wanted.add_metric(list(key), standing.replicas)
            ready.add_metric(list(key), standing.ready_replicas)
        yield from (family, wanted, ready)


def record_autoscaling(key: tuple[str, str], desired: int, scrapes: Sequence[Scrape]) -> None:
    DESIRED_REPLICAS.labels(*key).set(desired)
    OBSERVED_LOAD.labels(*key).set(sum(scrape.load.in_flight for scrape in scrapes if scrape.load is not None))
    failures = sum(1 for scrape in scrapes if scrape.load is None)
    if failures:
        SCRAPE_ERRORS.labels(*key).inc(failures)


def forget_autoscaling(key: tuple[str, str]) -> None:
    for metric in (DESIRED_REPLICAS, OBSERVED_LOAD, SCRAPE_ERRORS):
        with contextlib.suppress(KeyError):
            metric.remove(*key)


CENSUS = Census()
REGISTRY.register(CENSUS)


# The fleet gauges (docs/fleet.md), labelled by class and target: name, help, and the ClassReport figure.
FLEET_CLASS_GAUGES: tuple[tuple[str, str, Callable[[ClassReport], float]], ...] = (
    ("gemma_operator_fleet_nodes", "Nodes of the class.", lambda c: c.nodes),
    (
        "gemma_operator_fleet_allocatable_gpus",
        "Allocatable nvidia.com/gpu of the class's nodes.",
        lambda c: c.gpus_allocatable,
    ),
    (
        "gemma_operator_fleet_gemmadeployment_gpus",
        "GPUs GemmaDeployments' serving pods request on the class's nodes.",
        lambda c: c.gpus_held_by_gemma_deployments,
    ),
    (
        "gemma_operator_fleet_other_gpus",
        "GPUs other pods request on the class's nodes.",
        lambda c: c.gpus_held_by_others,
    ),
    (
        "gemma_operator_fleet_free_gpus",
        "Allocatable less requested GPUs on the class's schedulable nodes.",
        lambda c: c.gpus_free,
    ),
    (
        "gemma_operator_fleet_free_cpus",
        "Allocatable less requested CPU cores on the class's schedulable nodes.",
        lambda c: c.cpus_free,
    ),
    (
        "gemma_operator_fleet_free_memory_bytes",
        "Allocatable less requested memory on the class's schedulable nodes.",
        lambda c: c.memory_free_bytes,
    ),
)
FLEET_HEADROOM = "gemma_operator_fleet_headroom_replicas"
FLEET_HEADROOM_HELP = (
    "More replicas of the variant, at its default plan, that fit right now on the class's nodes (0 where the "
    "planner refuses it)."
)


class Fleet(Collector):
    """The last fleet survey, by class and by variant; nothing until the first survey."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: FleetReport | None = None

    def record(self, report: FleetReport) -> None:
        with self._lock:
            self._report = report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            report = self._report
        if report is None:
            return
        for name, help_text, figure in FLEET_CLASS_GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["class", "target"])
            for found in report.classes:
                family.add_metric([found.name, found.target.value], figure(found))
            yield family
        headroom = GaugeMetricFamily(
            FLEET_HEADROOM, FLEET_HEADROOM_HELP, labels=["class", "family", "variant", "precision"]
        )
        for found in report.classes:
            for variant in found.headroom:
                labels = [found.name, variant.family.value, variant.variant, variant.precision.value]
                headroom.add_metric(labels, variant.replicas)
        yield headroom


FLEET = Fleet()
REGISTRY.register(FLEET)
