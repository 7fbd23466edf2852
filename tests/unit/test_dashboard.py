"""The Grafana dashboard the chart ships: every query parses as PromQL (promql-parser, a port of Prometheus's own
parser), and names only series the operator or a pinned runtime writes, in the way each writes them; and the chart
renders it for Grafana's sidecar."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY

import gemma_operator.reconcile.metrics  # noqa: F401  (registers the operator's collectors)
from gemma_docgen.dashboard import DASHBOARD_PATH, INSTANCE, RUNTIME, target_label
from gemma_operator.api import Runtime
from gemma_operator.catalog import runtimes
from gemma_operator.catalog.versions.metric_names import (
    Exposition,
    MetricKind,
    Series,
    exposed_series,
    family_series,
    metric_table,
)
from gemma_operator.rendering import render as render_children
from gemma_operator.rendering.monitor import POD_TARGET_LABELS

from .builders import deployment, fitted
from .chart import ROOT, find, render
from .test_runtime_metrics import pinned_versions

# Series Prometheus writes itself for every target it scrapes, with the target's labels
# (https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series).
PROMETHEUS_MADE = {"up": Series("up", MetricKind.GAUGE, cumulative=False)}
# Grafana's range variables, which Grafana replaces with a duration before the query reaches Prometheus.
GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+), *(?P<label>\w+)\)$")
RATES = {"rate", "irate", "increase"}
# What the Prometheus Operator gives every series it scrapes from a pod (promcfg.go, generatePodMonitorConfig and
# generateServiceMonitorConfig), besides the monitor's podTargetLabels.
POD_TARGET_BASICS = {"namespace", "pod", "container", "job", "instance", "endpoint"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / DASHBOARD_PATH).read_text(encoding="utf-8"))
    return loaded


def operator_series() -> dict[str, Series]:
    """Every series the operator's /metrics serves: its registry (prometheus_client's default, which
    reconcile/run.py serves), as prometheus_client writes each family."""
    return {
        name: series
        for family in REGISTRY.collect()
        for name, series in family_series(family.name, MetricKind(family.type), Exposition.PROMETHEUS_CLIENT).items()
    }


def runtime_series() -> dict[str, Series]:
    found: dict[str, Series] = {}
    for runtime in Runtime:
        for version in pinned_versions(runtime):
            table = metric_table(runtime, version)
            assert table is not None
            found |= exposed_series(table)
    return found


@pytest.fixture(scope="module")
def known() -> dict[str, Series]:
    return operator_series() | runtime_series() | PROMETHEUS_MADE


def queries(dashboard: Mapping[str, Any]) -> Iterator[str]:
    """Every PromQL expression the dashboard sends: the panels' targets and the variables' selectors."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = LABEL_VALUES.match(variable["query"]["query"])
            assert found, variable["query"]
            assert variable["definition"] == variable["query"]["query"]
            yield found["selector"]


def selectors(expr: Any) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def metric_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    named = [m for m in selector.matchers.matchers if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal]
    return named[0].value if named else None


def problems(query: str, known: Mapping[str, Series]) -> list[str]:
    """What is wrong with one query: it does not parse, names a series nobody writes, takes the rate of a series
    that is not cumulative, or a quantile of anything but a histogram's buckets."""
    try:
        expr = promql_parser.parse(GRAFANA_RANGES.sub("5m", query))
    except ValueError as error:
        return [f"does not parse: {error}"]
    found: list[str] = []
    for selector in selectors(expr):
        name = metric_name(selector)
        if name is None:
            found.append(f"{selector} names no one series")
        elif name not in known:
            found.append(f"{name}: no series of that name is written by the operator or a pinned runtime")

    def check_call(node: Any) -> None:
        if not isinstance(node, promql_parser.Call):
            return
        if node.func.name in RATES:
            for selector in selectors(node.args[0]):
                series = known.get(metric_name(selector) or "")
                if series is not None and not series.cumulative:
                    found.append(f"{node.func.name}() of {selector.name}, a {series.kind.value} that is not cumulative")
        if node.func.name == "histogram_quantile":
            for selector in selectors(node.args[1]):
                name = metric_name(selector) or ""
                series = known.get(name)
                if series is not None and (
                    series.kind is not MetricKind.HISTOGRAM or name != f"{series.family}_bucket"
                ):
                    found.append(f"histogram_quantile() of {name}, not the _bucket series of a histogram")

    promql_parser.walk(expr, check_call)
    return found


