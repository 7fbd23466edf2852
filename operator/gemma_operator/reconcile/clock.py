"""Time, injected: everything that decides by time (status holds, backoff, rechecks, autoscaler windows) asks a Clock,
so that tests can set it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for intervals and due times."""
        ...

    def now(self) -> datetime:
        """Wall-clock time in UTC: for timestamps written to status."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """RFC 3339 to the second, as metav1.Time serialises."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
