"""The built-in autoscaler's decision function, on hand-computed cases and as properties."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gemma_operator.api import AutoscalingSpec
from gemma_operator.autoscaling.decision import CapacityLimit, Decision, Observation, decide
from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.signals import Load
from gemma_operator.autoscaling.state import AutoscalerState

# Round numbers: target 10 in flight per pod, no headroom or tolerance, so pods needed = ceil(in-flight / 10).
PLAIN: dict[str, Any] = {"min_replicas": 1, "max_replicas": 20, "target_utilization": 1.0, "scale_down_tolerance": 0.0}
TARGET = 10


def policy(**overrides: Any) -> AutoscalingPolicy:
    return AutoscalingPolicy.from_spec(AutoscalingSpec(**{**PLAIN, **overrides}), default_target=TARGET)


def pods(count: int, running: float = 10.0, waiting: float = 0.0) -> tuple[Load, ...]:
    return (Load(waiting=waiting, running=running),) * count


def run(
    chosen: AutoscalingPolicy,
    steps: Sequence[tuple[float, tuple[Load | None, ...], int]],
    state: AutoscalerState | None = None,
) -> list[Decision]:
    """Decide at each (time, ready loads, starting pods), carrying the state, as the operator's timer does."""
    decisions = []
    current = state or AutoscalerState()
    for now, ready, starting in steps:
        decision = decide(chosen, current, Observation(ready, starting), now)
        decisions.append(decision)
        current = decision.state
    return decisions


def test_scales_up_at_once_to_what_the_load_needs() -> None:
    decision = decide(policy(), AutoscalerState(), Observation(pods(2, running=10, waiting=5)), now=0)
    assert decision.desired == 3  # in-flight 30 at 10 per pod
    assert (decision.panicking, decision.limited, decision.held) == (False, False, False)
    assert "in-flight 30.0 over 2 ready pods" in decision.reason
    assert decision.reason.split(";")[0].endswith("-> 3")


def test_target_utilization_leaves_headroom() -> None:
    decision = decide(policy(target_utilization=0.8), AutoscalerState(), Observation(pods(4)), now=0)
    assert decision.desired == 5  # in-flight 40 at 8 per pod


def test_a_fresh_autoscaler_does_not_scale_down_before_the_delay() -> None:
    quiet = pods(4, running=2)  # in-flight 8: one pod would do
    decisions = run(policy(), [(float(t), quiet, 0) for t in range(0, 301, 15)])
    assert [d.desired for d in decisions[:-1]] == [4] * 20  # it remembers the count it started with
    assert decisions[-1].desired == 2  # 300 s on: down, halving at most


def test_scale_down_waits_for_the_highest_demand_of_the_delay_window() -> None:
    peak = (0.0, pods(6), 0)  # demand 6 pods
    quiet = [(float(t), pods(6, running=1), 0) for t in range(15, 301, 15)]  # demand 1 pod
    decisions = run(policy(), [peak, *quiet])
    assert [d.desired for d in decisions[:-1]] == [6] * 20
    assert decisions[-1].desired == 3  # the window forgot the peak; halving is the fastest way down


@pytest.mark.parametrize(("rate", "expected"), [(2.0, 4), (4.0, 2), (10.0, 1)])
def test_scale_down_rate_is_bounded(rate: float, expected: int) -> None:
    quiet = Observation(pods(8, running=0.5))  # in-flight 4: one pod would do
    decision = decide(policy(scale_down_delay_seconds=0, max_scale_down_rate=rate), AutoscalerState(), quiet, 100)
    assert decision.desired == expected


@pytest.mark.parametrize(
    ("current", "want", "expected"),
    [(1, 20, 5), (3, 20, 7), (4, 20, 8), (6, 20, 12), (10, 20, 20)],
)
def test_scale_up_rate_is_x2_or_plus_4_whichever_is_more(current: int, want: int, expected: int) -> None:
    per_pod = want * 10 / current  # the load of `want` pods, spread over the current ones
    no_panic = policy(panic_threshold=100)
    decision = decide(no_panic, AutoscalerState(), Observation(pods(current, running=per_pod)), 0)
    assert decision.desired == expected


