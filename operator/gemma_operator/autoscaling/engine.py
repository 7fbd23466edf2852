"""One replica's continuous batching, step by step: the engine the autoscaling simulation and the e2e serving
simulator both run (e2e/servingsim/traffic.py), so that a simulated pod serves as a simulated replica does.

At most `max_batch` sequences at once, the rest wait in arrival order. A step's time is the roofline's for the
sequences decoding and the prefill it advances (the prefill budget less the decoding sequences, as vLLM's
chunked prefill does); each admitted request prefills its prompt (its first token comes with the end of its
prefill), then decodes one token a step. The engine moves from event to event (an arrival with room in the
batch, a prefill done, a sequence done), so a request's TTFT, TPOT and end-to-end latency are those of the steps
it took part in. Requests are keys into a Ledger, which holds their token counts and records their times.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Protocol

from gemma_operator.autoscaling.serving import Roofline, Serving

EPSILON = 1e-9


class Ledger(Protocol):
    """The requests an engine serves, by key: their token counts, and where their first and last tokens go."""

    def prompt_tokens(self, request: int) -> int: ...

    def output_tokens(self, request: int) -> int: ...

    def first_token(self, request: int, at: float) -> None: ...

    def finished(self, request: int, at: float) -> None: ...


class PodEngine:
    """One pod's batch. Mutable: its owner (a simulation run, a simulated pod) advances it through time."""

    def __init__(self, ready_at: float, serving: Serving) -> None:
        self.ready_at = ready_at
        self.max_batch = serving.max_batch
        self.budget = serving.prefill_budget
        self.roofline: Roofline = serving.roofline
        self.now = float(ready_at)
        self.waiting: deque[int] = deque()
        self.prefilling: deque[int] = deque()
        self.prompt_left: dict[int, float] = {}
        self.decoding: list[tuple[float, int]] = []  # heap of (step count at which it is done, request)
        self.started: dict[int, tuple[float, int]] = {}  # request -> (step count at its first token, prompt)
        self.steps = 0.0

    @property
    def running(self) -> int:
        return len(self.prefilling) + len(self.decoding)

    @property
    def in_flight(self) -> int:
        return len(self.waiting) + self.running

    def cached_tokens(self, ledger: Ledger) -> float:
        """Tokens the running sequences hold in the KV cache: prompts prefilled so far, and tokens decoded."""
        prefilled = sum(ledger.prompt_tokens(r) - self.prompt_left[r] for r in self.prefilling)
        return prefilled + sum(prompt + self.steps - first for first, prompt in self.started.values())

    def unfinished(self) -> list[int]:
        return [*self.prefilling, *(r for _, r in self.decoding), *self.waiting]

    def serve(self, start: float, until: float, arrivals: list[tuple[float, int]], ledger: Ledger) -> None:
        """Run the batch from `start` (or where it stopped, if later) to `until`, taking `arrivals` (time,
        request, in time order) into the queue as they come."""
        self.now = max(self.now, start)
        coming = 0
        while True:
            while coming < len(arrivals) and arrivals[coming][0] <= self.now + EPSILON:
                self.waiting.append(arrivals[coming][1])
                coming += 1
            while self.waiting and self.running < self.max_batch:
                request = self.waiting.popleft()
                self.prefilling.append(request)
                self.prompt_left[request] = ledger.prompt_tokens(request)
            next_arrival = arrivals[coming][0] if coming < len(arrivals) else math.inf
            if not self.running:
                self.now = min(until, next_arrival)
                if self.now >= until - EPSILON:
                    break
                continue
            contexts = [prompt + self.steps - first for first, prompt in self.started.values()]
            pending = sum(self.prompt_left.values())
            prefill = min(max(self.budget - len(self.decoding), 0), pending)
            step = self.roofline.step_seconds(contexts, prefill)
            events = [(until - self.now) / step]
            if self.decoding:
                events.append(self.decoding[0][0] - self.steps)
            if prefill:
                events.append(self.prompt_left[self.prefilling[0]] / prefill)
            if self.running < self.max_batch:
                events.append((next_arrival - self.now) / step)
            count = max(min(events), 0.0)
            self.now += count * step
            if self.decoding:
                self.steps += count
            self._prefilled(count * prefill, ledger)
            self._finished(ledger)
            if self.now >= until - EPSILON:
                break
        # Arrivals the batch had no room for by `until` wait for it.
        self.waiting.extend(request for _, request in arrivals[coming:])

    def _prefilled(self, tokens: float, ledger: Ledger) -> None:
        while self.prefilling and tokens > 0:
            request = self.prefilling[0]
            done = min(self.prompt_left[request], tokens)
            self.prompt_left[request] -= done
            tokens -= done
            if self.prompt_left[request] > EPSILON:
                break
            self.prefilling.popleft()
            del self.prompt_left[request]
            ledger.first_token(request, self.now)
            prompt = ledger.prompt_tokens(request)
            self.started[request] = (self.steps, prompt)
            heapq.heappush(self.decoding, (self.steps + ledger.output_tokens(request) - 1, request))

    def _finished(self, ledger: Ledger) -> None:
        while self.decoding and self.decoding[0][0] <= self.steps + EPSILON:
            _, request = heapq.heappop(self.decoding)
            del self.started[request]
            ledger.finished(request, self.now)
