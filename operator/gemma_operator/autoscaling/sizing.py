"""Sizing a workload: every configuration (variant, precision, accelerator class) that can serve a trace, run
under the built-in autoscaler, and what it costs in GPU-hours and, at given prices, in money.

Each configuration is one `measure`: the planner's replica (serving.serving_for, whose refusal is kept as the
reason), simulated on the workload under the operator's autoscaler. `price` turns the measurements into
GPU-hours, costs and the SLO verdict without simulating again, so a change of SLO or prices is cheap.

The SLO rule: a configuration meets the SLOs when the p95 TTFT and the p95 TPOT over the trace's requests
(nearest rank; a request never served counts as infinitely late) are at most the thresholds. Scale-up lag is
part of it: requests that queue while new pods start (minutes, from the weights) count as late.

The first `warm_up_seconds` are left out of the verdict and of the GPU-hours: a simulation starts cold, with
pods for the first minute's load, and a trace that rises after its first minute would otherwise be judged on
the minutes the first scale-up takes to start pods and drain its backlog, which a running service never
sees. Only requests that arrive after the warm-up count, and only the pods of the seconds after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gemma_operator.api import Precision
from gemma_operator.autoscaling.benchmark import BuiltinAutoscaler, default_policy
from gemma_operator.autoscaling.scorecard import percentile
from gemma_operator.autoscaling.serving import NotServable
from gemma_operator.autoscaling.simulation import (
    SLO_PERCENTILE,
    SLO_TPOT_SECONDS,
    SLO_TTFT_SECONDS,
    SimulationConfig,
    simulate,
)
from gemma_operator.autoscaling.traces import Workload

DEFAULT_VARIANTS = ("26b-a4b", "31b")
DEFAULT_PRECISIONS = (Precision.BF16, Precision.FP8)
DEFAULT_ACCELERATORS = ("h100", "h200", "l4")
# Room to scale far beyond the simulation's default bound: sizing asks how many replicas the load needs, and a
# run that reaches this bound is marked (`atMaxReplicas`), its numbers a lower bound.
SIZING_MAX_REPLICAS = 512
# Pod startup (about 2.5 min for these models) plus the backlog it leaves to drain and the scale-down after it.
WARM_UP_SECONDS = 300
SECONDS_PER_HOUR = 3600
HOURS_PER_DAY = 24
TOKENS_PER_MILLION = 1e6


@dataclass(frozen=True)
class Slo:
    """Thresholds on the p95 TTFT and TPOT of the trace's requests; the simulation's SLOs by default."""

    ttft_p95_seconds: float = SLO_TTFT_SECONDS
    tpot_p95_seconds: float = SLO_TPOT_SECONDS


@dataclass(frozen=True)
class Configuration:
    variant: str
    precision: Precision
    accelerator: str


def configurations(
    variants: Sequence[str] = DEFAULT_VARIANTS,
    precisions: Sequence[Precision] = DEFAULT_PRECISIONS,
    accelerators: Sequence[str] = DEFAULT_ACCELERATORS,
) -> tuple[Configuration, ...]:
    return tuple(Configuration(v, p, a) for v in variants for p in precisions for a in accelerators)


@dataclass(frozen=True)
class Measurement:
    """One configuration's run on the workload; `refusal` set (and the rest zero) when it cannot serve it."""

    configuration: Configuration
    # The seconds measured: the trace's, less the warm-up before them.
    trace_seconds: int
    warm_up_seconds: int = 0
    refusal: str | None = None
    gpus_per_replica: int = 0
    max_batch: int = 0
    replicas_peak: int = 0
    replica_seconds: int = 0
    at_max_replicas: bool = False
    ttft_p95_seconds: float = math.inf
    tpot_p95_seconds: float = math.inf
    # Output tokens of the requests that finished within the trace.
    generated_tokens: int = 0

    def as_json(self) -> dict[str, object]:
        """Every field, camelCase; an infinite p95 (a request never served) as null."""
        c = self.configuration
        return {
            "variant": c.variant,
            "precision": c.precision.value,
            "accelerator": c.accelerator,
            "traceSeconds": self.trace_seconds,
            "warmUpSeconds": self.warm_up_seconds,
            "refusal": self.refusal,
            "gpusPerReplica": self.gpus_per_replica,
            "maxBatch": self.max_batch,
            "replicasPeak": self.replicas_peak,
            "replicaSeconds": self.replica_seconds,
            "atMaxReplicas": self.at_max_replicas,
            "ttftP95Seconds": _round(self.ttft_p95_seconds),
            "tpotP95Seconds": _round(self.tpot_p95_seconds),
            "generatedTokens": self.generated_tokens,
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Measurement:
        def seconds(value: float | None) -> float:
            return math.inf if value is None else float(value)

        return cls(
            Configuration(entry["variant"], Precision(entry["precision"]), entry["accelerator"]),
            trace_seconds=entry["traceSeconds"],
            warm_up_seconds=entry["warmUpSeconds"],
            refusal=entry["refusal"],
            gpus_per_replica=entry["gpusPerReplica"],
            max_batch=entry["maxBatch"],
            replicas_peak=entry["replicasPeak"],
            replica_seconds=entry["replicaSeconds"],
            at_max_replicas=entry["atMaxReplicas"],
            ttft_p95_seconds=seconds(entry["ttftP95Seconds"]),
            tpot_p95_seconds=seconds(entry["tpotP95Seconds"]),
            generated_tokens=entry["generatedTokens"],
        )


def measure(
    workload: Workload,
    configuration: Configuration,
    warm_up_seconds: int = WARM_UP_SECONDS,
    max_replicas: int = SIZING_MAX_REPLICAS,
) -> Measurement:
    """`configuration` planned and simulated on `workload` under the built-in autoscaler, measured after the
    warm-up (none where the trace is not longer than it)."""
    warm_up = warm_up_seconds if workload.seconds > warm_up_seconds else 0
    config = SimulationConfig(
        variant=configuration.variant,
        precision=configuration.precision,
        accelerator=configuration.accelerator,
        max_replicas=max_replicas,
    )
    measured_seconds = workload.seconds - warm_up
    try:
        serving = config.serving
    except NotServable as error:
        return Measurement(configuration, measured_seconds, warm_up, refusal=str(error))
    run = simulate(workload, config, BuiltinAutoscaler(default_policy(config), config.scrape_seconds))
    seconds = run.seconds[warm_up:]
    counted = [
        (request, outcome)
        for request, outcome in zip(workload.requests, run.outcomes, strict=True)
        if request.arrival >= warm_up
    ]
    peak = max((s.replicas for s in seconds), default=0)
    return Measurement(
        configuration,
        measured_seconds,
        warm_up,
        gpus_per_replica=serving.gpus_per_replica,
        max_batch=serving.max_batch,
        replicas_peak=peak,
        replica_seconds=sum(s.replicas for s in seconds),
        at_max_replicas=max(s.replicas for s in run.seconds) >= max_replicas,
        ttft_p95_seconds=percentile([math.inf if o.ttft is None else o.ttft for _, o in counted], SLO_PERCENTILE),
        tpot_p95_seconds=percentile([math.inf if o.tpot is None else o.tpot for _, o in counted], SLO_PERCENTILE),
        generated_tokens=sum(request.output_tokens for request, outcome in counted if outcome.e2e is not None),
    )


@dataclass(frozen=True)
class Sizing:
    """A measurement in GPU-hours and, with a price per GPU-hour, in money; the SLO verdict."""

    measurement: Measurement
    meets_slo: bool
    price_per_gpu_hour: float | None

    @property
    def gpu_hours(self) -> float:
        """GPU-hours over the trace: every replica holds its GPUs from its creation (replica-seconds x GPUs)."""
        return self.measurement.replica_seconds * self.measurement.gpus_per_replica / SECONDS_PER_HOUR

    @property
    def gpu_hours_per_day(self) -> float:
        """GPU-hours a day of this load would take, at the trace's average."""
        trace_hours = self.measurement.trace_seconds / SECONDS_PER_HOUR
        return self.gpu_hours / trace_hours * HOURS_PER_DAY if trace_hours else 0.0

    @property
    def average_replicas(self) -> float:
        seconds = self.measurement.trace_seconds
        return self.measurement.replica_seconds / seconds if seconds else 0.0

    @property
    def gpu_hours_per_million_tokens(self) -> float | None:
        tokens = self.measurement.generated_tokens
        return self.gpu_hours / tokens * TOKENS_PER_MILLION if tokens else None

    def _priced(self, gpu_hours: float | None) -> float | None:
        return None if gpu_hours is None or self.price_per_gpu_hour is None else gpu_hours * self.price_per_gpu_hour

    @property
    def cost_per_hour_peak(self) -> float | None:
        """GPUs per replica x replicas at peak x price per GPU-hour."""
        return self._priced(self.measurement.gpus_per_replica * self.measurement.replicas_peak)

    @property
    def cost_per_hour(self) -> float | None:
        """On average over the trace: GPUs per replica x average replicas x price per GPU-hour."""
        return self._priced(self.measurement.gpus_per_replica * self.average_replicas)

    @property
    def cost_per_million_tokens(self) -> float | None:
        return self._priced(self.gpu_hours_per_million_tokens)

    def rank_key(self) -> tuple[bool, float, float]:
        """Refusals last; then cost over the trace where priced, GPU-hours where not (the same workload for all);
        between equals, the one that generated more tokens for them (fewer GPU-hours per token)."""
        if self.measurement.refusal is not None:
            return (True, math.inf, math.inf)
        priced = self._priced(self.gpu_hours)
        per_token = self.gpu_hours_per_million_tokens
        return (False, self.gpu_hours if priced is None else priced, math.inf if per_token is None else per_token)

    def as_json(self) -> dict[str, object]:
        m, c = self.measurement, self.measurement.configuration
        entry: dict[str, object] = {
            "variant": c.variant,
            "precision": c.precision.value,
            "accelerator": c.accelerator,
            "meetsSlo": self.meets_slo,
        }
        measured: dict[str, object] = {
            "gpusPerReplica": m.gpus_per_replica,
            "maxBatch": m.max_batch,
            "measuredSeconds": m.trace_seconds,
            "warmUpSeconds": m.warm_up_seconds,
            "replicasPeak": m.replicas_peak,
            "averageReplicas": round(self.average_replicas, 3),
            "atMaxReplicas": m.at_max_replicas,
            "gpuHours": round(self.gpu_hours, 4),
            "gpuHoursPerDay": round(self.gpu_hours_per_day, 2),
            "gpuHoursPerMillionTokens": _round(self.gpu_hours_per_million_tokens),
            "pricePerGpuHour": self.price_per_gpu_hour,
            "costPerHourPeak": _round(self.cost_per_hour_peak),
            "costPerHour": _round(self.cost_per_hour),
            "costPerMillionTokens": _round(self.cost_per_million_tokens),
            "ttftP95Seconds": _round(m.ttft_p95_seconds),
            "tpotP95Seconds": _round(m.tpot_p95_seconds),
            "generatedTokens": m.generated_tokens,
        }
        if m.refusal is not None:  # the same keys, null: nothing was measured
            return {**entry, "refusal": m.refusal, **dict.fromkeys(measured)}
        return {**entry, "refusal": None, **measured}


def _round(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 4)


def meets(measurement: Measurement, slo: Slo) -> bool:
    return (
        measurement.refusal is None
        and measurement.ttft_p95_seconds <= slo.ttft_p95_seconds
        and measurement.tpot_p95_seconds <= slo.tpot_p95_seconds
    )


def price(
    measurements: Sequence[Measurement], slo: Slo = Slo(), prices: Mapping[str, float] | None = None
) -> tuple[Sizing, ...]:
    """Every measurement judged and priced (`prices` per GPU-hour by accelerator class), cheapest first."""
    if prices is not None:
        missing = sorted({m.configuration.accelerator for m in measurements} - set(prices))
        if missing:
            raise ValueError(f"no price for accelerator class {', '.join(missing)}")
    sized = (
        Sizing(m, meets(m, slo), None if prices is None else prices[m.configuration.accelerator]) for m in measurements
    )
    return tuple(sorted(sized, key=Sizing.rank_key))


def cheapest(sizings: Sequence[Sizing]) -> Sizing | None:
    """The cheapest configuration that meets the SLOs, None where none does."""
    meeting = [s for s in sizings if s.meets_slo]
    return min(meeting, key=Sizing.rank_key) if meeting else None


def size(
    workload: Workload,
    candidates: Sequence[Configuration],
    slo: Slo = Slo(),
    prices: Mapping[str, float] | None = None,
    warm_up_seconds: int = WARM_UP_SECONDS,
) -> tuple[Sizing, ...]:
    """Every candidate measured on `workload`, judged against `slo` and priced; refused ones included."""
    return price([measure(workload, c, warm_up_seconds) for c in candidates], slo, prices)
