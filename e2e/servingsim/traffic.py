"""Trace-driven load: requests fed over wall-clock time to the simulated pods of one GemmaDeployment.

`PUT /traffic/{namespace}/{instance}` gives the requests (rows `{"at", "contextTokens", "generatedTokens"}`, or a
constant `{"rate": {"rps", "seconds"}}`) and the model the pods serve. Every TICK_SECONDS the requests that have
arrived are routed to the ready pods of the instance (app.kubernetes.io/instance), each to the one with the
fewest in flight, and every pod runs its batch up to now. Routing and batching are the autoscaling simulation's
own (simulation.route, engine.PodEngine on the plan's serving.Serving), so an e2e pod serves as a simulated
replica does; the pods' load (waiting, running, KV-cache usage) is what their /metrics then report.

`timeScale` k runs the trace k times faster: the trace's second t comes at t / k of wall time, and every step
takes 1/k of its roofline time, so a request's latencies on the pod's histograms are its simulated ones over k.
Pod startup is the plane's (kwok marks pods ready at once), not the serving model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemma_operator.api import Precision
from gemma_operator.autoscaling.engine import PodEngine
from gemma_operator.autoscaling.serving import NotServable, Serving, serving_for
from gemma_operator.autoscaling.simulation import RequestLedger, route
from gemma_operator.autoscaling.traces import Request, Trace, requests_at

from .metrics import Finished
from .podserver import PodServer
from .state import LoadFieldError

log = logging.getLogger("servingsim.traffic")

TICK_SECONDS = 0.1
MAX_REQUESTS = 200_000


@dataclass(frozen=True)
class TrafficPlan:
    """A validated PUT /traffic body."""

    requests: tuple[Request, ...]
    serving: Serving
    time_scale: float


def _positive(document: dict[str, Any], name: str, kind: type[int] | type[float], default: Any = None) -> Any:
    value = document.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise LoadFieldError(name, f"must be a {kind.__name__}, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise LoadFieldError(name, f"must be > 0, got {value}")
    return kind(value)


def _request(row: object, index: int) -> Request:
    if not isinstance(row, dict):
        raise LoadFieldError(f"requests[{index}]", "must be an object {at, contextTokens, generatedTokens}")
    at = row.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or at < 0:
        raise LoadFieldError(f"requests[{index}].at", f"must be seconds >= 0, got {at!r}")
    prompt = _positive(row, "contextTokens", int)
    return Request(float(at), prompt, _positive(row, "generatedTokens", int))


def parse_traffic(document: object) -> TrafficPlan:
    """Validate the JSON body of PUT /traffic; raise LoadFieldError naming the field."""
    if not isinstance(document, dict):
        raise LoadFieldError("(body)", "must be a JSON object")
    unknown = set(document) - {"requests", "rate", "model", "timeScale"}
    if unknown:
        raise LoadFieldError(sorted(unknown)[0], "unknown field; known: model, rate, requests, timeScale")
    model = document.get("model")
    if not isinstance(model, dict):
        raise LoadFieldError("model", "must be {variant, precision, accelerator, maxContextTokens, ...}")
    try:
        serving = serving_for(
            str(model.get("variant")),
            Precision(model.get("precision", Precision.BF16.value)),
            str(model.get("accelerator")),
            _positive(model, "maxContextTokens", int),
            _positive(model, "maxConcurrentSequences", int) if "maxConcurrentSequences" in model else None,
        )
    except (NotServable, ValueError) as exc:
        raise LoadFieldError("model", str(exc)) from None
    if ("requests" in document) == ("rate" in document):
        raise LoadFieldError("requests", "give either requests or rate")
    if "rate" in document:
        rate = document["rate"]
        if not isinstance(rate, dict):
            raise LoadFieldError("rate", "must be {rps, seconds}")
        shape = Trace("traffic", (_positive(rate, "rps", float),) * _positive(rate, "seconds", int))
        requests = requests_at(shape, max_tokens=serving.max_tokens).requests
    else:
        rows = document["requests"]
        if not isinstance(rows, list) or len(rows) > MAX_REQUESTS:
            raise LoadFieldError("requests", f"must be a list of at most {MAX_REQUESTS} rows")
        requests = tuple(sorted((_request(row, i) for i, row in enumerate(rows)), key=lambda r: r.arrival))
    return TrafficPlan(requests, serving, _positive(document, "timeScale", float, 1.0))


class _PodLedger(RequestLedger):
    """The simulation's ledger, which also puts each finished request on its pod's metrics."""

    def __init__(self, requests: tuple[Request, ...], time_scale: float) -> None:
        base = RequestLedger.of(requests)
        super().__init__(base.arrivals, base.prompts, base.outputs)
        self.time_scale = time_scale
        self.served_by: dict[int, PodServer] = {}

    def finished(self, request: int, at: float) -> None:
        super().finished(request, at)
        server = self.served_by.pop(request, None)
        if server is None:
            return
        scale = self.time_scale
        first_token = (self.first_token_at[request] - self.arrivals[request]) / scale
        server.meters.request_finished(
            Finished(
                seconds=(at - self.arrivals[request]) / scale,
                # The engine keeps no admission time: waiting and prefill together, an upper bound of the queue.
                queue_seconds=first_token,
                first_token_seconds=first_token,
                prompt_tokens=self.prompts[request],
                completion_tokens=self.outputs[request],
                finish="length",
            )
        )


class Traffic:
    """One GemmaDeployment's requests, its pods' engines, and where each request is."""

    def __init__(self, namespace: str, instance: str, plan: TrafficPlan, started: float) -> None:
        self.namespace, self.instance = namespace, instance
        self.plan = plan
        self.started = started
        self.ledger = _PodLedger(plan.requests, plan.time_scale)
        self.engines: dict[str, PodEngine] = {}
        self.servers: dict[str, PodServer] = {}
        self.router: deque[int] = deque()
        self.next_request = 0
        self.now = 0.0
        # Once a simulated second: [second, waiting, running, pods], what the test holds the operator's scrapes to.
        self.history: list[tuple[int, int, int, int]] = []

    @property
    def done(self) -> bool:
        return len(self.ledger.done) == len(self.plan.requests)

    def tick(self, wall: float, ready: dict[str, PodServer]) -> None:
        """Route what arrived up to `wall` (loop seconds) and run every ready pod's batch up to it."""
        start, self.now = self.now, (wall - self.started) * self.plan.time_scale
        for name in sorted(set(self.engines) - set(ready)):
            # A pod that went away: its unfinished requests go back to the router (their clients retry).
            self.router.extendleft(sorted(self.engines.pop(name).unfinished(), reverse=True))
            del self.servers[name]
        for name in sorted(set(ready) - set(self.engines)):
            self.engines[name] = PodEngine(start, self.plan.serving)
            self.servers[name] = ready[name]
        arrivals = self.ledger.arrivals
        arriving = []
        while self.next_request < len(arrivals) and arrivals[self.next_request] < self.now:
            arriving.append(self.next_request)
            self.next_request += 1
        names = sorted(self.engines)
        engines = [self.engines[name] for name in names]
        routed, unrouted = route(engines, [*self.router, *arriving], arrivals, start)
        self.router = deque(unrouted)
        for index, (name, engine) in enumerate(zip(names, engines, strict=True)):
            for _, request in routed.get(index, []):
                self.ledger.served_by[request] = self.servers[name]
            engine.serve(start, self.now, routed.get(index, []), self.ledger)
            self._report(engine, self.servers[name])
        if math.floor(self.now) > (self.history[-1][0] if self.history else -1):
            waiting = len(self.router) + sum(len(e.waiting) for e in engines)
            self.history.append((math.floor(self.now), waiting, sum(e.running for e in engines), len(engines)))

    def _report(self, engine: PodEngine, server: PodServer) -> None:
        load = server.load
        load.waiting, load.running = len(engine.waiting), engine.running
        load.kv_cache_usage = min(1.0, engine.cached_tokens(self.ledger) / self.plan.serving.cache_tokens)

    def release(self) -> None:
        """The pods report no load of this traffic any more."""
        for server in self.servers.values():
            server.load.waiting, server.load.running, server.load.kv_cache_usage = 0, 0, None

    def describe(self) -> dict[str, Any]:
        pods = {
            name: {
                "waiting": len(e.waiting),
                "running": e.running,
                "kvCacheUsage": self.servers[name].load.kv_cache_usage,
            }
            for name, e in sorted(self.engines.items())
        }
        return {
            "namespace": self.namespace,
            "instance": self.instance,
            "serving": self.plan.serving.label,
            "maxBatch": self.plan.serving.max_batch,
            "timeScale": self.plan.time_scale,
            "simulatedSeconds": round(self.now, 3),
            "requests": len(self.plan.requests),
            "arrived": self.next_request,
            "firstTokens": len(self.ledger.first_token_at),
            "finished": len(self.ledger.done),
            "unrouted": len(self.router),
            "waiting": len(self.router) + sum(len(e.waiting) for e in self.engines.values()),
            "running": sum(e.running for e in self.engines.values()),
            "pods": pods,
            "history": [list(sample) for sample in self.history],
        }


