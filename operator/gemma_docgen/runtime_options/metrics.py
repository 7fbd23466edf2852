"""The metrics each runtime registers, read from its source: what its /metrics page can carry.

- vLLM: vllm/v1/metrics/loggers.py, PrometheusStatLogger.__init__: every `self._gauge_cls(name="vllm:...")`,
  `self._counter_cls(...)` and `self._histogram_cls(...)` (prometheus_client Gauge, Counter, Histogram).
- TGI: every `metrics::gauge!("tgi_...")`, `metrics::counter!(...)` and `metrics::histogram!(...)` of the
  router and the v3 backend (the `metrics` crate's macros; metrics-exporter-prometheus renders them).
- llama.cpp: tools/server/server-task.cpp, server_task_result_metrics::to_metrics: the `counters` and `gauges`
  metric_item lists, each written as `llamacpp:<name>` with its `# TYPE` (and the labelled counter after them).
"""

from __future__ import annotations

import re

from gemma_docgen.runtime_options.sources import SourceMissing
from gemma_operator.catalog.versions.metric_names import MetricKind

VLLM_LOGGERS = "vllm/v1/metrics/loggers.py"
TGI_FILES = (
    "router/src/server.rs",
    "router/src/infer/mod.rs",
    "router/src/validation.rs",
    "backends/v3/src/backend.rs",
    "backends/v3/src/queue.rs",
    "backends/v3/src/lib.rs",
)
LLAMACPP_TASK = "tools/server/server-task.cpp"

_VLLM = re.compile(r'self\._(gauge|counter|histogram)_cls\(\s*name="(vllm:\w+)"')
_TGI = re.compile(r'metrics::(gauge|counter|histogram)!\(\s*"(tgi_\w+)"')
_LLAMACPP_LIST = re.compile(r"std::vector<metric_item>\s+(counters|gauges)\s*=\s*\{(.*?)\n\s*\};", re.DOTALL)
_LLAMACPP_ITEM = re.compile(r'\{\s*"(\w+)",')
_LLAMACPP_LABELLED = re.compile(r'"# TYPE llamacpp:(\w+) (counter|gauge)\\n"')


class ShapeChanged(SourceMissing):
    """A runtime's metrics source no longer has the shape this reader knows."""


def _found(pairs: list[tuple[str, str]], where: str) -> dict[str, MetricKind]:
    if not pairs:
        raise ShapeChanged(f"no metric found in {where}")
    kinds: dict[str, MetricKind] = {}
    for kind, name in pairs:
        if kinds.setdefault(name, MetricKind(kind)) is not MetricKind(kind):
            raise ShapeChanged(f"{where}: {name} registered as both {kinds[name]} and {kind}")
    return dict(sorted(kinds.items()))


def vllm_metrics(texts: dict[str, str]) -> dict[str, MetricKind]:
    return _found(_VLLM.findall(texts[VLLM_LOGGERS]), VLLM_LOGGERS)


def tgi_metrics(texts: dict[str, str]) -> dict[str, MetricKind]:
    return _found([pair for path in TGI_FILES for pair in _TGI.findall(texts[path])], ", ".join(TGI_FILES))


def llamacpp_metrics(texts: dict[str, str]) -> dict[str, MetricKind]:
    source = texts[LLAMACPP_TASK]
    lists = dict(_LLAMACPP_LIST.findall(source))
    if set(lists) != {"counters", "gauges"}:
        raise ShapeChanged(f"{LLAMACPP_TASK} no longer holds the counters and gauges metric_item lists")
    found = [
        (kind, f"llamacpp:{name}")
        for kind, key in (("counter", "counters"), ("gauge", "gauges"))
        for name in _LLAMACPP_ITEM.findall(lists[key])
    ]
    found += [(kind, f"llamacpp:{name}") for name, kind in _LLAMACPP_LABELLED.findall(source)]
    return _found(found, LLAMACPP_TASK)
