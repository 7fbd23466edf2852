"""A clock the test sets by hand, for the pure decisions and tables that take an injected Clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SetClock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)
