"""The one load signal the autoscaler sees, whatever the runtime: requests waiting and running."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Load:
    """Requests a serving pod holds: queued (waiting) and in the running batch."""

    waiting: float
    running: float

    @property
    def in_flight(self) -> float:
        return self.waiting + self.running
