"""The metric names the autoscaler reads (catalog/runtimes.yaml `metrics:`), held against every metric each runtime
registers at its pinned version (issue #15).

The tables (catalog/versions/metrics/) are read from each runtime's own source by `make refresh-runtime-facts`;
each names the source, version and file blob ids it was read from.
"""

from __future__ import annotations

import pytest

from gemma_docgen.runtime_options import metrics
from gemma_operator.api import Runtime
from gemma_operator.catalog import runtimes
from gemma_operator.catalog.versions.metric_names import (
    EXPOSITIONS,
    Exposition,
    MetricKind,
    exposed_series,
    metric_table,
)
from gemma_operator.catalog.versions.options import image_version


def pinned_versions(runtime: Runtime) -> set[str]:
    found = {image_version(runtime, image.image) for image in runtimes()[runtime].images.values()}
    assert None not in found, f"a pinned {runtime.value} image names no release"
    return {version for version in found if version is not None}


@pytest.mark.parametrize("runtime", list(Runtime))
def test_every_pinned_version_has_a_metric_table_read_from_a_named_source(runtime: Runtime) -> None:
    for version in pinned_versions(runtime):
        table = metric_table(runtime, version)
        assert table is not None, f"no {runtime.value} {version} metric table: run make refresh-runtime-facts"
        assert (table.runtime, table.version) == (runtime, version)
        assert table.source.files, "the table names the files it was read from"
        assert all(len(blob) == 40 for blob in table.source.files.values())
        assert table.source.commit or table.source.archive_sha256


@pytest.mark.parametrize("runtime", list(Runtime))
def test_the_autoscaler_reads_gauges_the_runtime_registers(runtime: Runtime) -> None:
    names = runtimes()[runtime].metrics
    for version in pinned_versions(runtime):
        table = metric_table(runtime, version)
        assert table is not None
        assert table.metrics.get(names.waiting) is MetricKind.GAUGE, (version, names.waiting)
        assert table.metrics.get(names.running) is MetricKind.GAUGE, (version, names.running)
        assert all(name.startswith(names.prefix) for name in table.metrics), (version, names.prefix)


BUCKETED = ("bucket", "sum", "count")

LLAMACPP_TASK = """
std::string server_task_result_metrics::to_metrics() {
    const std::vector<metric_item> counters = {
        {
            "prompt_tokens_total",
            "Number of prompt tokens processed",
            (double) metrics.prompt.count
        },
    };

    const std::vector<metric_item> gauges = {
        {
            "requests_processing",
            "Number of requests processing",
            (double) n_processing_slots
        }, {
            "requests_deferred",
            "Number of requests deferred",
            (double) n_tasks_deferred
        },
    };
    prometheus << "# TYPE llamacpp:spec_decode_num_accepted_tokens_per_pos_total counter\\n";
}
"""


def test_the_llamacpp_reader_takes_both_lists_and_the_labelled_counter() -> None:
    assert metrics.llamacpp_metrics({metrics.LLAMACPP_TASK: LLAMACPP_TASK}) == {
        "llamacpp:prompt_tokens_total": MetricKind.COUNTER,
        "llamacpp:requests_deferred": MetricKind.GAUGE,
        "llamacpp:requests_processing": MetricKind.GAUGE,
        "llamacpp:spec_decode_num_accepted_tokens_per_pos_total": MetricKind.COUNTER,
    }
    with pytest.raises(metrics.ShapeChanged):
        metrics.llamacpp_metrics({metrics.LLAMACPP_TASK: LLAMACPP_TASK.replace("gauges =", "levels =")})


