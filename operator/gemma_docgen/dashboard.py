"""The Grafana dashboard the chart ships (charts/gemma-operator/dashboards/gemma-operator.json, loaded by Grafana's
dashboard sidecar from the ConfigMap templates/dashboard.yaml makes): the operator's own metrics and the serving
pods', per GemmaDeployment.

Which labels the series carry is decided by how Prometheus scrapes them (prometheus-operator v0.93.0,
pkg/prometheus/promcfg.go):
- serving pods, through the chart's PodMonitor or a GemmaDeployment's ServiceMonitor: `namespace` and `pod` of
  the pod, and each of the monitor's podTargetLabels (rendering/monitor.py POD_TARGET_LABELS: the instance and
  runtime labels) under its name with every character outside [a-zA-Z0-9_] made `_` (sanitizeLabelName);
- the operator, through the chart's ServiceMonitor: `job` is the metrics Service's name, `namespace` the
  operator's. Its per-GemmaDeployment series carry `namespace` themselves, which the scrape renames
  `exported_namespace`, as honor_labels is false (Prometheus docs/configuration/configuration.md, honor_labels).

Queries that cover several runtimes `or` one expression per runtime: a pod runs one runtime, so at most one
side has series for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.api import Runtime
from gemma_operator.catalog import runtimes
from gemma_operator.rendering.identity import INSTANCE_LABEL, RUNTIME_LABEL

DASHBOARD_PATH: Final = "charts/gemma-operator/dashboards/gemma-operator.json"
UID: Final = "gemma-operator"


def target_label(pod_label: str) -> str:
    """The label the Prometheus Operator gives a series for a pod label it copies (promcfg.go sanitizeLabelName)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


INSTANCE: Final = target_label(INSTANCE_LABEL)
RUNTIME: Final = target_label(RUNTIME_LABEL)

DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
# Serving pods of the chosen GemmaDeployments: only they carry the runtime label.
SERVING: Final = f'namespace=~"$namespace", {INSTANCE}=~"$deployment", {RUNTIME}!=""'
OPERATOR: Final = 'job=~"$job"'
OPERATOR_ERRORS: Final = f'{OPERATOR}, result="error"'
# The operator's per-GemmaDeployment series (labels namespace and name, the first renamed by the scrape).
OPERATOR_PER_DEPLOYMENT: Final = f'{OPERATOR}, exported_namespace=~"$namespace", name=~"$deployment"'
BY_DEPLOYMENT: Final = f"namespace, {INSTANCE}"
BY_POD: Final = f"{BY_DEPLOYMENT}, pod"
DEPLOYMENT_LEGEND: Final = f"{{{{namespace}}}}/{{{{{INSTANCE}}}}}"
POD_LEGEND: Final = f"{DEPLOYMENT_LEGEND} {{{{pod}}}}"
RATE_WINDOW: Final = "$__rate_interval"


def selected(series: str, selector: str = SERVING) -> str:
    return f"{series}{{{selector}}}"


def rate(series: str, selector: str = SERVING) -> str:
    return f"rate({selected(series, selector)}[{RATE_WINDOW}])"


def total(by: str, expression: str) -> str:
    return f"sum by ({by}) ({expression})"


def either(*expressions: str) -> str:
    """One expression per runtime, joined: each GemmaDeployment's series come from the one it runs."""
    return " or ".join(expressions)


def quantile(q: float, histogram: str, by: str = "", selector: str = SERVING) -> str:
    """The q-quantile of a histogram over the rate window, from its _bucket series, per `by`."""
    groups = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {total(groups, rate(f'{histogram}_bucket', selector))})"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    max: float | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _per_pod(metric: str) -> str:
    return total(BY_POD, selected(metric))


def _latency(title: str, description: str, histograms: Iterable[str]) -> Panel:
    names = tuple(histograms)
    return Panel(
        title,
        description,
        "s",
        tuple(
            Query(either(*(quantile(q, name, BY_DEPLOYMENT) for name in names)), f"{DEPLOYMENT_LEGEND} p{q * 100:g}")
            for q in (0.5, 0.95)
        ),
    )


