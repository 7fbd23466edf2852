"""The queueing simulator, the scorecard and the traces, against hand-computed small cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gemma_operator.autoscaling.benchmark import HpaAutoscaler
from gemma_operator.autoscaling.scorecard import direction_changes, score
from gemma_operator.autoscaling.simulation import PodsView, SimulationConfig, simulate
from gemma_operator.autoscaling.traces import BUILTIN_TRACES, Trace, TraceError, read_trace_csv

CONFIG = SimulationConfig(replica_capacity_rps=2, request_seconds=5, startup_seconds=10, slo_queue_seconds=5)


@dataclass(frozen=True)
class Scripted:
    """Asks for fixed replica counts at fixed seconds."""

    plan: tuple[tuple[int, int], ...] = ()

    def observe(self, view: PodsView) -> tuple[int | None, Scripted]:
        return dict(self.plan).get(view.second), self


def flat(rps: float, seconds: int) -> Trace:
    return Trace("flat", (rps,) * seconds)


def test_load_within_capacity_never_queues() -> None:
    run = simulate(flat(3, 100), CONFIG, Scripted())
    assert [s.replicas for s in run.seconds] == [2] * 100  # ceil(3 / 2) pods, ready from the start
    assert all(s.queue == 0 for s in run.seconds)
    card = score(run)
    assert (card.slo_violation_seconds, card.replica_seconds, card.scale_direction_changes) == (0, 200, 0)
    assert card.scale_up_reaction_seconds is None


def test_an_overload_queues_linearly_and_violates_once_the_wait_passes_the_slo() -> None:
    config = SimulationConfig(replica_capacity_rps=2, slo_queue_seconds=5, min_replicas=2, max_replicas=2)
    run = simulate(flat(5, 40), config, Scripted())  # 2 pods serve 4 rps: the queue grows 1 request a second
    assert [s.queue for s in run.seconds[:3]] == [1, 2, 3]
    # mean wait = queue / 4 rps exceeds 5 s from queue 21, the 21st second, on
    assert score(run).slo_violation_seconds == 40 - 20


def test_new_pods_serve_only_after_startup() -> None:
    config = SimulationConfig(replica_capacity_rps=2, startup_seconds=10, min_replicas=1, max_replicas=4)
    trace = Trace("rise", (2.0,) + (4.0,) * 19)  # 1 pod fits the first second; a second pod is ordered at once
    run = simulate(trace, config, Scripted(plan=((0, 2),)))
    assert [s.ready for s in run.seconds[:11]] == [1] * 10 + [2]
    assert [s.replicas for s in run.seconds[:2]] == [2, 2]  # it holds its GPU while it starts
    assert run.seconds[9].queue == 18  # 2 requests a second short, seconds 1 to 9
    assert run.seconds[10].queue == 18  # two pods now serve exactly the load
    assert [s.decided_up for s in run.seconds[:2]] == [True, False]


def test_scale_down_removes_starting_pods_first() -> None:
    config = SimulationConfig(replica_capacity_rps=2, startup_seconds=10, min_replicas=1, max_replicas=4)
    run = simulate(flat(2, 5), config, Scripted(plan=((0, 3), (1, 1))))
    assert [(s.ready, s.replicas) for s in run.seconds[:2]] == [(1, 3), (1, 1)]


def test_pods_report_their_share_of_the_queue_and_littles_law_running() -> None:
    config = SimulationConfig(replica_capacity_rps=2, request_seconds=5, min_replicas=2, max_replicas=2)
    views: list[PodsView] = []

    @dataclass(frozen=True)
    class Recording:
        def observe(self, view: PodsView) -> tuple[int | None, Recording]:
            views.append(view)
            return None, self

    simulate(flat(6, 3), config, Recording())
    assert views[0].load_per_ready_pod.running == 10  # steady state: 2 rps a pod x 5 s
    assert views[2].load_per_ready_pod.waiting == 2  # 2 requests a second unserved, shared by 2 pods
    assert views[2].load_per_ready_pod.in_flight == 12


def test_direction_changes() -> None:
    assert direction_changes([1, 2, 2, 3, 1, 1, 4, 4]) == 2
    assert direction_changes([3, 3, 3]) == 0


def test_reaction_is_measured_from_the_load_outgrowing_the_pods_to_the_next_scale_up() -> None:
    config = SimulationConfig(replica_capacity_rps=2, min_replicas=1, max_replicas=4)
    trace = Trace("rise", (2.0,) * 5 + (3.0,) * 20)  # from second 5, one pod is short
    run = simulate(trace, config, Scripted(plan=((12, 2),)))
    assert score(run).scale_up_reaction_seconds == 7


def test_the_hpa_sees_metrics_one_scrape_plus_15_s_late() -> None:
    config = SimulationConfig(replica_capacity_rps=2, request_seconds=5, scrape_seconds=15, min_replicas=1)
    trace = Trace("step", (2.0,) * 60 + (6.0,) * 120)  # at 60 s, 1 pod falls 4 rps short
    run = simulate(trace, config, HpaAutoscaler(config, config.target_in_flight_per_replica))
    first_up = next(second for second, s in enumerate(run.seconds) if s.decided_up)
    assert first_up == 105  # sampled at 75 (the first scrape to see it), read at 75 + 15 + 15


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