class Traffics:
    """Every instance's traffic, each driven by a task until it is replaced or stopped."""

    def __init__(self, ready_pods: Callable[[str, str], dict[str, PodServer]]) -> None:
        self.ready_pods = ready_pods
        self.running: dict[tuple[str, str], tuple[Traffic, asyncio.Task[None]]] = {}

    async def start(self, namespace: str, instance: str, plan: TrafficPlan) -> Traffic:
        await self.stop(namespace, instance)
        traffic = Traffic(namespace, instance, plan, asyncio.get_running_loop().time())
        task = asyncio.create_task(self._drive(traffic), name=f"traffic {namespace}/{instance}")
        self.running[(namespace, instance)] = (traffic, task)
        log.info("traffic %s/%s: %d requests on %s", namespace, instance, len(plan.requests), plan.serving.label)
        return traffic

    def get(self, namespace: str, instance: str) -> Traffic | None:
        entry = self.running.get((namespace, instance))
        return entry[0] if entry else None

    async def stop(self, namespace: str, instance: str) -> None:
        entry = self.running.pop((namespace, instance), None)
        if entry is None:
            return
        traffic, task = entry
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        traffic.release()

    async def close(self) -> None:
        for namespace, instance in list(self.running):
            await self.stop(namespace, instance)

    async def _drive(self, traffic: Traffic) -> None:
        loop = asyncio.get_running_loop()
        while True:
            traffic.tick(loop.time(), self.ready_pods(traffic.namespace, traffic.instance))
            if traffic.done:
                log.info("traffic %s/%s: every request served", traffic.namespace, traffic.instance)
                return
            await asyncio.sleep(TICK_SECONDS)
