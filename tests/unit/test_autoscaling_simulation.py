"""The token-level simulator, the scorecard and the traces, against hand-computed small cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.autoscaling.benchmark import HpaAutoscaler, KedaAutoscaler, KpaAutoscaler
from gemma_operator.autoscaling.scorecard import direction_changes, percentile, violating_seconds
from gemma_operator.autoscaling.simulation import PodsView, SimulationConfig, simulate
from gemma_operator.autoscaling.traces import (
    AZURE_HEADER,
    BUILTIN_TRACES,
    CONVERSATION,
    Request,
    Trace,
    TraceError,
    Workload,
    read_trace_csv,
    read_workload_csv,
    requests_at,
    scaled,
    window,
)

CONFIG = SimulationConfig(startup_seconds=10, min_replicas=1, max_replicas=4)
SERVING = CONFIG.serving
DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Scripted:
    """Asks for fixed replica counts at fixed seconds."""

    plan: tuple[tuple[int, int], ...] = ()

    def observe(self, view: PodsView) -> tuple[int | None, Scripted]:
        return dict(self.plan).get(view.second), self


def requests(*rows: tuple[float, int, int], seconds: int = 30) -> Workload:
    return Workload("hand", tuple(Request(*row) for row in rows), seconds)


def test_one_request_on_an_idle_pod_takes_a_prefill_then_one_step_a_token() -> None:
    run = simulate(requests((0.5, 1000, 11)), CONFIG, Scripted())
    (outcome,) = run.outcomes
    prefill = SERVING.roofline.step_seconds([], 1000)
    assert outcome.ttft == pytest.approx(prefill)
    # ten decode steps, the context growing from 1000 to 1009 tokens
    steps = [SERVING.roofline.step_seconds([1000 + k], 0) for k in range(10)]
    assert outcome.tpot == pytest.approx(sum(steps) / 10, rel=1e-3)
    assert outcome.e2e == pytest.approx(prefill + sum(steps), rel=1e-3)


def test_a_full_batch_queues_the_next_request_until_a_sequence_finishes() -> None:
    batch = SERVING.max_batch
    rows = [(0.0, 100, 200)] * batch + [(0.0, 100, 5)]
    run = simulate(requests(*rows), SimulationConfig(min_replicas=1, max_replicas=1), Scripted())
    last = run.outcomes[-1]
    first_done = min(o.e2e for o in run.outcomes[:batch] if o.e2e is not None)
    assert last.ttft is not None
    assert last.ttft >= first_done
    assert run.seconds[0].waiting == 1
    assert run.seconds[0].running == batch


def test_requests_arriving_while_the_batch_is_full_are_all_served() -> None:
    rows = [(k * 0.05, 200, 100) for k in range(100)]  # 20 a second for 5 s, more than a batch
    run = simulate(requests(*rows, seconds=120), SimulationConfig(min_replicas=1, max_replicas=1), Scripted())
    assert all(o.e2e is not None for o in run.outcomes)
    assert max(s.waiting for s in run.seconds) > 0  # some did wait for a slot


def test_bigger_batches_decode_each_token_slower_but_serve_more_tokens() -> None:
    roofline = SERVING.roofline
    one, full = roofline.step_seconds([1000], 0), roofline.step_seconds([1000] * SERVING.max_batch, 0)
    assert one < full < SERVING.max_batch * one


def test_new_pods_serve_only_after_startup_and_hold_their_gpus_meanwhile() -> None:
    load = requests_at(Trace("flat", (2.0,) * 30))
    run = simulate(load, CONFIG, Scripted(plan=((0, 3),)))
    assert [s.ready for s in run.seconds[:11]] == [1] * 10 + [3]
    assert [s.replicas for s in run.seconds[:2]] == [3, 3]
    assert [s.decided_up for s in run.seconds[:2]] == [True, False]


def test_scale_down_removes_starting_pods_first_and_re_routes_the_requests_of_removed_ones() -> None:
    run = simulate(
        requests((0.1, 500, 400), (0.2, 500, 400), seconds=20), CONFIG, Scripted(((0, 3), (1, 1), (12, 2), (13, 1)))
    )
    assert [(s.ready, s.replicas) for s in run.seconds[:2]] == [(1, 3), (1, 1)]
    assert all(o.e2e is not None for o in run.outcomes)  # nothing lost with the pod removed at 13


def test_requests_wait_at_the_router_while_no_pod_is_ready() -> None:
    config = SimulationConfig(startup_seconds=5, min_replicas=1, max_replicas=2)
    empty = Workload("late", (Request(70.0, 100, 2),), 90)
    run = simulate(empty, config, Scripted(((0, 0), (70, 1))))
    assert run.seconds[71].waiting == 1  # at the router: no pod ready yet
    (outcome,) = run.outcomes
    assert outcome.ttft is not None
    assert 5 <= outcome.ttft < 6


def test_pods_report_waiting_and_running_of_their_own_batch() -> None:
    views: list[PodsView] = []

    @dataclass(frozen=True)
    class Recording:
        def observe(self, view: PodsView) -> tuple[int | None, Recording]:
            views.append(view)
            return None, self

    rows = [(0.0, 100, 2000)] * (SERVING.max_batch + 3)
    simulate(requests(*rows, seconds=3), SimulationConfig(min_replicas=1, max_replicas=1), Recording())
    assert (views[1].loads[0].running, views[1].loads[0].waiting) == (SERVING.max_batch, 3)


def test_violation_seconds_are_those_where_more_than_5_percent_of_arrivals_missed_the_slo() -> None:
    rows = [(0.0, 100, 2)] * 40 + [(3.5, 100, 2)]
    run = simulate(requests(*rows, seconds=6), SimulationConfig(min_replicas=1, max_replicas=1), Scripted())
    late = [o.ttft for o in run.outcomes[:40] if o.ttft is not None and o.ttft > CONFIG.slo_ttft_seconds]
    assert (0 in violating_seconds(run)) == (len(late) > 2)
    assert 3 not in violating_seconds(run)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


def test_direction_changes() -> None:
    assert direction_changes([1, 2, 2, 3, 1, 1, 4, 4]) == 2
    assert direction_changes([3, 3, 3]) == 0


def test_the_hpa_sees_metrics_one_scrape_plus_15_s_late_and_keda_the_newest_sample() -> None:
    config = SimulationConfig(startup_seconds=600, scrape_seconds=15, min_replicas=1, max_replicas=4)
    surge = Workload("surge", tuple(Request(60 + k * 0.01, 100, 3000) for k in range(60)), 180)
    firsts = []
    for autoscaler in (
        HpaAutoscaler(config, config.target_in_flight_per_replica),
        KedaAutoscaler(HpaAutoscaler(config, config.target_in_flight_per_replica, through_adapter=False)),
    ):
        run = simulate(surge, config, autoscaler)
        firsts.append(next(second for second, s in enumerate(run.seconds) if s.decided_up))
    assert firsts == [105, 75]  # sampled at 75 (the first scrape after 60); read at 75 + 15 + 15, or at once


def test_knative_panics_within_seconds_of_a_surge() -> None:
    config = SimulationConfig(startup_seconds=600, min_replicas=1, max_replicas=8)
    surge = Workload("surge", tuple(Request(60 + k * 0.01, 100, 3000) for k in range(60)), 90)
    run = simulate(surge, config, KpaAutoscaler(config, config.target_in_flight_per_replica))
    first_up = next(second for second, s in enumerate(run.seconds) if s.decided_up)
    assert 61 <= first_up <= 64  # the 6 s panic window's mean passes 2x the ready pods' target on a 2 s tick


def test_azure_rows_are_read_by_their_header() -> None:
    workload = read_workload_csv("conv", (DATA / "azure_conv_head.csv").read_text())
    assert len(workload.requests) == 200
    assert workload.requests[:2] == (Request(0.0, 374, 44), Request(pytest.approx(4.314579), 396, 109))
    assert workload.seconds == int(workload.requests[-1].arrival) + 1


def test_rate_rows_become_poisson_requests_with_the_trace_lengths() -> None:
    workload = read_workload_csv("r.csv", "seconds,rps\n0,20\n600,20\n")
    assert workload.seconds == 601
    assert 20 * 601 * 0.95 < len(workload.requests) < 20 * 601 * 1.05
    prompts = sorted(r.prompt_tokens for r in workload.requests)
    assert prompts[len(prompts) // 2] == pytest.approx(CONVERSATION.prompt_median, rel=0.1)
    assert workload == read_workload_csv("r.csv", "seconds,rps\n0,20\n600,20\n")  # seeded: deterministic


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TIMESTAMP,Context\n", "line 1: the header must be `seconds,rps` or"),
        (",".join(AZURE_HEADER) + "\nyesterday,1,1\n", "line 2: field TIMESTAMP: not"),
        (",".join(AZURE_HEADER) + "\n2023-11-16 18:15:46.1,ten,1\n", "line 2: field ContextTokens: not an integer"),
        (",".join(AZURE_HEADER) + "\n2023-11-16 18:15:46.1,0,1\n", "line 2: token counts must be >= 1"),
        (
            ",".join(AZURE_HEADER) + "\n2023-11-16 18:15:46.1,1,1\n2023-11-16 18:15:45.1,1,1\n",
            "line 3: field TIMESTAMP: earlier than the row before",
        ),
        (",".join(AZURE_HEADER) + "\n", "no rows after the header"),
    ],
)
def test_azure_errors_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message.replace("`", ".")):
        read_workload_csv("t.csv", text)


def test_context_is_capped_at_the_plans_max_tokens() -> None:
    text = ",".join(AZURE_HEADER) + "\n2023-11-16 18:15:46.1,9000,500\n2023-11-16 18:15:47.1,100,50\n"
    first, second = read_workload_csv("t.csv", text, max_tokens=8192).requests
    assert (first.prompt_tokens, first.output_tokens) == (8191, 1)
    assert (second.prompt_tokens, second.output_tokens) == (100, 50)


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0.1, 4.0), time=st.floats(0.25, 4.0))
def test_scaling_keeps_the_shape_and_scales_rate_and_time(rate: float, time: float) -> None:
    base = read_workload_csv("conv", (DATA / "azure_conv_head.csv").read_text())
    result = scaled(base, rate, time)
    assert result.seconds == max(1, -(-base.seconds * time // 1))
    assert abs(len(result.requests) - rate * len(base.requests)) <= 4 * (rate * len(base.requests)) ** 0.5 + 2
    assert all(0 <= r.arrival < result.seconds for r in result.requests)
    assert [r.arrival for r in result.requests] == sorted(r.arrival for r in result.requests)


def test_a_window_moves_its_requests_to_start_at_zero() -> None:
    base = read_workload_csv("conv", (DATA / "azure_conv_head.csv").read_text())
    part = window(base, 60, 60)
    assert part.seconds == 60
    assert [r.arrival + 60 for r in part.requests] == [r.arrival for r in base.requests if 60 <= r.arrival < 120]


def test_builtin_traces_are_realistic_lengths_and_deterministic() -> None:
    for name, shape in BUILTIN_TRACES.items():
        trace = shape()
        assert trace.name == name
        assert 30 * 60 <= len(trace.rps) <= 60 * 60
        assert min(trace.rps) > 0
        assert trace == shape()


def test_csv_trace_holds_each_rate_until_the_next_row() -> None:
    trace = read_trace_csv("t.csv", "seconds,rps\n0,1.5\n3,4\n\n5, 2\n")
    assert trace == Trace("t.csv", (1.5, 1.5, 1.5, 4.0, 4.0, 2.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.csv: line 1: the header must be `seconds,rps`"),
        ("second,rps\n0,1\n", "line 1: the header"),
        ("seconds,rps\n", "t.csv: no rows after the header"),
        ("seconds,rps\n0,1\n5\n", "t.csv: line 3: expected 2 fields (seconds,rps), found 1"),
        ("seconds,rps\n0,1\n1.5,2\n", "t.csv: line 3: field seconds: not an integer: '1.5'"),
        ("seconds,rps\n0,fast\n", "t.csv: line 2: field rps: not a number: 'fast'"),
        ("seconds,rps\n0,-1\n", "t.csv: line 2: field rps: must be a finite number >= 0, got '-1'"),
        ("seconds,rps\n0,inf\n", "line 2: field rps: must be a finite number"),
        ("seconds,rps\n5,1\n", "t.csv: line 2: field seconds: the first row must be second 0, got 5"),
        ("seconds,rps\n0,1\n10,1\n10,2\n", "t.csv: line 4: field seconds: seconds must increase from row to row"),
    ],
)
def test_csv_errors_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", ".")):
        read_trace_csv("t.csv", text)