def _tokens_per_second(title: str, description: str, counters: Iterable[str]) -> Panel:
    expression = either(*(total(BY_DEPLOYMENT, rate(name)) for name in counters))
    return Panel(title, description, "none", (Query(expression, DEPLOYMENT_LEGEND),))


def rows() -> tuple[Row, ...]:
    """The dashboard's rows, top to bottom."""
    load = {runtime: runtimes()[runtime].metrics for runtime in Runtime}
    return (
        Row(
            "Operator",
            (
                Panel(
                    "GemmaDeployments by Ready",
                    "Every GemmaDeployment the operator serves, by its Ready condition.",
                    "none",
                    (Query(total("ready", selected("gemma_operator_gemmadeployments", OPERATOR)), "Ready={{ready}}"),),
                ),
                Panel(
                    "GemmaDeployments by runtime and target",
                    "The runtime and hardware each plan chose (empty for a GemmaDeployment that was refused).",
                    "none",
                    (
                        Query(
                            total("runtime, target", selected("gemma_operator_gemmadeployments", OPERATOR)),
                            "{{runtime}} on {{target}}",
                        ),
                    ),
                ),
                Panel(
                    "Reconciles",
                    "Reconciles per second, by result: reconciled, stalled (the spec cannot be served now) or error.",
                    "ops",
                    (Query(total("result", rate("gemma_operator_reconciles_total", OPERATOR)), "{{result}}"),),
                ),
                Panel(
                    "Reconcile errors and failed API calls",
                    "Reconciles that ended in an error, and failed Kubernetes API calls by operation and HTTP status.",
                    "ops",
                    (
                        Query(
                            f"sum({rate('gemma_operator_reconciles_total', OPERATOR_ERRORS)})",
                            "reconcile errors",
                        ),
                        Query(
                            total("operation, code", rate("gemma_operator_api_errors_total", OPERATOR)),
                            "{{operation}} {{code}}",
                        ),
                    ),
                ),
                Panel(
                    "Reconcile duration",
                    "Time one reconcile takes, API calls included.",
                    "s",
                    tuple(
                        Query(
                            quantile(q, "gemma_operator_reconcile_duration_seconds", selector=OPERATOR), f"p{q * 100:g}"
                        )
                        for q in (0.5, 0.95, 0.99)
                    ),
                ),
                Panel(
                    "API writes",
                    "Kubernetes API writes the operator made per second, by operation (apply, status, delete, event).",
                    "ops",
                    (Query(total("operation", rate("gemma_operator_api_writes_total", OPERATOR)), "{{operation}}"),),
                ),
                Panel(
                    "Operator memory",
                    "Resident memory of the operator's process.",
                    "bytes",
                    (Query(selected("process_resident_memory_bytes", OPERATOR), "{{pod}}"),),
                ),
                Panel(
                    "Operator CPU",
                    "CPU the operator's process uses, in cores.",
                    "none",
                    (Query(rate("process_cpu_seconds_total", OPERATOR), "{{pod}}"),),
                ),
            ),
        ),
        Row(
            "Replicas",
            (
                Panel(
                    "Replicas: wanted, ready and scraped",
                    "Replicas the operator wants (the autoscaler's when spec.autoscaling is on, else spec.replicas), "
                    "the ready serving pods, and the serving pods that answer Prometheus on /metrics.",
                    "none",
                    (
                        Query(
                            total(
                                "exported_namespace, name",
                                selected("gemma_operator_gemmadeployment_replicas", OPERATOR_PER_DEPLOYMENT),
                            ),
                            "{{exported_namespace}}/{{name}} wanted",
                        ),
                        Query(
                            total(
                                "exported_namespace, name",
                                selected("gemma_operator_gemmadeployment_ready_replicas", OPERATOR_PER_DEPLOYMENT),
                            ),
                            "{{exported_namespace}}/{{name}} ready",
                        ),
                        Query(total(BY_DEPLOYMENT, selected("up")), f"{DEPLOYMENT_LEGEND} scraped"),
                    ),
                ),
                Panel(
                    "Autoscaler: requests in flight",
                    "Waiting and running requests over the ready pods, as the built-in autoscaler read them at its "
                    "last scrape (spec.autoscaling.enabled).",
                    "none",
                    (
                        Query(
                            total(
                                "exported_namespace, name",
                                selected("gemma_operator_autoscaler_in_flight_requests", OPERATOR_PER_DEPLOYMENT),
                            ),
                            "{{exported_namespace}}/{{name}}",
                        ),
                    ),
                ),
                Panel(
                    "Autoscaler: failed scrapes",
                    "Serving pods' /metrics scrapes per second that gave the autoscaler no load.",
                    "ops",
                    (
                        Query(
                            total(
                                "exported_namespace, name",
                                rate("gemma_operator_autoscaler_scrape_errors_total", OPERATOR_PER_DEPLOYMENT),
                            ),
                            "{{exported_namespace}}/{{name}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Serving load",
            (
                Panel(
                    "Queue: requests waiting",
                    "Requests each pod holds but does not run yet: "
                    + ", ".join(f"{load[r].waiting} ({r.value})" for r in Runtime)
                    + ". The built-in autoscaler reads the same gauges.",
                    "none",
                    (Query(either(*(_per_pod(load[r].waiting) for r in Runtime)), POD_LEGEND),),
                ),
                Panel(
                    "Running requests",
                    "Requests each pod is running: "
                    + ", ".join(f"{load[r].running} ({r.value})" for r in Runtime)
                    + ".",
                    "none",
                    (Query(either(*(_per_pod(load[r].running) for r in Runtime)), POD_LEGEND),),
                ),
                Panel(
                    "KV-cache use (vLLM)",
                    "The share of the KV cache's blocks in use, per pod. llama.cpp b11243 exports no such gauge, and "
                    "TGI 3.3.7 sets its token budget (tgi_batch_max_total_tokens) before its exporter starts, so its "
                    "page never shows it.",
                    "percentunit",
                    (Query(f"max by ({BY_POD}) ({selected('vllm:kv_cache_usage_perc')})", POD_LEGEND),),
                    max=1,
                ),
                Panel(
                    "Preemptions (vLLM)",
                    "Requests vLLM preempted per second to free KV-cache blocks: a cache too small for the load.",
                    "ops",
                    (Query(total(BY_DEPLOYMENT, rate("vllm:num_preemptions_total")), DEPLOYMENT_LEGEND),),
                ),
            ),
        ),
        Row(
            "Latency",
            (
                _latency(
                    "Time to first token (vLLM)",
                    "From the request's arrival to its first generated token. TGI 3.3.7 and llama.cpp b11243 "
                    "export no such histogram.",
                    ["vllm:time_to_first_token_seconds"],
                ),
                _latency(
                    "Request latency",
                    "A request's whole time in the server (vLLM, TGI).",
                    ["vllm:e2e_request_latency_seconds", "tgi_request_duration"],
                ),
                _latency(
                    "Queue time",
                    "Time a request waited before it was first scheduled (vLLM, TGI).",
                    ["vllm:request_queue_time_seconds", "tgi_request_queue_duration"],
                ),
                _latency(
                    "Time per output token",
                    "Decode time per generated token, per request (vLLM, TGI).",
                    ["vllm:request_time_per_output_token_seconds", "tgi_request_mean_time_per_token_duration"],
                ),
            ),
        ),
        Row(
            "Throughput",
            (
                _tokens_per_second(
                    "Generated tokens per second",
                    "Tokens generated per second, per GemmaDeployment (vLLM, TGI, llama.cpp).",
                    [
                        "vllm:generation_tokens_total",
                        "tgi_request_generated_tokens_sum",
                        "llamacpp:tokens_predicted_total",
                    ],
                ),
                _tokens_per_second(
                    "Prompt tokens per second",
                    "Prompt tokens prefilled per second (llama.cpp's count leaves out those its cache held).",
                    ["vllm:prompt_tokens_total", "tgi_request_input_length_sum", "llamacpp:prompt_tokens_total"],
                ),
                Panel(
                    "Finished requests",
                    "Requests finished per second: vLLM's by finish reason (stop, length, abort...), TGI's "
                    "successes and failures by error. llama.cpp b11243 counts no requests.",
                    "ops",
                    (
                        Query(
                            total(f"{BY_DEPLOYMENT}, finished_reason", rate("vllm:request_success_total")),
                            f"{DEPLOYMENT_LEGEND} {{{{finished_reason}}}}",
                        ),
                        Query(total(BY_DEPLOYMENT, rate("tgi_request_success")), f"{DEPLOYMENT_LEGEND} success"),
                        Query(
                            total(f"{BY_DEPLOYMENT}, err", rate("tgi_request_failure")),
                            f"{DEPLOYMENT_LEGEND} failed: {{{{err}}}}",
                        ),
                    ),
                ),
                Panel(
                    "Prefix-cache hits (vLLM)",
                    "The share of prompt tokens vLLM found in its prefix cache.",
                    "percentunit",
                    (
                        Query(
                            f"{total(BY_DEPLOYMENT, rate('vllm:prefix_cache_hits_total'))} / "
                            f"{total(BY_DEPLOYMENT, rate('vllm:prefix_cache_queries_total'))}",
                            DEPLOYMENT_LEGEND,
                        ),
                    ),
                    max=1,
                ),
            ),
        ),
    )


def _variable(name: str, label: str, series: str, of: str) -> dict[str, Any]:
    query = f"label_values({series}, {of})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "sort": 1,
        "hide": 0,
    }


def variables() -> list[dict[str, Any]]:
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
        },
        _variable("job", "Operator", "gemma_operator_reconcile_duration_seconds_count", "job"),
        _variable("namespace", "Namespace", f'up{{{RUNTIME}!=""}}', "namespace"),
        _variable("deployment", "GemmaDeployment", f'up{{namespace=~"$namespace", {RUNTIME}!=""}}', INSTANCE),
    ]


PANEL_WIDTH: Final = 12
PANEL_HEIGHT: Final = 8
GRID_WIDTH: Final = 24


def _panels(layout: tuple[Row, ...]) -> list[dict[str, Any]]:
    placed: list[dict[str, Any]] = []
    top = 0
    for row in layout:
        placed.append(
            {
                "id": len(placed) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": top},
                "panels": [],
            }
        )
        top += 1
        per_line = GRID_WIDTH // PANEL_WIDTH
        for index, panel in enumerate(row.panels):
            defaults: dict[str, Any] = {"unit": panel.unit, "min": 0}
            if panel.max is not None:
                defaults["max"] = panel.max
            placed.append(
                {
                    "id": len(placed) + 1,
                    "type": "timeseries",
                    "title": panel.title,
                    "description": panel.description,
                    "datasource": DATASOURCE,
                    "gridPos": {
                        "h": PANEL_HEIGHT,
                        "w": PANEL_WIDTH,
                        "x": (index % per_line) * PANEL_WIDTH,
                        "y": top + (index // per_line) * PANEL_HEIGHT,
                    },
                    "fieldConfig": {"defaults": defaults, "overrides": []},
                    "options": {
                        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"},
                    },
                    "targets": [
                        {
                            "datasource": DATASOURCE,
                            "expr": query.expr,
                            "legendFormat": query.legend,
                            "refId": chr(65 + i),
                        }
                        for i, query in enumerate(panel.queries)
                    ],
                }
            )
        top += -(-len(row.panels) // per_line) * PANEL_HEIGHT
    return placed


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard model (JSON), for a Prometheus data source chosen on the dashboard."""
    return {
        "uid": UID,
        "title": "Gemma operator",
        "description": "GemmaDeployments: the operator's reconciles and replicas, and the serving pods' queue, "
        "running requests, KV-cache use, latency and throughput (vLLM, TGI, llama.cpp).",
        "tags": ["gemma-operator", "llm-serving"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": variables()},
        "panels": _panels(rows()),
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
