"""Status writes: what kstatus reads goes out at once; detail waits and folds into fewer writes."""

from __future__ import annotations

from typing import Any

from gemma_operator.reconcile.status import DETAIL_DELAY, DETAIL_INTERVAL, StatusMemory, hold_seconds, previous_status


def status(ready: str = "False", message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": [
            {"type": "Ready", "status": ready, "message": message},
            {"type": "Reconciling", "status": "True" if ready == "False" else "False"},
            {"type": "Stalled", "status": "False"},
        ],
    }


def test_the_first_write_of_a_process_is_never_held() -> None:
    assert hold_seconds(StatusMemory(), status(message="a"), status(message="b"), now=0.0) == 0.0


def test_a_change_kstatus_reads_is_written_at_once() -> None:
    memory = StatusMemory(written_at=100.0)
    assert hold_seconds(memory, status("False"), status("True"), now=101.0) == 0.0
    assert hold_seconds(memory, status(generation=1), status(generation=2), now=101.0) == 0.0


def test_detail_waits_at_least_the_delay_and_until_the_interval_since_the_last_write() -> None:
    memory = StatusMemory(written_at=100.0)
    assert (
        hold_seconds(memory, status(message="1/2"), status(message="2/2"), now=101.0) == 100.0 + DETAIL_INTERVAL - 101.0
    )
    # A later detail change does not push the held write back.
    assert (
        hold_seconds(memory, status(message="1/2"), status(message="3/3"), now=110.0) == 100.0 + DETAIL_INTERVAL - 110.0
    )
    assert hold_seconds(memory, status(message="1/2"), status(message="3/3"), now=200.0) == 0.0
    late = StatusMemory(written_at=0.0)
    assert hold_seconds(late, status(message="a"), status(message="b"), now=1000.0) == DETAIL_DELAY


def test_the_previous_status_is_what_this_process_wrote_else_the_objects_without_empty_defaults() -> None:
    body = {"status": {"observedGeneration": 1, "lastScaleTime": ""}}
    assert previous_status(StatusMemory(), body) == {"observedGeneration": 1}
    written = {"observedGeneration": 2}
    assert previous_status(StatusMemory(written=written), body) is written
