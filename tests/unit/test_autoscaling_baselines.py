"""The KEDA and Knative KPA baselines and the oracle, on hand-made signals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.autoscaling.keda import COOLDOWN_PERIOD_SECONDS, POLLING_INTERVAL_SECONDS, KedaActivation, keda_poll
from gemma_operator.autoscaling.kpa import (
    PANIC_WINDOW_SECONDS,
    STABLE_WINDOW_SECONDS,
    TARGET_UTILIZATION,
    KpaState,
    kpa_decide,
    kpa_record,
)
from gemma_operator.autoscaling.oracle import _plan, oracle_plan
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.autoscaling.traces import Request, Workload

TARGET = 10.0


def recorded(values: list[float], start: int = 0) -> KpaState:
    state = KpaState()
    for offset, value in enumerate(values):
        state = kpa_record(state, start + offset, value)
    return state


def test_kpa_sizes_on_the_stable_window_mean_at_70_percent_of_the_target() -> None:
    state = recorded([21.0] * STABLE_WINDOW_SECONDS)
    desired, _ = kpa_decide(state, STABLE_WINDOW_SECONDS - 1, 3, TARGET)
    assert desired == 3  # ceil(21 / 7)
    assert TARGET * TARGET_UTILIZATION == 7


def test_kpa_panics_on_a_burst_and_does_not_scale_down_for_a_stable_window_after() -> None:
    state = recorded([7.0] * 54 + [70.0] * PANIC_WINDOW_SECONDS)
    desired, state = kpa_decide(state, 59, 1, TARGET)
    assert desired == 10
    assert state.panic_since == 59
    quiet = state
    for second in range(60, 60 + STABLE_WINDOW_SECONDS + 2):
        quiet = kpa_record(quiet, second, 7.0)
    held, after = kpa_decide(quiet, 60 + STABLE_WINDOW_SECONDS - 2, 10, TARGET)
    assert held == 10  # still in panic: never falls
    down, after = kpa_decide(quiet, 60 + STABLE_WINDOW_SECONDS + 1, 10, TARGET)
    assert after.panic_since is None
    assert down == 5


@given(st.lists(st.floats(0, 500), min_size=1, max_size=90), st.integers(1, 20))
def test_kpa_never_more_than_halves_the_ready_pods(values: list[float], ready: int) -> None:
    desired, _ = kpa_decide(recorded(values), len(values) - 1, ready, TARGET)
    assert desired is not None
    assert desired >= ready // 2


def test_keda_polls_every_30_s_and_scales_to_zero_only_after_the_cooldown() -> None:
    active = KedaActivation(last_active=0)
    assert keda_poll(active, 15, 2, 0.0, 0) == (None, active)  # not a polling second
    assert keda_poll(active, POLLING_INTERVAL_SECONDS * 10, 2, 0.0, 0) == (None, active)  # cooling down
    late = POLLING_INTERVAL_SECONDS * 11
    assert late > COOLDOWN_PERIOD_SECONDS
    assert keda_poll(active, late, 2, 0.0, 0)[0] == 0
    assert keda_poll(active, late, 2, 0.0, 1)[0] is None  # minReplicaCount 1: the loop leaves it to the HPA
    assert keda_poll(active, late, 0, 3.0, 0) == (1, KedaActivation(late))  # activation from zero


def test_the_oracle_orders_a_startup_ahead_and_keeps_pods_through_short_lulls() -> None:
    config = SimulationConfig(startup_seconds=10, min_replicas=1, max_replicas=10)
    demands = [0.5] * 30 + [3.0] * 5 + [0.5] * 5 + [3.0] * 5 + [0.5] * 30
    plan = _plan(demands, 1.0, config)
    assert plan[19] == 1
    assert plan[20] == 3
    assert set(plan[30:45]) == {3}  # the 5 s lull is shorter than a startup: kept
    assert plan[45] == 1


def test_the_oracle_spends_at_most_its_budget() -> None:
    config = SimulationConfig(startup_seconds=10, min_replicas=1, max_replicas=10)
    workload = Workload("w", tuple(Request(k * 0.05, 1000, 200) for k in range(4000)), 200)
    generous, tight = oracle_plan(workload, config), oracle_plan(workload, config, budget=900)
    assert sum(tight) <= 900 < sum(generous)
