"""Prometheus metrics of each runtime, with its real metric names and exposition.

vLLM itself uses prometheus_client, so its simulated page is prometheus_client's own
output, from a CollectorRegistry per pod.  TGI renders with the Rust
`metrics-exporter-prometheus` crate (counters carry no `_total` suffix, no `_created`
series): its page is rendered from a registry in that layout.  llama.cpp writes its
page by hand (`# TYPE llamacpp:prompt_tokens_total counter`), and so does its
simulation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

from .modelconfig import ModelConfig

TEXT_PLAIN = "text/plain; charset=utf-8"
LLAMACPP_CONTENT_TYPE = "text/plain; version=0.0.4"


@dataclass(frozen=True)
class Snapshot:
    """Load to report at scrape time."""

    waiting: int
    running: int
    kv_cache_usage: float | None


@dataclass(frozen=True)
class Finished:
    """One generation request that completed."""

    seconds: float
    queue_seconds: float
    prompt_tokens: int
    completion_tokens: int
    finish: str
    # Known when the request was batched by a serving engine (trace-driven traffic); else the whole duration,
    # as for the simulator's answers, which come in one piece.
    first_token_seconds: float | None = None


class Meters(Protocol):
    """The metrics of one simulated server."""

    def request_started(self) -> None: ...

    def request_finished(self, done: Finished) -> None: ...

    def request_failed(self, err: str) -> None: ...

    def render(self, snapshot: Snapshot) -> tuple[bytes, str]: ...


def format_value(value: float) -> str:
    """Integers without a trailing `.0`, as the Rust and C++ exporters print them."""
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items())) + "}"


def render_plain(families: Iterable[Metric]) -> bytes:
    """Render families as metrics-exporter-prometheus does: a counter's samples are named like the family
    (`tgi_request_count 3`, no `_total`), and no `_created` series."""
    lines: list[str] = []
    for family in families:
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        if not samples:
            continue
        lines.append(f"# HELP {family.name} {family.documentation}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in samples:
            sample_name = sample.name.removesuffix("_total") if family.type == "counter" else sample.name
            lines.append(f"{sample_name}{_labels(sample.labels)} {format_value(sample.value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _tgi_duration_buckets() -> list[float]:
    # router/src/server.rs: 35 buckets, a geometric sequence from 0.0001 * 1.5.
    buckets, value = [], 0.0001
    for _ in range(35):
        value *= 1.5
        buckets.append(value)
    return buckets


class TgiMeters:
    def __init__(self, cfg: ModelConfig) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._cfg = cfg
        self.request_count = Counter("tgi_request_count", "Number of inference requests", registry=r)
        self.request_success = Counter("tgi_request_success", "Number of successful requests", registry=r)
        self.request_failure = Counter("tgi_request_failure", "Number of failed requests", ["err"], registry=r)
        durations = _tgi_duration_buckets()
        self.duration = Histogram("tgi_request_duration", "Request duration", buckets=durations, registry=r)
        self.queue_duration = Histogram(
            "tgi_request_queue_duration",
            "Request queue duration",
            buckets=durations,
            registry=r,
        )
        self.inference_duration = Histogram(
            "tgi_request_inference_duration",
            "Request inference duration",
            buckets=durations,
            registry=r,
        )
        self.per_token = Histogram(
            "tgi_request_mean_time_per_token_duration",
            "Mean time per token per request",
            buckets=durations,
            registry=r,
        )
        self.input_length = Histogram(
            "tgi_request_input_length",
            "Input token length per request",
            buckets=[cfg.max_input_tokens / 100.0 * (x + 1) for x in range(100)],
            registry=r,
        )
        self.generated_tokens = Histogram(
            "tgi_request_generated_tokens",
            "Generated tokens per request",
            buckets=[cfg.max_total_tokens / 100.0 * (x + 1) for x in range(100)],
            registry=r,
        )
        self.queue_size = Gauge("tgi_queue_size", "Current queue size", registry=r)
        self.batch_size = Gauge("tgi_batch_current_size", "Current batch size", registry=r)
        self.batch_max_tokens = Gauge(
            "tgi_batch_current_max_tokens",
            "Maximum tokens for the current batch",
            registry=r,
        )
        # TGI 3.3.7's exporter renders only metrics that were set, and it sets them on the first request
        # (backends/v3/src/queue.rs, backend.rs): an idle server's page is empty. tgi_batch_max_total_tokens is
        # never rendered, since backends/v3/src/lib.rs sets it before router/src/server.rs installs the recorder.
        self._asked = False

    def request_started(self) -> None:
        self._asked = True
        self.request_count.inc()

    def request_finished(self, done: Finished) -> None:
        self.request_success.inc()
        self.duration.observe(done.seconds)
        self.queue_duration.observe(done.queue_seconds)
        inference = max(0.0, done.seconds - done.queue_seconds)
        self.inference_duration.observe(inference)
        self.per_token.observe(inference / max(1, done.completion_tokens))
        self.input_length.observe(done.prompt_tokens)
        self.generated_tokens.observe(done.completion_tokens)

    def request_failed(self, err: str) -> None:
        self.request_failure.labels(err).inc()

    def render(self, snapshot: Snapshot) -> tuple[bytes, str]:
        # Load set through the control API stands for requests the server was sent.
        self._asked = self._asked or snapshot.waiting > 0 or snapshot.running > 0
        if not self._asked:
            return b"", TEXT_PLAIN
        self.queue_size.set(snapshot.waiting)
        self.batch_size.set(snapshot.running)
        per_request = min(self._cfg.max_total_tokens, 512)
        self.batch_max_tokens.set(snapshot.running * per_request)
        return render_plain(self.registry.collect()), TEXT_PLAIN


_VLLM_LATENCY_BUCKETS = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
]  # fmt: skip
_VLLM_TTFT_BUCKETS = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
    0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
]  # fmt: skip


class VllmMeters:
    """vllm/v1/metrics/loggers.py: labels model_name and engine on every series."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._cfg = cfg
        self._labels = (cfg.model_id, "0")
        names = ["model_name", "engine"]
        self.running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            names,
            registry=r,
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            names,
            registry=r,
        )
        self.kv_usage = Gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            names,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            names,
            registry=r,
        )
        self.generation_tokens = Counter(
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            names,
            registry=r,
        )
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*names, "finished_reason"],
            registry=r,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            names,
            buckets=_VLLM_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            names,
            buckets=_VLLM_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            names,
            buckets=_VLLM_TTFT_BUCKETS,
            registry=r,
        )
        # Series exist from start-up (vLLM creates its labelled children eagerly).
        for metric in (self.running, self.waiting, self.kv_usage):
            metric.labels(*self._labels)
        for counter in (self.prompt_tokens, self.generation_tokens):
            counter.labels(*self._labels)
        for reason in ("stop", "length", "abort"):
            self.success.labels(*self._labels, reason)
        for hist in (self.e2e, self.queue_time, self.ttft):
            hist.labels(*self._labels)

    def request_started(self) -> None:
        return None

    def request_finished(self, done: Finished) -> None:
        reason = "length" if done.finish == "length" else "stop"
        self.success.labels(*self._labels, reason).inc()
        self.prompt_tokens.labels(*self._labels).inc(done.prompt_tokens)
        self.generation_tokens.labels(*self._labels).inc(done.completion_tokens)
        self.e2e.labels(*self._labels).observe(done.seconds)
        self.queue_time.labels(*self._labels).observe(done.queue_seconds)
        self.ttft.labels(*self._labels).observe(
            done.seconds if done.first_token_seconds is None else done.first_token_seconds
        )

    def request_failed(self, err: str) -> None:
        return None

    def render(self, snapshot: Snapshot) -> tuple[bytes, str]:
        self.waiting.labels(*self._labels).set(snapshot.waiting)
        self.running.labels(*self._labels).set(snapshot.running)
        usage = snapshot.kv_cache_usage
        if usage is None:
            usage = min(1.0, snapshot.running / max(1, self._cfg.parallel_slots))
        self.kv_usage.labels(*self._labels).set(usage)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