def test_panic_scales_to_the_whole_load_and_holds_for_a_stable_window() -> None:
    chosen = policy(scale_down_delay_seconds=0)
    burst = (0.0, pods(2, running=10, waiting=40), 0)  # in-flight 100 over capacity 20: 5x
    after = [(float(t), pods(6, running=1), 0) for t in (15, 30, 45, 60, 75)]
    decisions = run(chosen, [burst, *after])
    assert decisions[0].panicking
    assert decisions[0].desired == 6  # wants 10; x2 or +4 allows 6
    assert "panic" in decisions[0].reason
    assert [d.desired for d in decisions[1:4]] == [6, 6, 6]  # panicking until 60 s: no scale-down
    assert all(d.panicking for d in decisions[1:4])
    assert not decisions[4].panicking
    assert decisions[4].desired == 3  # the stable window is over: down, halving at most


def test_panic_counts_starting_pods_as_capacity() -> None:
    load = pods(2, running=10, waiting=12)  # in-flight 44
    assert decide(policy(), AutoscalerState(), Observation(load, starting=0), 0).panicking  # 44 >= 2 x 20
    assert not decide(policy(), AutoscalerState(), Observation(load, starting=1), 0).panicking  # 44 < 2 x 30


def test_starting_pods_prevent_the_overshoot_of_counting_ready_pods_only() -> None:
    # 2 ready pods at 15 in flight each, 2 more starting. An HPA-style ceil(4 x 15 / 10) would ask for 6.
    decision = decide(policy(), AutoscalerState(), Observation(pods(2, running=10, waiting=5), starting=2), 0)
    assert decision.desired == 4


def test_backlog_that_builds_while_pods_start_is_not_counted_again() -> None:
    ordered = (0.0, pods(2, running=10, waiting=5), 0)  # in-flight 30: order a third pod
    loading = [(float(t), pods(2, running=10, waiting=5 + t / 6), 1) for t in (15, 30, 45, 60)]  # the queue grows
    decisions = run(policy(), [ordered, *loading])
    assert [d.desired for d in decisions] == [3, 3, 3, 3, 3]
    assert "left to the starting pods" in decisions[1].reason
    unaware = run(policy(), [(t, load, 0) for t, load, _ in loading])
    assert unaware[-1].desired > 3  # without pods on their way, the same backlog does call for more


def test_just_ready_pods_get_the_backlog_they_were_ordered_for() -> None:
    ordered = (0.0, pods(2, running=10, waiting=5), 0)
    loading = (15.0, pods(2, running=10, waiting=10), 1)
    ready = (30.0, pods(3, running=20 / 3, waiting=25 / 3), 0)  # the new pod has no share of the work yet
    assert run(policy(), [ordered, loading, ready])[-1].desired == 3


def test_a_draining_backlog_holds() -> None:
    growing = (0.0, pods(4, running=10, waiting=9), 0)  # in-flight 76 on 4 pods: asks for 8
    draining = (15.0, pods(8, running=10, waiting=4), 0)  # the queue shrank from 36 to 32: in-flight 112
    decisions = run(policy(), [growing, draining])
    assert decisions[0].desired == 8
    assert decisions[1].desired == 8
    assert "draining" in decisions[1].reason


def test_a_drained_backlog_leaves_no_recommendation() -> None:
    steps = [(0.0, pods(3, running=10), 0)]  # demand 3 pods
    steps += [(15.0, pods(3, running=10, waiting=5), 0), (30.0, pods(3, running=10, waiting=10), 2)]  # grows: 5
    steps += [(45.0, pods(5, running=10, waiting=4), 0), (60.0, pods(5, running=10, waiting=2), 0)]  # drains
    steps += [(float(t), pods(5, running=6), 0) for t in range(75, 331, 15)]  # demand 3 pods again
    decisions = run(policy(), steps)
    assert [d.desired for d in decisions[:3]] == [3, 5, 5]
    assert all(r.at not in (45.0, 60.0, 75.0) for r in decisions[-1].state.recommendations)
    by_time = {step[0]: decision.desired for step, decision in zip(steps, decisions, strict=True)}
    assert by_time[315.0] == 5  # the growing backlog at t=30 is demand for 300 s
    assert by_time[330.0] == 3  # then it goes; the drain that followed never counted


