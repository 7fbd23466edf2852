"""Sizing a workload: GPU-hours and costs per configuration, the SLO verdict, refusals kept, the CLI's inputs."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.api import Precision
from gemma_operator.autoscaling.sizing import (
    Configuration,
    Measurement,
    Slo,
    cheapest,
    configurations,
    measure,
    price,
    size,
)
from gemma_operator.autoscaling.traces import Workload, read_workload_csv, scaled, window
from gemma_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONV = ROOT / "docs/benchmarks/traces/AzureLLMInferenceTrace_conv.csv"
FP8_H100 = Configuration("26b-a4b", Precision.FP8, "h100")
REFUSED = Configuration("26b-a4b", Precision.BF16, "l4")  # 49 GiB of weights on 2 x 24 GB


@cache
def conversation(seconds: int) -> Workload:
    return window(read_workload_csv("conv", CONV.read_text(encoding="utf-8"), max_tokens=8192), 0, seconds)


@cache
def measured_set() -> tuple[Measurement, ...]:
    """A few configurations on five minutes of conversation: some meet the default SLOs, some do not."""
    workload = conversation(300)
    candidates = configurations(("26b-a4b", "31b"), (Precision.FP8,), ("h100", "h200"))
    return tuple(measure(workload, c) for c in candidates)


measurements = st.builds(
    Measurement,
    configuration=st.just(FP8_H100),
    trace_seconds=st.integers(1, 10**5),
    gpus_per_replica=st.integers(1, 8),
    replicas_peak=st.integers(1, 64),
    replica_seconds=st.integers(0, 10**7),
    generated_tokens=st.integers(1, 10**9),
)


@given(measurements, st.floats(0.01, 100))
def test_cost_per_hour_is_gpus_times_replicas_times_price(measurement: Measurement, per_gpu_hour: float) -> None:
    (sized,) = price([measurement], prices={"h100": per_gpu_hour})
    m = measurement
    assert sized.cost_per_hour_peak == pytest.approx(m.gpus_per_replica * m.replicas_peak * per_gpu_hour)
    average = m.replica_seconds / m.trace_seconds
    assert sized.cost_per_hour == pytest.approx(m.gpus_per_replica * average * per_gpu_hour)
    # Over the trace, the average cost per hour and the GPU-hours agree; per token, the same money.
    assert sized.cost_per_hour is not None
    assert sized.cost_per_million_tokens is not None
    assert sized.cost_per_hour * m.trace_seconds / 3600 == pytest.approx(sized.gpu_hours * per_gpu_hour)
    assert sized.cost_per_million_tokens * m.generated_tokens / 1e6 == pytest.approx(sized.gpu_hours * per_gpu_hour)
    assert sized.gpu_hours_per_day == pytest.approx(m.gpus_per_replica * average * 24)


def test_a_refused_configuration_is_reported_with_the_planners_reason() -> None:
    sizings = size(scaled(conversation(120), 1.0), [REFUSED, FP8_H100], prices={"h100": 2.9, "l4": 0.7})
    assert [s.measurement.configuration for s in sizings] == [FP8_H100, REFUSED]  # kept, ranked last
    refused = sizings[-1].as_json()
    assert refused["meetsSlo"] is False
    assert "does not fit 2 x l4" in str(refused["refusal"])
    assert cheapest(sizings) is sizings[0]


# The built-in autoscaler is not strictly monotone in the load: a little more traffic can trigger an earlier
# scale-up that a lighter trace later repeats at a worse moment, and the pods' integer count and startup make
# replica-seconds jump. What holds is that a load four times higher never needs fewer GPU-hours or fewer
# replicas at peak: at that distance the extra capacity the load needs outweighs any such timing effect.
@settings(max_examples=4, deadline=None)
@given(st.floats(0.5, 4.0), st.sampled_from([FP8_H100, Configuration("31b", Precision.FP8, "h200")]))
def test_four_times_the_load_never_needs_fewer_gpu_hours(rate: float, configuration: Configuration) -> None:
    light, heavy = (measure(scaled(conversation(300), r), configuration) for r in (rate, 4 * rate))
    (light_sized, heavy_sized) = price([light]), price([heavy])
    assert heavy_sized[0].gpu_hours >= light_sized[0].gpu_hours
    assert heavy.replicas_peak >= light.replicas_peak


@settings(deadline=None)  # the first example measures the set
@given(
    st.floats(0.05, 20.0),
    st.floats(0.005, 0.5),
    st.floats(1.0, 10.0),
    st.floats(1.0, 10.0),
    st.none() | st.fixed_dictionaries({"h100": st.floats(0.1, 10), "h200": st.floats(0.1, 10)}),
)
def test_a_looser_slo_never_costs_more(
    ttft: float, tpot: float, ttft_loosening: float, tpot_loosening: float, prices: dict[str, float] | None
) -> None:
    strict = price(measured_set(), Slo(ttft, tpot), prices)
    loose = price(measured_set(), Slo(ttft * ttft_loosening, tpot * tpot_loosening), prices)
    assert {s.measurement for s in strict if s.meets_slo} <= {s.measurement for s in loose if s.meets_slo}
    strict_best, loose_best = cheapest(strict), cheapest(loose)
    if strict_best is not None:
        assert loose_best is not None
        assert loose_best.rank_key() <= strict_best.rank_key()


def test_the_default_slos_separate_the_measured_set() -> None:
    """The looser-SLO property above is only worth something if the set has configurations on both sides."""
    verdicts = {s.meets_slo for s in price(measured_set())}
    assert verdicts == {True, False}


def test_without_prices_the_ranking_is_by_gpu_hours() -> None:
    sized = [s for s in price(measured_set()) if s.measurement.refusal is None]
    assert [s.gpu_hours for s in sized] == sorted(s.gpu_hours for s in sized)
    assert all(s.cost_per_hour is None for s in sized)


@pytest.mark.parametrize(
    ("prices", "named"),
    [("h100=2.9,h200=abc", "'h200=abc'"), ("h100=2.9,tpu=1", "'tpu=1'"), ("h100", "'h100'"), ("h100=-1", "'h100=-1'")],
)
def test_a_bad_price_is_named(prices: str, named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["size", "--trace-file", str(CONV), "--prices", prices])
    assert named in capsys.readouterr().err


def test_a_class_without_a_price_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--trace-file", str(CONV), "--accelerators", "h100,l4", "--prices", "h100=2.9"]) == 2
    assert "no price for l4" in capsys.readouterr().err


def test_json_lists_every_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("seconds,rps\n" + "".join(f"{s},2\n" for s in range(120)), encoding="utf-8")
    argv = ["size", "--trace-file", str(trace), "--variants", "26b-a4b", "--accelerators", "h100,l4", "-o", "json"]
    assert main([*argv, "--prices", "h100=2.9,l4=0.7"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4  # two precisions on two classes, the refused one included
    assert len({frozenset(r) for r in rows}) == 1  # one schema, a refused row's measurements null
    served = [r for r in rows if r["refusal"] is None]
    for row in served:
        assert row["costPerHourPeak"] == pytest.approx(
            row["gpusPerReplica"] * row["replicasPeak"] * row["pricePerGpuHour"], rel=1e-3
        )
        assert not math.isnan(row["gpuHours"])
    assert any(r["refusal"] is not None and r["gpusPerReplica"] is None for r in rows)


def test_the_warm_up_leaves_out_the_cold_start_only() -> None:
    """The conversation trace doubles after its first minute; a cold 31B replica set takes minutes to catch up
    (pods start in about 2.5 min), which the whole-trace p95 would judge. After the warm-up it is served."""
    workload = conversation(1200)
    configuration = Configuration("31b", Precision.FP8, "h200")
    cold, warm = measure(workload, configuration, warm_up_seconds=0), measure(workload, configuration)
    assert cold.ttft_p95_seconds > Slo().ttft_p95_seconds >= warm.ttft_p95_seconds
    assert (cold.trace_seconds, warm.trace_seconds) == (1200, 1200 - warm.warm_up_seconds)
    assert warm.replica_seconds < cold.replica_seconds
