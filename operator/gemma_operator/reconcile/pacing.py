"""Pacing the rollouts the operator starts on its own: after an upgrade (new pinned images, new default arguments)
every GemmaDeployment's template changes at once, and each rollout holds a surge pod's GPUs. Such rollouts take a
slot of their pool (the accelerator class, or the CPU or edge target) and wait for one while the pool's slots are
all held; a slot is held until the rollout is Ready, or until a timeout, after which it goes to the next in line.

turn() is the decision, pure: from who waits and who holds a slot, at a time, whether one object may roll now.
Pacer keeps the tables it decides from, for the whole operator."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from gemma_operator.reconcile.clock import Clock

Key = tuple[str, str]


@dataclass(frozen=True)
class Budget:
    """At most `per_pool` paced rollouts at a time in each pool; a slot held longer than `timeout_seconds` is freed."""

    per_pool: int = 1
    timeout_seconds: float = 600.0
    # No slot is given this long after the operator starts, so that the reconciles of its first listing are all in
    # line, and the first slots go by name rather than to whichever reconcile came first.
    settle_seconds: float = 5.0


@dataclass(frozen=True)
class Slot:
    pool: str
    since: float


@dataclass(frozen=True)
class Waiter:
    pool: str
    # When its reconcile last asked: a waiter that stops asking (it went away unnoticed) stops holding up the line.
    seen: float


@dataclass(frozen=True)
class Turn:
    """One object's place in its pool: it rolls now, or waits at `position` (from 1) of `queued`."""

    rolls: bool
    position: int
    queued: int
    rolling: int
    # Seconds until a slot of the pool times out at the latest, when the object waits: it asks again then.
    due: float | None = None


def held(slots: Mapping[Key, Slot], now: float, budget: Budget) -> dict[Key, Slot]:
    """The slots not timed out."""
    return {key: slot for key, slot in slots.items() if now - slot.since < budget.timeout_seconds}


def turn(
    key: Key,
    pool: str,
    waiting: Mapping[Key, Waiter],
    slots: Mapping[Key, Slot],
    now: float,
    budget: Budget,
    opens: float = 0.0,
) -> Turn:
    """Whether `key`, with a paced rollout due in `pool`, may roll now: it holds a slot already, or a slot is free
    for it in the order of (namespace, name) among those waiting in its pool, and the line has opened (at `opens`)."""
    pool_slots = {other: slot for other, slot in held(slots, now, budget).items() if slot.pool == pool}
    if key in pool_slots:
        return Turn(rolls=True, position=0, queued=0, rolling=len(pool_slots))
    line = {
        other: waiter
        for other, waiter in waiting.items()
        if waiter.pool == pool and other not in pool_slots and now - waiter.seen < budget.timeout_seconds
    }
    queue = sorted({key, *line})
    position = queue.index(key) + 1
    free = budget.per_pool - len(pool_slots)
    if now < opens:
        return Turn(rolls=False, position=position, queued=len(queue), rolling=len(pool_slots), due=opens - now)
    if position <= free:
        return Turn(rolls=True, position=position, queued=len(queue), rolling=len(pool_slots))
    # The line moves when a slot is freed (its holder's reconcile wakes the line) or times out, or when one ahead
    # stops asking: ask again at the first of those that is due by time.
    ahead = [line[other].seen for other in queue[: position - 1]]
    due = min([slot.since for slot in pool_slots.values()] + ahead) + budget.timeout_seconds - now
    return Turn(rolls=False, position=position, queued=len(queue), rolling=len(pool_slots), due=due)


@dataclass(frozen=True)
class Progress:
    """What a reconcile learns of its object's paced rollout."""

    # Objects waiting in a pool whose slot was freed: to reconcile now.
    wake: tuple[Key, ...] = ()
    # The object's rollout outlived its slot, and is not Ready yet; `first` for the reconcile that learns it.
    timed_out: bool = False
    first: bool = False
    # Seconds until the object's slot times out, while it holds one.
    due: float | None = None


class Pacer:
    """The operator's rollout slots and waiters. Reconciles of different objects run at once in worker threads (one
    per object at a time, loops.py), and the slots are shared by all: every method holds one lock for the whole of
    its read and change of the tables, so no two reconciles can both take the last slot, and none sees a table half
    changed. Nothing under the lock does I/O or calls out."""

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self.budget = budget
        self._clock = clock
        self._opens = clock.monotonic() + budget.settle_seconds
        self._lock = threading.Lock()
        self._waiting: dict[Key, Waiter] = {}
        self._slots: dict[Key, Slot] = {}
        # Rollouts whose slot timed out, until they are Ready; those already reported.
        self._timed_out: set[Key] = set()
        self._reported: set[Key] = set()

    def request(self, key: Key, pool: str) -> tuple[Turn, tuple[Key, ...]]:
        """A paced rollout of `key` is due: its turn (taking a slot when it rolls), and whom a timed-out slot frees."""
        with self._lock:
            now = self._clock.monotonic()
            wake = self._expire(now)
            decided = turn(key, pool, self._waiting, self._slots, now, self.budget, self._opens)
            if decided.rolls:
                self._waiting.pop(key, None)
                self._slots.setdefault(key, Slot(pool, now))
            else:
                self._waiting[key] = Waiter(pool, now)
            return decided, tuple(other for other in wake if other != key)

    def withdraw(self, key: Key) -> None:
        """No paced rollout of `key` is due any more (its spec changed, or nothing differs): out of the line."""
        with self._lock:
            self._waiting.pop(key, None)

    def progress(self, key: Key, ready: bool) -> Progress:
        """After a reconcile of `key`: its slot freed when its rollout is Ready, or timed out."""
        with self._lock:
            now = self._clock.monotonic()
            wake = self._expire(now)
            slot = self._slots.get(key)
            if slot is not None and ready:
                del self._slots[key]
                wake += self._waiting_in(slot.pool)
            if key in self._timed_out and ready:
                self._timed_out.discard(key)
                self._reported.discard(key)
            timed_out = key in self._timed_out
            first = timed_out and key not in self._reported
            if first:
                self._reported.add(key)
            due = slot.since + self.budget.timeout_seconds - now if slot is not None and not ready else None
            return Progress(wake=tuple(dict.fromkeys(wake)), timed_out=timed_out, first=first, due=due)

    def forget(self, key: Key) -> tuple[Key, ...]:
        """The object is gone: out of every table; the waiters its slot frees."""
        with self._lock:
            self._waiting.pop(key, None)
            self._timed_out.discard(key)
            self._reported.discard(key)
            slot = self._slots.pop(key, None)
            return self._waiting_in(slot.pool) if slot is not None else ()

    def _expire(self, now: float) -> tuple[Key, ...]:
        """Free the slots past the timeout; the waiters of their pools."""
        alive = held(self._slots, now, self.budget)
        expired = [key for key in self._slots if key not in alive]
        pools = {self._slots.pop(key).pool for key in expired}
        self._timed_out.update(expired)
        return tuple(other for pool in sorted(pools) for other in self._waiting_in(pool))

    def _waiting_in(self, pool: str) -> tuple[Key, ...]:
        return tuple(sorted(key for key, waiter in self._waiting.items() if waiter.pool == pool))
