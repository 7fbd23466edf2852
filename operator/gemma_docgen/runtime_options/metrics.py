"""The metrics each runtime registers, read from its source: what its /metrics page can carry.

- vLLM: vllm/v1/metrics/loggers.py, PrometheusStatLogger.__init__: every `self._gauge_cls(name="vllm:...")`,
  `self._counter_cls(...)` and `self._histogram_cls(...)` (prometheus_client Gauge, Counter, Histogram).
- TGI: every `metrics::gauge!("tgi_...")`, `metrics::counter!(...)` and `metrics::histogram!(...)` of the
  router and the v3 backend (the `metrics` crate's macros; metrics-exporter-prometheus renders them). That exporter
  writes a histogram as one (with _bucket series) only where router/src/server.rs gives it buckets
  (`PrometheusBuilder::set_buckets_for_metric` with a `Matcher`), and as a summary (quantiles) otherwise
  (metrics-exporter-prometheus src/distribution.rs, DistributionBuilder::get_distribution).
- llama.cpp: tools/server/server-task.cpp, server_task_result_metrics::to_metrics: the `counters` and `gauges`
  metric_item lists, each written as `llamacpp:<name>` with its `# TYPE` (and the labelled counter after them).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gemma_docgen.runtime_options.sources import SourceMissing
from gemma_operator.catalog.versions.metric_names import MetricKind

VLLM_LOGGERS = "vllm/v1/metrics/loggers.py"
TGI_SERVER = "router/src/server.rs"
TGI_FILES = (
    TGI_SERVER,
    "router/src/infer/mod.rs",
    "router/src/validation.rs",
    "backends/v3/src/backend.rs",
    "backends/v3/src/queue.rs",
    "backends/v3/src/lib.rs",
)
LLAMACPP_TASK = "tools/server/server-task.cpp"

_VLLM = re.compile(r'self\._(gauge|counter|histogram)_cls\(\s*name="(vllm:\w+)"')
_TGI = re.compile(r'metrics::(gauge|counter|histogram)!\(\s*"(tgi_\w+)"')
# `let duration_matcher = Matcher::Suffix(String::from("duration"));`, and the builder calls that use one; a line
# commented out (`// .set_buckets_for_metric(skipped_matcher, ...)`) matches neither.
_TGI_MATCHER = re.compile(r'^\s*let (\w+) = Matcher::(Full|Prefix|Suffix)\(String::from\("(\w+)"\)\);', re.MULTILINE)
_TGI_BUCKETS_FOR = re.compile(r"^\s*\.set_buckets_for_metric\((\w+),", re.MULTILINE)
_TGI_BUCKETS_ALL = re.compile(r"^\s*\.set_buckets\(", re.MULTILINE)
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


def _tgi_bucketed(server: str) -> Callable[[str], bool]:
    """Whether TGI's exporter gives a histogram of that name buckets, from the matchers server.rs passes it."""
    if _TGI_BUCKETS_ALL.search(server):
        return lambda name: True
    matchers = {variable: (kind, text) for variable, kind, text in _TGI_MATCHER.findall(server)}
    used = _TGI_BUCKETS_FOR.findall(server)
    if not used or any(variable not in matchers for variable in used):
        raise ShapeChanged(f"{TGI_SERVER}: no set_buckets_for_metric call with a Matcher this reader knows")
    tests = {
        "Full": lambda name, text: name == text,
        "Prefix": str.startswith,
        "Suffix": str.endswith,
    }
    return lambda name: any(tests[kind](name, text) for kind, text in (matchers[variable] for variable in used))


def tgi_metrics(texts: dict[str, str]) -> dict[str, MetricKind]:
    found = _found([pair for path in TGI_FILES for pair in _TGI.findall(texts[path])], ", ".join(TGI_FILES))
    bucketed = _tgi_bucketed(texts[TGI_SERVER])
    return {
        name: MetricKind.SUMMARY if kind is MetricKind.HISTOGRAM and not bucketed(name) else kind
        for name, kind in found.items()
    }


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