@dataclass
class _LlamacppTotals:
    """What llama-server's server_metrics counts, as far as the simulator serves requests."""

    prompt_tokens: int = 0
    prompt_seconds: float = 0.0
    predicted_tokens: int = 0
    predicted_seconds: float = 0.0
    decodes: int = 0
    tokens_max: int = 0
    prompt_rate: float = 0.0
    predict_rate: float = 0.0


class LlamacppMeters:
    """tools/server/server-task.cpp, server_task_result_metrics::to_metrics (b11243): a hand-written page, the
    `counters` list then the `gauges` list, each item `# HELP`/`# TYPE`/value under `llamacpp:`, with llama-server's
    own names and help texts. No prompt cache and no speculative decoding is simulated: those counters stay 0."""

    def __init__(self, cfg: ModelConfig) -> None:
        self._cfg = cfg
        self._totals = _LlamacppTotals()

    def request_started(self) -> None:
        return None

    def request_finished(self, done: Finished) -> None:
        inference, totals = max(0.0, done.seconds - done.queue_seconds), self._totals
        totals.prompt_tokens += done.prompt_tokens
        totals.predicted_tokens += done.completion_tokens
        totals.prompt_seconds += inference / 10.0
        totals.predicted_seconds += inference * 0.9
        totals.decodes += 1 + done.completion_tokens
        totals.tokens_max = max(totals.tokens_max, done.prompt_tokens + done.completion_tokens)
        if inference > 0:
            totals.prompt_rate = done.prompt_tokens / (inference / 10.0)
            totals.predict_rate = done.completion_tokens / (inference * 0.9)

    def request_failed(self, err: str) -> None:
        return None

    def render(self, snapshot: Snapshot) -> tuple[bytes, str]:
        t = self._totals
        counters = (
            ("prompt_tokens_total", "Number of prompt tokens processed, excluding cached tokens", t.prompt_tokens),
            ("prompt_tokens_cached_total", "Number of prompt tokens reused from the cache", 0),
            ("prompt_seconds_total", "Total time spent processing prompts", t.prompt_seconds),
            ("tokens_predicted_total", "Number of generation tokens processed", t.predicted_tokens),
            ("tokens_predicted_seconds_total", "Total time spent generating tokens", t.predicted_seconds),
            (
                "n_decode_total",
                "Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding",
                t.decodes,
            ),
            ("n_tokens_max", "Largest observed sequence length (prompt + generation)", t.tokens_max),
            ("spec_decode_num_draft_tokens_total", "Speculative: Total draft tokens generated", 0),
            (
                "spec_decode_num_accepted_tokens_total",
                "Speculative: Total draft tokens accepted by the target model",
                0,
            ),
            ("spec_decode_num_drafts_total", "Speculative: Total speculative decoding verification steps", 0),
        )
        gauges = (
            ("prompt_tokens_seconds", "Average prompt throughput in tokens/s", t.prompt_rate),
            ("predicted_tokens_seconds", "Average generation throughput in tokens/s", t.predict_rate),
            ("requests_processing", "Number of requests processing", snapshot.running),
            ("requests_deferred", "Number of requests deferred", snapshot.waiting),
            (
                "n_busy_slots_per_decode",
                "Average number of busy slots per llama_decode() call",
                min(snapshot.running, self._cfg.parallel_slots),
            ),
        )
        lines = [
            f"# HELP llamacpp:{name} {help_text}\n# TYPE llamacpp:{name} {kind}\n"
            f"llamacpp:{name} {format_value(value)}\n"
            for kind, items in (("counter", counters), ("gauge", gauges))
            for name, help_text, value in items
        ]
        return "".join(lines).encode("utf-8"), LLAMACPP_CONTENT_TYPE