def test_a_failed_scrape_never_scales_down() -> None:
    chosen = policy(scale_down_delay_seconds=0)
    quiet: tuple[Load | None, ...] = (*pods(3, running=1), None)
    first = decide(chosen, AutoscalerState(), Observation(pods(4, running=1)), 0)
    decision = decide(chosen, first.state, Observation(quiet), 100)
    assert decision.desired == 4
    assert decision.held
    assert "held: 1 of 4 ready pods not scraped" in decision.reason
    scraped = decide(chosen, first.state, Observation(pods(4, running=1)), 100)
    assert scraped.desired < 4  # the same load, all scraped, does scale down


def test_an_unknown_pod_counts_at_the_known_average_on_the_way_up() -> None:
    decision = decide(policy(), AutoscalerState(), Observation((*pods(3, running=15), None)), 0)
    assert decision.desired == 6  # 45 known over 3 pods, so about 60 over 4
    assert decision.held is False


def test_no_known_load_holds_the_count() -> None:
    decision = decide(policy(), AutoscalerState(), Observation((None, None, None), starting=1), 0)
    assert decision.desired == 4
    assert decision.held
    assert "no load known" in decision.reason
    nothing_ready = decide(policy(min_replicas=2), AutoscalerState(), Observation((), starting=1), 0)
    assert nothing_ready.desired == 2  # still within the bounds


def test_the_capacity_limit_caps_and_says_why() -> None:
    limit = CapacityLimit(replicas=6, resource="free H100 GPUs")
    busy = Observation(pods(4, running=10, waiting=9))  # in-flight 76: 8 pods
    decision = decide(policy(), AutoscalerState(), busy, 0, limit)
    assert decision.desired == 6
    assert decision.limited
    assert decision.reason == "in-flight 76.0 over 4 ready pods at 10 per pod -> 6; limited to 6 by free H100 GPUs"
    roomy = decide(policy(), AutoscalerState(), busy, 0, CapacityLimit(9, "free H100 GPUs"))
    assert (roomy.desired, roomy.limited) == (8, False)


def test_min_and_max_bound_the_count() -> None:
    assert decide(policy(max_replicas=5), AutoscalerState(), Observation(pods(4, waiting=20)), 0).desired == 5
    assert decide(policy(min_replicas=3), AutoscalerState(), Observation(pods(1, running=0)), 0).desired == 3


def test_an_undone_scale_down_doubles_the_delay() -> None:
    chosen = policy(scale_down_delay_seconds=60)
    busy, quiet = pods(4), pods(4, running=5)
    steps = [(0.0, busy, 0), (75.0, quiet, 0)]  # the delay passes: down to 2
    steps += [(90.0, pods(2, running=10, waiting=9), 0)]  # the load is back: up, undoing it
    steps += [(105.0, pods(4), 0), (180.0, quiet, 0), (250.0, quiet, 0)]
    decisions = run(chosen, steps)
    assert [d.desired for d in decisions[:3]] == [4, 2, 4]
    assert decisions[4].desired == 4  # 75 s after the last demand of 4: held by the doubled delay
    assert "scale-down delay 120s" in decisions[4].reason
    assert decisions[5].desired == 2


def test_a_policy_comes_only_from_a_validated_spec() -> None:
    with pytest.raises(ValidationError, match="minReplicas"):
        policy(min_replicas=5, max_replicas=2)
    with pytest.raises(ValidationError, match="target_utilization"):
        policy(target_utilization=0)
    with pytest.raises(ValidationError, match="panicWindowSeconds"):
        policy(panic_window_seconds=90)


