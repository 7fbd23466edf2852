"""The load signal: each runtime's real /metrics exposition mapped to {waiting, running}, unknown when in doubt."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load, load_from_exposition
from gemma_operator.catalog import runtimes

SAMPLES = Path(__file__).parent / "data" / "metrics"
# What the recorded samples report (see each file's header).
EXPECTED = {
    Runtime.TGI: Load(waiting=2, running=4),
    Runtime.VLLM: Load(waiting=5, running=3),
    Runtime.LLAMACPP: Load(waiting=1, running=2),
}


def sample(runtime: Runtime) -> str:
    return (SAMPLES / f"{runtime.value}.txt").read_text(encoding="utf-8")


def without_lines_of(text: str, metric: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(metric))


@pytest.mark.parametrize("runtime", list(Runtime))
def test_each_runtime_sample_gives_its_load(runtime: Runtime) -> None:
    assert load_from_exposition(sample(runtime), runtime) == EXPECTED[runtime]


@pytest.mark.parametrize(
    ("page", "runtime"),
    [(page, runtime) for page in Runtime for runtime in Runtime if page is not runtime],
)
def test_another_runtime_page_is_unknown(page: Runtime, runtime: Runtime) -> None:
    assert load_from_exposition(sample(page), runtime) is None


EAGER_GAUGES = [runtime for runtime in Runtime if not runtimes()[runtime].metrics.created_on_first_request]


@pytest.mark.parametrize("runtime", EAGER_GAUGES)
@pytest.mark.parametrize("role", ["waiting", "running"])
def test_a_missing_metric_is_unknown_not_zero(runtime: Runtime, role: str) -> None:
    metric = getattr(runtimes()[runtime].metrics, role)
    assert load_from_exposition(without_lines_of(sample(runtime), metric), runtime) is None


@pytest.mark.parametrize("runtime", EAGER_GAUGES)
def test_an_empty_page_is_unknown_where_the_gauges_exist_from_startup(runtime: Runtime) -> None:
    assert load_from_exposition("", runtime) is None


def test_an_idle_tgi_page_without_its_gauges_is_no_requests_yet() -> None:
    # TGI 3.3.7 renders only metrics that were set: before the first request, nothing at all.
    assert load_from_exposition("", Runtime.TGI) == Load(waiting=0, running=0)
    idle = without_lines_of(without_lines_of(sample(Runtime.TGI), "tgi_queue_size"), "tgi_batch_current_size")
    assert load_from_exposition(idle, Runtime.TGI) == Load(waiting=0, running=0)


def test_a_tgi_page_with_one_gauge_so_far_reads_the_other_as_zero() -> None:
    # queue.rs sets tgi_queue_size when a request is queued, before backend.rs batches it.
    queued_only = without_lines_of(sample(Runtime.TGI), "tgi_batch_current_size")
    assert load_from_exposition(queued_only, Runtime.TGI) == Load(waiting=2, running=0)


def test_a_tgi_page_with_another_servers_metrics_is_unknown() -> None:
    assert load_from_exposition("process_cpu_seconds_total 3.5\n", Runtime.TGI) is None


@pytest.mark.parametrize(
    "text",
    [
        "<html><body>502 Bad Gateway</body></html>",
        '{"error": "Loading model"}',
        "tgi_queue_size 2\ntgi_batch_current_size four\n",
        'tgi_queue_size{le="1} 2\ntgi_batch_current_size 4\n',
        "tgi_queue_size 2\ntgi_batch_current_si",
        "tgi_queue_size NaN\ntgi_batch_current_size 4\n",
        "tgi_queue_size 2\ntgi_batch_current_size +Inf\n",
        "tgi_queue_size -1\ntgi_batch_current_size 4\n",
    ],
    ids=["html", "json", "bad-value", "bad-labels", "truncated-name", "nan", "inf", "negative"],
)
def test_garbled_pages_are_unknown(text: str) -> None:
    assert load_from_exposition(text, Runtime.TGI) is None


def test_a_page_cut_off_mid_value_is_unknown() -> None:
    text = sample(Runtime.VLLM)
    cut = text.index("vllm:num_requests_waiting{") + len("vllm:num_requests_waiting{engine=")
    assert load_from_exposition(text[:cut], Runtime.VLLM) is None


def test_vllm_series_are_summed_over_engines_and_models_by_exact_name() -> None:
    text = (
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="google/gemma-4-31B-it"} 2.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="google/gemma-4-31B-it"} 3.0\n'
        # A longer name that shares the prefix is another metric.
        'vllm:num_requests_waiting_detail{engine="0",model_name="google/gemma-4-31B-it"} 40.0\n'
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="google/gemma-4-31B-it"} 1.0\n'
        'vllm:num_requests_running{engine="0",model_name="adapter"} 1.0\n'
    )
    assert load_from_exposition(text, Runtime.VLLM) == Load(waiting=5, running=2)


def test_untyped_lines_with_colon_names_parse() -> None:
    text = "llamacpp:requests_deferred 0\nllamacpp:requests_processing 0\n"
    load = load_from_exposition(text, Runtime.LLAMACPP)
    assert load == Load(waiting=0, running=0)
    assert load is not None
    assert load.in_flight == 0
