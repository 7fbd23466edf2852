"""The HPA baseline against hand-computed cases of the controller's replica calculator and behaviour."""

from __future__ import annotations

import pytest

from gemma_operator.autoscaling.hpa import HpaState, hpa_decide, metric_replicas

TARGET = 10.0


@pytest.mark.parametrize(
    ("current", "values", "missing", "expected"),
    [
        (4, (10.5,) * 4, 0, 4),  # ratio 1.05: within the 10% tolerance
        (4, (9.1,) * 4, 0, 4),  # ratio 0.91: within it too
        (4, (11.5,) * 4, 0, 5),  # ceil(1.15 x 4)
        (4, (5.0,) * 4, 0, 2),  # ceil(0.5 x 4)
        (4, (30.0,) * 2, 2, 6),  # scale-up: the 2 missing count as 0, ceil(60 / 40 x 4)
        (4, (12.0,) * 2, 2, 4),  # 1.2 alone, 0.6 with the missing as 0: the direction flips, keep 4
        (4, (5.0,) * 2, 2, 3),  # scale-down: the missing count as the target, ceil(30 / 40 x 4)
        (3, (), 3, 3),  # no metrics at all: the sync fails and the scale stays
    ],
)
def test_metric_replicas(current: int, values: tuple[float, ...], missing: int, expected: int) -> None:
    assert metric_replicas(current, values, missing, TARGET) == expected


def decide(state: HpaState, now: float, current: int, per_pod: float, pods: int | None = None) -> tuple[int, HpaState]:
    decision = hpa_decide(state, now, current, (per_pod,) * (pods or current), 0, TARGET, 1, 20)
    return decision.desired, decision.state


def test_scale_up_is_limited_to_double_or_plus_four_per_period() -> None:
    desired, state = decide(HpaState(), 0, 3, 100)  # wants 30
    assert desired == 7  # max(3 x 2, 3 + 4)
    desired, _ = decide(state, 5, 7, 100)
    assert desired == 7  # within the same 15 s period: the period started at 3
    desired, _ = decide(state, 15, 7, 100)
    assert desired == 14  # a new period starts at 7


def test_scale_down_takes_the_highest_recommendation_of_300_seconds() -> None:
    _, state = decide(HpaState(), 0, 8, 10)  # recommends 8
    desired, state = decide(state, 100, 8, 2.5)  # recommends 2
    assert desired == 8
    desired, state = decide(state, 299, 8, 2.5)
    assert desired == 8
    desired, _ = decide(state, 301, 8, 2.5)
    assert desired == 2  # the default policy (100% per 15 s) does not slow it


def test_a_new_controller_remembers_the_current_count() -> None:
    desired, _ = decide(HpaState(), 0, 5, 1)  # recommends 1
    assert desired == 5


def test_bounds() -> None:
    assert hpa_decide(HpaState(), 0, 2, (100.0, 100.0), 0, TARGET, 1, 5).desired == 5
    _, state = decide(HpaState(), 0, 3, 0)
    assert hpa_decide(state, 400, 3, (0.0,) * 3, 0, TARGET, 2, 5).desired == 2