def test_the_spec_sets_the_target_unless_it_leaves_it_to_the_plan() -> None:
    assert policy().target_in_flight_per_replica == TARGET
    assert policy(target_in_flight_per_replica=3).target_in_flight_per_replica == 3


loads = st.one_of(
    st.none(),
    st.builds(Load, waiting=st.floats(0, 200, allow_nan=False), running=st.floats(0, 50, allow_nan=False)),
)
scrapes = st.tuples(st.lists(loads, max_size=12).map(tuple), st.integers(0, 6))


@given(
    bounds=st.tuples(st.integers(1, 6), st.integers(0, 10)).map(lambda b: (b[0], b[0] + b[1])),
    history=st.lists(scrapes, min_size=1, max_size=12),
    limit=st.one_of(st.none(), st.integers(0, 20)),
)
def test_properties_of_every_decision(
    bounds: tuple[int, int], history: list[tuple[tuple[Load | None, ...], int]], limit: int | None
) -> None:
    chosen = policy(min_replicas=bounds[0], max_replicas=bounds[1], target_utilization=0.8, scale_down_tolerance=0.05)
    capacity = None if limit is None else CapacityLimit(limit, "free GPUs")
    state = AutoscalerState()
    for index, (ready, starting) in enumerate(history):
        observation = Observation(ready, starting)
        current = observation.replicas
        decision = decide(chosen, state, observation, 15.0 * index, capacity)
        again = decide(chosen, state, observation, 15.0 * index, capacity)
        assert decision == again  # pure: the same inputs, the same answer
        if capacity is not None:
            assert decision.desired <= max(capacity.replicas, 0)
        if decision.limited:
            assert capacity is not None
            assert decision.desired == capacity.replicas
        else:
            assert chosen.spec.min_replicas <= decision.desired <= chosen.spec.max_replicas
            most = max(math.ceil(current * 2), current + 4)
            assert decision.desired <= max(most, chosen.spec.min_replicas)
            assert decision.desired >= min(current // 2, chosen.spec.max_replicas)
        if None in ready and not decision.limited:
            assert decision.desired >= min(current, chosen.spec.max_replicas)  # a failed scrape never scales down
            assert decision.held or decision.desired >= current or current > chosen.spec.max_replicas
        state = decision.state


# Step seconds at batches 1 to 10: a fixed weight read and a small per-sequence cost, as the roofline gives.
STEPS = tuple(0.004 + 0.0006 * batch for batch in range(1, TARGET + 1))


def test_running_requests_count_at_full_batch_speed_when_the_step_times_are_known() -> None:
    curved = AutoscalingPolicy.from_spec(AutoscalingSpec(**PLAIN), TARGET, STEPS)
    assert curved.at_full_batch(TARGET) == TARGET
    assert curved.at_full_batch(2) == pytest.approx(2 * STEPS[-1] / STEPS[1])
    assert policy().at_full_batch(2) == 2  # no step times: requests as they are


@given(st.floats(0, 40))
def test_full_batch_load_is_never_below_the_requests_running(running: float) -> None:
    curved = AutoscalingPolicy.from_spec(AutoscalingSpec(**PLAIN), TARGET, STEPS)
    assert curved.at_full_batch(running) >= running


def test_lightly_loaded_pods_are_not_scaled_below_what_full_batches_would_need() -> None:
    light = [(float(t), pods(3, running=2), 0) for t in range(0, 1800, 15)]
    plain = run(policy(), light)[-1].desired
    curved = run(AutoscalingPolicy.from_spec(AutoscalingSpec(**PLAIN), TARGET, STEPS), light)[-1].desired
    assert plain == 1  # 6 in flight at 10 a pod
    # Two running per pod at 5.2 ms a step hold, at full batches of 10 ms a step, 2 x 10 / 5.2 = 3.8: 11.5 in all.
    assert curved == math.ceil(3 * 2 * STEPS[-1] / STEPS[1] / TARGET) == 2
