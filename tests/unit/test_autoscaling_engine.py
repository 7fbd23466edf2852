"""The per-pod continuous-batching engine the simulation and the e2e serving simulator share."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.autoscaling.engine import PodEngine
from gemma_operator.autoscaling.simulation import RequestLedger, SimulationConfig
from gemma_operator.autoscaling.traces import Request

SERVING = SimulationConfig().serving


def served(requests: list[Request], until: float, tick: float) -> tuple[PodEngine, RequestLedger]:
    """One engine fed `requests` and advanced in steps of `tick` seconds, as the e2e simulator does."""
    ledger = RequestLedger.of(tuple(requests))
    engine = PodEngine(0.0, SERVING)
    now, index = 0.0, 0
    while now < until:
        start, now = now, now + tick
        arrivals = []
        while index < len(requests) and requests[index].arrival < now:
            arrivals.append((max(requests[index].arrival, start), index))
            index += 1
        engine.serve(start, now, arrivals, ledger)
    return engine, ledger


def test_a_lone_request_takes_its_prefill_then_one_step_a_token() -> None:
    engine, ledger = served([Request(0.0, 1000, 50)], until=5.0, tick=1.0)
    roofline = SERVING.roofline
    prefill = roofline.step_seconds([], 1000)
    assert ledger.first_token_at[0] == prefill
    decode = ledger.done[0] - ledger.first_token_at[0]
    # 49 decode steps at contexts 1000..1048: each between the steps at the first and the last context.
    assert 49 * roofline.step_seconds([1000], 0) <= decode <= 49 * roofline.step_seconds([1049], 0)
    assert engine.in_flight == 0
    assert engine.cached_tokens(ledger) == 0


def test_a_full_batch_queues_the_rest_and_its_cache_holds_the_running_tokens() -> None:
    count = SERVING.max_batch + 3
    engine, ledger = served([Request(0.0, 100, 10_000)] * count, until=1.0, tick=0.5)
    assert (len(engine.waiting), engine.running) == (3, SERVING.max_batch)
    assert len(ledger.first_token_at) == SERVING.max_batch
    # Each running sequence holds its 100 prompt tokens and the tokens decoded since its first one.
    assert engine.cached_tokens(ledger) > 100 * SERVING.max_batch


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 5), st.integers(1, 4000), st.integers(1, 300)), min_size=1, max_size=40).map(
        sorted
    ),
    st.sampled_from([0.1, 0.25, 1.0]),
)
def test_every_request_finishes_after_its_first_token_whatever_the_tick(
    rows: list[tuple[float, int, int]], tick: float
) -> None:
    requests = [Request(at, prompt, output) for at, prompt, output in rows]
    engine, ledger = served(requests, until=600.0, tick=tick)
    assert engine.in_flight == 0
    assert set(ledger.done) == set(range(len(requests)))
    for index, request in enumerate(requests):
        assert request.arrival <= ledger.first_token_at[index] <= ledger.done[index]
