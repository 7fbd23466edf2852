"""Leader election on a Lease: the pure decisions (reconcile.election) and the Elector on an in-memory Lease that keeps
resourceVersions as the API server does, on a set clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.reconcile.election import Action, Holding, Observation, Timing, claim, decide, observe, release
from gemma_operator.reconcile.leadership import Conflict, Elector, holding

from .clocks import SetClock

TIMING = Timing()


class Unreachable(Exception):
    pass


@dataclass
class MemoryLease:
    """One Lease, written only by a create when there is none or a replace at its current resourceVersion."""

    spec: dict[str, Any] | None = None
    version: int = 1
    writes: list[str] = field(default_factory=list)  # the holderIdentity of every write that went through
    # Set by a test: the next call fails; "after-write": the write is stored and its answer lost.
    fault: str | None = None
    # Set by a test: every call fails until it is cleared.
    down: bool = False

    def _fail(self, stage: str) -> None:
        if self.down and stage != "after-write":
            raise Unreachable(stage)
        if self.fault == stage:
            self.fault = None
            raise Unreachable(stage)

    def _stored(self) -> Holding:
        assert self.spec is not None
        return holding({"metadata": {"resourceVersion": str(self.version)}, "spec": self.spec})

    def _write(self, spec: dict[str, Any]) -> Holding:
        self._fail("write")
        self.version += 1
        self.spec = spec
        self.writes.append(spec["holderIdentity"] or "")
        self._fail("after-write")
        return self._stored()

    def read(self) -> Holding | None:
        self._fail("read")
        return self._stored() if self.spec is not None else None

    def create(self, spec: dict[str, Any]) -> Holding:
        if self.spec is not None:
            raise Conflict("already exists")
        return self._write(spec)

    def replace(self, version: str, spec: dict[str, Any]) -> Holding:
        if version != str(self.version):
            raise Conflict("the object has been modified")
        return self._write(spec)


def held_by(holder: str, version: str = "7", transitions: int = 3) -> Holding:
    return Holding(holder, 15, transitions, "2026-01-01T00:00:00.000000Z", version)


# --- the decisions ----------------------------------------------------------------------------------------------


def test_the_timing_keeps_the_leader_stopped_before_a_standby_can_take_over() -> None:
    with pytest.raises(ValueError, match="lease duration"):
        Timing(lease_seconds=10, renew_deadline_seconds=10)
    with pytest.raises(ValueError, match="retry periods"):
        Timing(renew_deadline_seconds=2.4, retry_seconds=2)


def test_no_lease_is_created_and_a_released_one_taken_at_once() -> None:
    assert decide(Observation(None, 0.0), "a", 0.0, TIMING).action is Action.CREATE
    assert decide(Observation(held_by(""), 100.0), "a", 100.0, TIMING).action is Action.TAKE


@given(st.floats(0, 14.999))
def test_a_lease_held_by_another_is_waited_out_from_when_it_was_seen_to_change(elapsed: float) -> None:
    seen = Observation(held_by("b"), 50.0)
    waiting = decide(seen, "a", 50.0 + elapsed, TIMING)
    assert waiting.action is Action.STAND_BY
    # The next read comes no later than the retry period, nor later than the expiry.
    assert 0 < waiting.retry_in <= min(TIMING.retry_seconds, 15 - elapsed) + 1e-9
    assert decide(seen, "a", 50.0 + elapsed + waiting.retry_in, TIMING).action in (Action.STAND_BY, Action.TAKE)
    assert decide(seen, "a", 65.0, TIMING).action is Action.TAKE


@given(st.floats(0, 20))
def test_the_holder_renews_until_the_deadline_then_stops(elapsed: float) -> None:
    decision = decide(Observation(held_by("a"), 50.0), "a", 50.0 + elapsed, TIMING)
    if elapsed < TIMING.renew_deadline_seconds:
        assert decision.action is Action.RENEW
        # It wakes at the deadline at the latest.
        assert 50.0 + elapsed + decision.retry_in <= 50.0 + TIMING.renew_deadline_seconds + 1e-9
    else:
        assert decision.action is Action.LOST


def test_observing_restarts_the_clock_only_on_a_change_and_never_for_our_own_hold() -> None:
    first = observe(Observation(None, 0.0), held_by("b", "7"), "a", 10.0)
    assert first.since == 10.0
    assert observe(first, held_by("b", "7"), "a", 14.0) is first
    assert observe(first, held_by("b", "8"), "a", 14.0).since == 14.0
    mine = Observation(held_by("a", "9"), 20.0)
    # A write of ours whose answer was lost renews nothing: the deadline still counts from the last one confirmed.
    assert observe(mine, held_by("a", "10"), "a", 25.0).since == 20.0


def test_a_take_counts_a_transition_and_a_renewal_keeps_the_acquire_time() -> None:
    wall = datetime(2026, 5, 1, 12, 0, 0, 123456, UTC)
    created = claim(None, "a", wall, TIMING)
    assert created == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-05-01T12:00:00.123456Z",
        "renewTime": "2026-05-01T12:00:00.123456Z",
        "leaseTransitions": 0,
    }
    taken = claim(held_by("b", transitions=3), "a", wall, TIMING)
    assert (taken["leaseTransitions"], taken["acquireTime"]) == (4, "2026-05-01T12:00:00.123456Z")
    renewed = claim(held_by("a", transitions=3), "a", wall, TIMING)
    assert (renewed["leaseTransitions"], renewed["acquireTime"]) == (3, "2026-01-01T00:00:00.000000Z")
    released = release(held_by("a", transitions=3), wall)
    assert (released["holderIdentity"], released["leaseTransitions"]) == (None, 3)


# --- the Elector on a Lease ---------------------------------------------------------------------------------------


def test_the_standby_takes_over_a_lease_nobody_renews_and_the_old_leader_has_stopped_by_then() -> None:
    clock, lease = SetClock(), MemoryLease()
    first, second = Elector(lease, "a", clock, TIMING), Elector(lease, "b", clock, TIMING)
    assert first.step().action is Action.RENEW
    assert first.leading
    assert second.step().action is Action.STAND_BY
    assert not second.leading
    lease.down = True  # for the leader alone: the standby's reads below go through
    clock.seconds += 9.9
    assert first.step().action is Action.RENEW  # the read and the write failed, the deadline not reached
    clock.seconds += 0.1
    assert first.step().action is Action.LOST
    lease.down = False
    clock.seconds += 4.9
    assert second.step().action is Action.STAND_BY  # 14.9 s since it saw the Lease change
    clock.seconds += 0.1
    assert second.step().action is Action.RENEW
    assert second.leading
    assert lease.writes == ["a", "b"]
    assert lease.spec is not None
    assert lease.spec["leaseTransitions"] == 1


def test_of_two_candidates_deciding_on_one_read_only_one_write_goes_through() -> None:
    clock, lease = SetClock(), MemoryLease()
    first, second = Elector(lease, "a", clock, TIMING), Elector(lease, "b", clock, TIMING)
    for elector in (first, second):
        elector.seen = observe(elector.seen, lease.read(), elector.identity, clock.monotonic())
    # Both saw no Lease and both create: the second create is refused, and b sees a's Lease on its next read.
    first.step()
    assert second.step().action is Action.STAND_BY
    assert (first.leading, second.leading, lease.writes) == (True, False, ["a"])


def test_a_leader_that_sees_another_holder_stops_at_its_next_renewal() -> None:
    clock, lease = SetClock(), MemoryLease()
    leader = Elector(lease, "a", clock, TIMING)
    leader.step()
    lost = threading.Event()
    assert lease.spec is not None
    lease.replace(str(lease.version), lease.spec | {"holderIdentity": "intruder"})
    leader.keep(on_lost=lost.set)
    assert lost.wait(5)


def test_release_hands_over_at_the_standbys_next_read() -> None:
    clock, lease = SetClock(), MemoryLease()
    leader, standby = Elector(lease, "a", clock, TIMING), Elector(lease, "b", clock, TIMING)
    leader.step()
    assert standby.step().action is Action.STAND_BY
    leader.release()
    assert lease.spec is not None
    assert lease.spec["holderIdentity"] is None
    assert standby.step().action is Action.RENEW
    assert standby.leading


def test_a_standby_stopped_while_it_waits_does_not_lead() -> None:
    clock, lease = SetClock(), MemoryLease()
    Elector(lease, "a", clock, TIMING).step()
    stop = threading.Event()
    stop.set()
    assert Elector(lease, "b", clock, TIMING).acquire(stop) is False
    assert lease.writes == ["a"]


def test_a_lease_naming_this_candidate_from_before_a_restart_is_held_only_once_renewed() -> None:
    clock, lease = SetClock(), MemoryLease()
    Elector(lease, "a", clock, TIMING).step()
    restarted = Elector(lease, "a", clock, TIMING)
    lease.fault = "write"
    assert restarted.step().action is Action.RENEW
    assert not restarted.leading
    assert restarted.step().action is Action.RENEW
    assert restarted.leading
    assert lease.spec is not None
    assert lease.spec["leaseTransitions"] == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 4),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([None, None, None, "read", "write", "after-write"]),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_never_two_leaders_whatever_fails_and_whoever_runs_when(rounds: list[tuple[float, str, str | None]]) -> None:
    """Three candidates stepped in any order, with failed reads, failed writes and writes whose answer is lost: at no
    moment do two of them count as leading. A leader counts as leading until its renew deadline plus one call
    (the most a hung call can carry it past the deadline, at which its loop wakes and stops it)."""
    clock, lease = SetClock(), MemoryLease()
    electors = {name: Elector(lease, name, clock, TIMING) for name in "abc"}
    for pause, name, fault in rounds:
        clock.seconds += pause
        lease.fault = fault
        electors[name].step()
        active = [
            elector.identity
            for elector in electors.values()
            if elector.leading
            and clock.seconds < elector.seen.since + TIMING.renew_deadline_seconds + TIMING.retry_seconds
        ]
        assert len(active) <= 1, (active, clock.seconds, lease.writes)