def test_every_query_parses_and_names_series_the_operator_or_a_pinned_runtime_writes(
    dashboard: dict[str, Any], known: dict[str, Series]
) -> None:
    found = list(queries(dashboard))
    assert len(found) > 30
    assert {query: problems(query, known) for query in found if problems(query, known)} == {}


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        # A gauge vLLM never had (its queue is vllm:num_requests_waiting).
        ('sum(vllm:num_requests_queued{namespace="ml"})', "vllm:num_requests_queued: no series"),
        # TGI's exporter writes counters under their own name: no _total.
        ("rate(tgi_request_count_total[5m])", "tgi_request_count_total: no series"),
        # TGI 3.3.7 gives tgi_request_skipped_tokens no buckets: a summary, with no _bucket series.
        ("histogram_quantile(0.9, rate(tgi_request_skipped_tokens_bucket[5m]))", "tgi_request_skipped_tokens_bucket"),
        ("rate(vllm:num_requests_waiting[5m])", "rate() of vllm:num_requests_waiting, a gauge"),
        ("histogram_quantile(0.9, rate(vllm:e2e_request_latency_seconds_sum[5m]))", "not the _bucket series"),
        ('{__name__=~"vllm:.*"}', "names no one series"),
        ("sum(rate(vllm:generation_tokens_total[$__rate_interval])", "does not parse"),
        ("sum(gemma_operator_reconciles)", "gemma_operator_reconciles: no series"),
    ],
)
def test_a_query_naming_what_nobody_writes_is_caught(known: dict[str, Series], query: str, complaint: str) -> None:
    assert any(complaint in problem for problem in problems(query, known)), problems(query, known)


def test_the_operator_series_are_read_from_its_registry(known: dict[str, Series]) -> None:
    # prometheus_client writes the census gauge as is, the reconcile counter with _total, the histogram's buckets.
    assert known["gemma_operator_gemmadeployment_ready_replicas"].kind is MetricKind.GAUGE
    assert known["gemma_operator_reconciles_total"].cumulative
    assert known["gemma_operator_reconcile_duration_seconds_bucket"].kind is MetricKind.HISTOGRAM
    assert "gemma_operator_reconciles" not in known


def test_every_runtime_shows_its_queue_and_running_requests(dashboard: dict[str, Any]) -> None:
    named = {
        metric_name(s)
        for query in queries(dashboard)
        for s in selectors(promql_parser.parse(GRAFANA_RANGES.sub("5m", query)))
    }
    for runtime in Runtime:
        assert {runtimes()[runtime].metrics.waiting, runtimes()[runtime].metrics.running} <= named, runtime
    assert {"vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds_bucket"} <= named


def test_serving_series_are_selected_by_the_labels_both_monitors_give_them(dashboard: dict[str, Any]) -> None:
    # The chart's PodMonitor and a GemmaDeployment's own ServiceMonitor copy the same pod labels onto the series.
    pod_monitor = find(render({"servingMetrics.podMonitor.enabled": "true"}), "PodMonitor")
    gd = deployment(monitoring={"serviceMonitor": True})
    service_monitor = next(c for c in render_children(gd, fitted(gd)) if c["kind"] == "ServiceMonitor")
    copied = {target_label(label) for label in POD_TARGET_LABELS}
    assert {target_label(label) for label in pod_monitor["spec"]["podTargetLabels"]} == copied
    assert {target_label(label) for label in service_monitor["spec"]["podTargetLabels"]} == copied
    assert {INSTANCE, RUNTIME} <= copied
    runtime_names = set(runtime_series()) | set(PROMETHEUS_MADE)
    for query in queries(dashboard):
        for selector in selectors(promql_parser.parse(GRAFANA_RANGES.sub("5m", query))):
            if metric_name(selector) in runtime_names:
                labels = {matcher.name for matcher in selector.matchers.matchers}
                assert labels <= POD_TARGET_BASICS | copied, (query, labels)
                assert RUNTIME in labels, f"{query}: only serving pods carry {RUNTIME}"


def test_the_chart_ships_the_dashboard_for_grafanas_sidecar(dashboard: dict[str, Any]) -> None:
    assert not [o for o in render() if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    objects = render(
        {
            "dashboard.enabled": "true",
            "dashboard.namespace": "monitoring",
            "dashboard.annotations.grafana_folder": "Gemma",
        }
    )
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard"))
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["namespace"] == "monitoring"
    assert config["metadata"]["annotations"] == {"grafana_folder": "Gemma"}
    assert json.loads(config["data"]["gemma-operator.json"]) == dashboard
    relabelled = render({"dashboard.enabled": "true", "dashboard.label": "dashboards", "dashboard.labelValue": "gemma"})
    labels = next(o for o in relabelled if o["metadata"]["name"].endswith("-dashboard"))["metadata"]["labels"]
    assert labels["dashboards"] == "gemma"
    assert "grafana_dashboard" not in labels


def test_the_dashboard_fits_in_a_configmap(dashboard: dict[str, Any]) -> None:
    # A ConfigMap holds at most 1 MiB; the panels do not overlap on Grafana's 24-column grid.
    assert len(json.dumps(dashboard)) < 1024 * 1024
    cells = [
        (x, y)
        for panel in dashboard["panels"]
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells))
    assert all(panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24 for panel in dashboard["panels"])
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
