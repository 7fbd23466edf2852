"""The budget of rollouts the operator starts on its own: the pure turn() and the Pacer's tables, on a set clock."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.reconcile.pacing import Budget, Pacer, Slot, Waiter, turn

from .clocks import SetClock

ONE = Budget(per_pool=1, timeout_seconds=600.0)


def key(name: str, namespace: str = "ml") -> tuple[str, str]:
    return (namespace, name)


def test_the_line_is_in_the_order_of_namespace_and_name_whoever_asks_first() -> None:
    waiting = {key("c"): Waiter("cpu", 0.0), key("b"): Waiter("cpu", 0.0), key("a", "zz"): Waiter("cpu", 0.0)}
    assert turn(key("c"), "cpu", waiting, {}, 1.0, ONE).rolls is False
    assert turn(key("b"), "cpu", waiting, {}, 1.0, ONE).rolls is True
    late = turn(key("a", "zz"), "cpu", waiting, {}, 1.0, ONE)
    assert (late.rolls, late.position, late.queued) == (False, 3, 3)


def test_one_rollout_per_pool_and_the_pools_apart() -> None:
    slots = {key("a"): Slot("h100", 0.0)}
    blocked = turn(key("b"), "h100", {}, slots, 10.0, ONE)
    assert (blocked.rolls, blocked.position, blocked.rolling) == (False, 1, 1)
    # The slot times out 600 s after it was taken: the waiter asks again then.
    assert blocked.due == 590.0
    assert turn(key("c"), "cpu", {}, slots, 10.0, ONE).rolls is True
    assert turn(key("b"), "h100", {}, slots, 10.0, Budget(per_pool=2)).rolls is True


def test_a_holder_keeps_its_turn_and_a_timed_out_slot_is_free() -> None:
    slots = {key("a"): Slot("cpu", 0.0)}
    assert turn(key("a"), "cpu", {}, slots, 599.0, ONE).rolls is True
    assert turn(key("b"), "cpu", {}, slots, 599.0, ONE).rolls is False
    assert turn(key("b"), "cpu", {}, slots, 600.0, ONE).rolls is True


def test_a_waiter_that_stopped_asking_holds_up_no_one() -> None:
    waiting = {key("a"): Waiter("cpu", 0.0)}
    assert turn(key("b"), "cpu", waiting, {}, 10.0, ONE).rolls is False
    assert turn(key("b"), "cpu", waiting, {}, 600.0, ONE).rolls is True


names = st.lists(st.text(alphabet="abcdef", min_size=1, max_size=3), min_size=1, max_size=12, unique=True)


@given(names=names, per_pool=st.integers(min_value=1, max_value=4), holders=st.integers(min_value=0, max_value=4))
def test_never_more_rollouts_than_the_budget_and_the_first_in_line_go(
    names: list[str], per_pool: int, holders: int
) -> None:
    budget = Budget(per_pool=per_pool)
    slots = {key(f"held-{n}"): Slot("cpu", 0.0) for n in range(holders)}
    waiting = {key(name): Waiter("cpu", 1.0) for name in names}
    rolling = [name for name in names if turn(key(name), "cpu", waiting, slots, 2.0, budget).rolls]
    assert len(rolling) == max(0, min(per_pool - holders, len(names)))
    assert sorted(rolling) == sorted(names)[: len(rolling)]


def started(budget: Budget = ONE) -> tuple[SetClock, Pacer]:
    """A pacer past its settling time."""
    clock = SetClock()
    pacer = Pacer(budget, clock)
    clock.seconds += budget.settle_seconds
    return clock, pacer


def test_no_slot_is_given_while_the_first_listing_comes_in_and_then_by_name() -> None:
    clock = SetClock()
    pacer = Pacer(ONE, clock)
    late, _ = pacer.request(key("z"), "cpu")
    assert (late.rolls, late.due) == (False, ONE.settle_seconds)
    pacer.request(key("a"), "cpu")
    clock.seconds += ONE.settle_seconds
    assert pacer.request(key("z"), "cpu")[0].rolls is False
    assert pacer.request(key("a"), "cpu")[0].rolls is True


def test_the_pacer_lets_the_next_roll_when_the_first_is_ready() -> None:
    _, pacer = started()
    first, wake = pacer.request(key("a"), "cpu")
    assert first.rolls
    assert wake == ()
    second, _ = pacer.request(key("b"), "cpu")
    third, _ = pacer.request(key("c"), "cpu")
    assert (second.rolls, second.position, third.position) == (False, 1, 2)
    assert pacer.progress(key("a"), ready=False).due == 600.0
    # Ready: the slot is free and both waiters are woken; the first in line takes it.
    assert pacer.progress(key("a"), ready=True).wake == (key("b"), key("c"))
    assert pacer.request(key("c"), "cpu")[0].rolls is False
    assert pacer.request(key("b"), "cpu")[0].rolls is True


def test_a_rollout_that_is_not_ready_in_time_frees_its_slot_and_is_reported_once() -> None:
    clock, pacer = started()
    pacer.request(key("a"), "cpu")
    assert pacer.request(key("b"), "cpu")[0].rolls is False
    clock.seconds += 600.0
    # The waiter's own recheck finds the slot timed out and takes it.
    assert pacer.request(key("b"), "cpu")[0].rolls is True
    late = pacer.progress(key("a"), ready=False)
    assert (late.timed_out, late.first, late.due) == (True, True, None)
    again = pacer.progress(key("a"), ready=False)
    assert (again.timed_out, again.first) == (True, False)
    assert pacer.progress(key("a"), ready=True).timed_out is False


def test_the_holder_s_own_recheck_at_the_timeout_wakes_the_line() -> None:
    clock, pacer = started()
    pacer.request(key("a"), "cpu")
    pacer.request(key("b"), "cpu")
    clock.seconds += 600.0
    progress = pacer.progress(key("a"), ready=False)
    assert progress.timed_out
    assert progress.wake == (key("b"),)


def test_gone_and_withdrawn_objects_leave_the_line() -> None:
    _, pacer = started()
    pacer.request(key("a"), "cpu")
    pacer.request(key("b"), "cpu")
    pacer.request(key("c"), "cpu")
    pacer.withdraw(key("b"))  # its spec changed: it rolls at once, outside the line
    assert pacer.forget(key("a")) == (key("c"),)
    assert pacer.request(key("c"), "cpu")[0].rolls is True


def test_threads_asking_at_once_never_take_more_slots_than_the_budget() -> None:
    _, pacer = started(Budget(per_pool=2))
    rolled: list[str] = []
    start = threading.Barrier(16)

    def ask(name: str) -> None:
        start.wait()
        if pacer.request(key(name), "cpu")[0].rolls:
            rolled.append(name)

    threads = [threading.Thread(target=ask, args=(f"gd-{n:02}",)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rolled) == 2
