"""The work queue: coalescing, one worker per key, backoff, notes, cancel. Real asyncio, real (short) time."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from gemma_operator.reconcile.clock import SystemClock
from gemma_operator.reconcile.queue import DONE, RETRY, Backoff, Result, WorkQueue

FAST = Backoff(base=0.05, cap=0.2)


class Recorder:
    """A handler that records each call, can be held on an event, and answers with a chosen result."""

    def __init__(self, result: Result = DONE) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.active: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.result = result
        self.gate: asyncio.Event | None = None

    async def __call__(self, key: str, notes: list[str]) -> Result:
        self.active[key] += 1
        self.most_at_once[key] = max(self.most_at_once[key], self.active[key])
        self.calls.append((key, notes))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0.01)
        self.active[key] -= 1
        return self.result


def queue_of(handler: Callable[[str, list[str]], Awaitable[Result]], workers: int = 4) -> WorkQueue[str, str]:
    return WorkQueue("test", handler, workers=workers, clock=SystemClock(), backoff=FAST)


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_requests_for_one_key_coalesce_and_the_earliest_wins() -> None:
    handler = Recorder()
    queue = queue_of(handler)
    queue.add("a", 0.2)
    queue.add("a", 0.05)
    queue.add("a", 0.3)
    queue.start()
    try:
        await until(lambda: len(handler.calls) == 1)
        await asyncio.sleep(0.4)
        assert [key for key, _ in handler.calls] == ["a"]
    finally:
        await queue.stop()


async def test_a_key_is_never_handled_twice_at_once_but_a_request_during_a_run_runs_it_again() -> None:
    handler = Recorder()
    handler.gate = asyncio.Event()
    queue = queue_of(handler, workers=4)
    queue.start()
    try:
        queue.add("a")
        await until(lambda: len(handler.calls) == 1)
        queue.add("a", note="while running")
        queue.add("b")
        await until(lambda: len(handler.calls) == 2)
        assert handler.calls[1][0] == "b"  # another key is not held up
        handler.gate.set()
        await until(lambda: len(handler.calls) == 3)
        assert handler.calls[2] == ("a", ["while running"])
        assert handler.most_at_once["a"] == 1
    finally:
        await queue.stop()


async def test_notes_arriving_before_a_run_are_all_handed_to_it() -> None:
    handler = Recorder()
    queue = queue_of(handler)
    queue.add("a", 0.05, note="one")
    queue.add("a", 0.05, note="two")
    queue.start()
    try:
        await until(lambda: len(handler.calls) == 1)
        assert handler.calls == [("a", ["one", "two"])]
    finally:
        await queue.stop()


async def test_failures_back_off_exponentially_and_success_resets_the_backoff() -> None:
    handler = Recorder(RETRY)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def timed(key: str, notes: list[str]) -> Result:
        times.append(loop.time())
        return await handler(key, notes)

    queue = queue_of(timed)
    queue.add("a")
    queue.start()
    try:
        await until(lambda: len(times) == 4)
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # 0.05, 0.1, 0.2 (each plus the handler's 0.01 s and scheduling)
        assert gaps[0] == pytest.approx(0.06, abs=0.04)
        assert gaps[1] == pytest.approx(0.11, abs=0.04)
        assert gaps[2] == pytest.approx(0.21, abs=0.05)
    finally:
        await queue.stop()


async def test_an_exception_is_a_failure_and_the_key_comes_back() -> None:
    calls = []

    async def failing(key: str, notes: list[str]) -> Result:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return DONE

    queue = queue_of(failing)
    queue.add("a")
    queue.start()
    try:
        await until(lambda: len(calls) == 2)
    finally:
        await queue.stop()


async def test_after_asks_for_another_run_without_backoff() -> None:
    handler = Recorder(Result(after=0.02))
    queue = queue_of(handler)
    queue.add("a")
    queue.start()
    try:
        await until(lambda: len(handler.calls) >= 5, timeout=2.0)
    finally:
        await queue.stop()


async def test_forget_cancels_what_is_pending_and_ignores_a_running_result() -> None:
    handler = Recorder(Result(after=0.01))
    handler.gate = asyncio.Event()
    queue = queue_of(handler)
    queue.add("a")
    queue.add("b", 0.05, note="dropped")
    queue.start()
    try:
        await until(lambda: len(handler.calls) == 1)
        queue.forget("a")  # running: its `after` must not bring it back
        queue.forget("b")
        assert not queue.pending("b")
        handler.gate.set()
        await asyncio.sleep(0.2)
        assert handler.calls == [("a", [])]
        queue.add("b")
        await until(lambda: len(handler.calls) == 2)
        assert handler.calls[1] == ("b", [])  # the forgotten note stays forgotten
    finally:
        await queue.stop()


async def test_workers_are_bounded() -> None:
    handler = Recorder()
    handler.gate = asyncio.Event()
    queue = queue_of(handler, workers=2)
    for key in "abcde":
        queue.add(key)
    queue.start()
    try:
        await until(lambda: len(handler.calls) == 2)
        await asyncio.sleep(0.05)
        assert len(handler.calls) == 2
        handler.gate.set()
        await until(lambda: len(handler.calls) == 5)
    finally:
        await queue.stop()


def test_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    backoff = Backoff(base=15.0, cap=600.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 6, 7, 100)] == [15.0, 30.0, 60.0, 480.0, 600.0, 600.0]
