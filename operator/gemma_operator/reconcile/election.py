"""Leader election on a coordination.k8s.io/v1 Lease, the decisions alone: what one candidate does next, from the
Lease it last read, when it saw that Lease change, and the time now. No I/O; reconcile.leadership does the calls.

It follows client-go's tools/leaderelection (v0.36.3, leaderelection.go, LeaderElector.tryAcquireOrRenew and
isLeaseValid): a Lease held by another candidate counts as expired leaseDuration after this candidate *saw* it change,
on this candidate's own monotonic clock, never by the renewTime written there (another machine's clock); a candidate
that takes the Lease from another counts one more transition; the holder renews keeping acquireTime and the count;
and whoever writes sends the resourceVersion it read, so that of two candidates deciding at once one write fails
with 409 Conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# client-go's own check (leaderelection.go, NewLeaderElector): renewDeadline must exceed retryPeriod * JitterFactor.
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class Timing:
    """controller-runtime's defaults (pkg/manager/internal.go, v0.24.1: defaultLeaseDuration, defaultRenewDeadline,
    defaultRetryPeriod, "taken from" k8s.io/component-base config/v1alpha1/defaults.go)."""

    # How long a Lease nobody renews stays held: the standby waits this long after it last saw the Lease change.
    lease_seconds: float = 15.0
    # How long the leader goes on without a successful renewal before it stops: shorter than lease_seconds, so that
    # it has stopped before any standby can count the Lease expired.
    renew_deadline_seconds: float = 10.0
    # How often a candidate reads (and the leader renews) the Lease; also the most one call to the API server may
    # take, so that a hung call cannot carry a leader more than this past its renew deadline (10 + 2 < 15).
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        # The same two checks as client-go's NewLeaderElector.
        if self.lease_seconds <= self.renew_deadline_seconds:
            raise ValueError("the lease duration must be longer than the renew deadline")
        if self.renew_deadline_seconds <= JITTER_FACTOR * self.retry_seconds:
            raise ValueError(f"the renew deadline must be longer than {JITTER_FACTOR} retry periods")


@dataclass(frozen=True)
class Holding:
    """What a Lease says: spec.holderIdentity ('' when released), leaseDurationSeconds, acquireTime, leaseTransitions,
    and the resourceVersion that a write must send back."""

    holder: str
    lease_seconds: int
    transitions: int
    acquired: str | None
    version: str


@dataclass(frozen=True)
class Observation:
    """The Lease as this candidate last read or wrote it (None: there is none), and since when (monotonic seconds):
    when it was seen to change, or, for this candidate's own write, when that write was sent."""

    lease: Holding | None
    since: float


class Action(StrEnum):
    CREATE = "create"  # there is no Lease: create it, holding it
    TAKE = "take"  # released, or expired: replace it, holding it
    RENEW = "renew"  # this candidate holds it: replace it with a fresh renewTime
    STAND_BY = "stand-by"  # another holds it and it has not expired: read it again later
    LOST = "lost"  # this candidate held it and can no longer say it does: stop at once


@dataclass(frozen=True)
class Decision:
    action: Action
    # Seconds until the next read (and renewal); 0 for LOST, which has no next time.
    retry_in: float


def observe(previous: Observation, read: Holding | None, identity: str, now: float) -> Observation:
    """The observation after a read at ``now``. A Lease that changed starts its clock again (client-go's
    setObservedRecord), except one naming this candidate: only a write it saw succeed renews its own hold."""
    if previous.lease is not None and read is not None and read.version == previous.lease.version:
        return previous
    if read is not None and read.holder == identity and previous.lease is not None:
        return Observation(read, previous.since)
    return Observation(read, now)


def decide(seen: Observation, identity: str, now: float, timing: Timing) -> Decision:
    lease = seen.lease
    if lease is None:
        return Decision(Action.CREATE, timing.retry_seconds)
    if lease.holder == identity:
        deadline = seen.since + timing.renew_deadline_seconds
        if now >= deadline:
            return Decision(Action.LOST, 0.0)
        # Renew at the retry period, and wake at the deadline if no renewal succeeded before it: a leader that cannot
        # renew stops then, not a retry period later.
        return Decision(Action.RENEW, min(timing.retry_seconds, deadline - now))
    expires = seen.since + lease.lease_seconds
    if lease.holder and now < expires:
        # Read again at the retry period, or at the expiry if it comes first: the takeover waits no longer than it
        # must.
        return Decision(Action.STAND_BY, min(timing.retry_seconds, expires - now))
    return Decision(Action.TAKE, timing.retry_seconds)


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime as it serialises: RFC 3339 with microseconds, in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(lease: Holding | None, identity: str, wall: datetime, timing: Timing) -> dict[str, Any]:
    """The Lease spec that a CREATE, TAKE or RENEW writes at wall-clock time ``wall``."""
    stamp = micro_time(wall)
    renewing = lease is not None and lease.holder == identity
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": int(timing.lease_seconds),
        "acquireTime": lease.acquired if renewing and lease is not None else stamp,
        "renewTime": stamp,
        "leaseTransitions": (lease.transitions if renewing else lease.transitions + 1) if lease is not None else 0,
    }


def release(lease: Holding, wall: datetime) -> dict[str, Any]:
    """The Lease spec that gives the Lease up, as client-go's LeaderElector.release writes it: no holder, a duration
    of one second (for candidates that read a duration even without a holder), the transitions kept."""
    stamp = micro_time(wall)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": lease.transitions,
    }