def test_the_vllm_and_tgi_readers_take_each_registration_and_refuse_two_kinds() -> None:
    loggers = 'x = self._gauge_cls(\n    name="vllm:num_requests_running",\n)\ny = self._counter_cls(name="vllm:a")'
    assert metrics.vllm_metrics({metrics.VLLM_LOGGERS: loggers}) == {
        "vllm:a": MetricKind.COUNTER,
        "vllm:num_requests_running": MetricKind.GAUGE,
    }
    sources = dict.fromkeys(metrics.TGI_FILES, "")
    sources[metrics.TGI_FILES[0]] = 'metrics::gauge!("tgi_queue_size").set(0.0);\nmetrics::counter!("tgi_queue_size")'
    with pytest.raises(metrics.ShapeChanged, match="tgi_queue_size registered as both"):
        metrics.tgi_metrics(sources)
    with pytest.raises(metrics.ShapeChanged, match="no metric found"):
        metrics.tgi_metrics(dict.fromkeys(metrics.TGI_FILES, ""))


TGI_SERVER = """
    metrics::histogram!("tgi_request_duration").record(1.0);
    metrics::histogram!("tgi_request_input_length").record(1.0);
    metrics::histogram!("tgi_request_skipped_tokens").record(1.0);
    let duration_matcher = Matcher::Suffix(String::from("duration"));
    let input_length_matcher = Matcher::Full(String::from("tgi_request_input_length"));
    // let skipped_matcher = Matcher::Full(String::from("tgi_request_skipped_tokens"));
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(duration_matcher, &duration_buckets)
        .unwrap()
        .set_buckets_for_metric(input_length_matcher, &input_length_buckets)
        .unwrap();
    // .set_buckets_for_metric(skipped_matcher, &skipped_buckets)
"""


def test_a_tgi_histogram_without_buckets_is_read_as_the_summary_its_exporter_writes() -> None:
    sources = dict.fromkeys(metrics.TGI_FILES, "")
    sources[metrics.TGI_SERVER] = TGI_SERVER
    assert metrics.tgi_metrics(sources) == {
        "tgi_request_duration": MetricKind.HISTOGRAM,
        "tgi_request_input_length": MetricKind.HISTOGRAM,
        "tgi_request_skipped_tokens": MetricKind.SUMMARY,
    }
    # Buckets for every histogram (PrometheusBuilder::set_buckets) leave no summary.
    sources[metrics.TGI_SERVER] = TGI_SERVER + "        .set_buckets(&buckets)\n"
    assert MetricKind.SUMMARY not in metrics.tgi_metrics(sources).values()
    sources[metrics.TGI_SERVER] = TGI_SERVER.replace("set_buckets_for_metric", "set_quantiles_for")
    with pytest.raises(metrics.ShapeChanged, match="set_buckets_for_metric"):
        metrics.tgi_metrics(sources)


@pytest.mark.parametrize(
    ("runtime", "family", "kind", "series"),
    [
        # prometheus_client: a counter as <name>_total (with _created); TGI's exporter and llama.cpp: as named.
        (Runtime.VLLM, "vllm:prompt_tokens", MetricKind.COUNTER, {"vllm:prompt_tokens_total"}),
        (Runtime.TGI, "tgi_request_count", MetricKind.COUNTER, {"tgi_request_count"}),
        (Runtime.LLAMACPP, "llamacpp:prompt_tokens_total", MetricKind.COUNTER, {"llamacpp:prompt_tokens_total"}),
        (Runtime.TGI, "tgi_request_duration", MetricKind.HISTOGRAM, {f"tgi_request_duration_{s}" for s in BUCKETED}),
        # metrics-exporter-prometheus writes a summary's quantiles under its own name.
        (Runtime.TGI, "tgi_request_skipped_tokens", MetricKind.SUMMARY, {"tgi_request_skipped_tokens"}),
    ],
)
def test_each_runtime_writes_a_family_as_its_exporter_does(
    runtime: Runtime, family: str, kind: MetricKind, series: set[str]
) -> None:
    table = metric_table(runtime, next(iter(pinned_versions(runtime))))
    assert table is not None
    assert table.metrics[family] is kind
    written = {name for name, found in exposed_series(table).items() if found.family == family}
    assert series <= written
    assert (family + "_created" in written) is (EXPOSITIONS[runtime] is Exposition.PROMETHEUS_CLIENT)
    assert not {name for name in written if name.endswith("_bucket")} or kind is MetricKind.HISTOGRAM
