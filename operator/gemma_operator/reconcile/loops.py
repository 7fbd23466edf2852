"""The operator's two work queues and what their workers do.

- reconciles: one per GemmaDeployment at a time, in a thread pool (the Kubernetes client blocks; this is the
  only place where work leaves the event loop);
- probes: smoke checks and autoscaler ticks, on the event loop (their I/O is asyncio's), one per object and job;
  and the fleet survey, one for the whole cluster, in the thread pool (it plans every variant).

Everything that happens to an object goes through them: its own events, its children's and pods', retries,
held status writes, finished smoke checks and autoscaler verdicts (the last two as notes to its reconcile).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any, Final

from gemma_operator.fleet import PodClaim, Surveyor
from gemma_operator.planning import NodeInfo
from gemma_operator.probes.smoke import SmokeResult, smoke_check
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.autoscaler import Autoscaler
from gemma_operator.reconcile.clock import Clock
from gemma_operator.reconcile.controller import Cluster, Controller, Note, ScalingDecided
from gemma_operator.reconcile.queue import DONE, Backoff, Result, WorkQueue
from gemma_operator.reconcile.state import Key, States
from gemma_operator.reconcile.verification import SmokeOutcome, SmokeRequest

# Threads for reconciles; the API client's connection pool is sized to match (run.py).
RECONCILE_WORKERS: Final = 16
# Smoke checks and scrapes wait on pods, not on the API server: a few at a time is plenty.
PROBE_WORKERS: Final = 8
# Failed reconciles come back after 15 s, doubling to 10 min.
RECONCILE_BACKOFF: Final = Backoff(base=15.0, cap=600.0)

# The fleet survey runs at most this long after a node or pod changed: a burst of events makes one survey.
FLEET_DEBOUNCE_SECONDS: Final = 5.0
# The fleet job's key: it surveys the cluster, not one object.
FLEET_KEY: Final[Key] = ("", "")

Lookup = Callable[[Key], tuple[Mapping[str, Any], Cluster] | None]
Inventory = Callable[[], tuple[Sequence[NodeInfo], Sequence[PodClaim]]]


class Job(Enum):
    VERIFY = "verify"
    AUTOSCALE = "autoscale"
    FLEET = "fleet"


def uid_generation(metadata: Mapping[str, Any]) -> tuple[str, int]:
    """What a reconcile depends on in an object's metadata: which object, and which spec (behind the generation)."""
    return str(metadata.get("uid", "")), int(metadata.get("generation") or 0)


class Loops:
    def __init__(
        self,
        controller: Controller,
        autoscaler: Autoscaler,
        lookup: Lookup,
        clock: Clock,
        *,
        inventory: Inventory,
        autoscaling_interval: float,
        smoke: Callable[[str, tuple[str, ...]], Awaitable[SmokeResult]] = smoke_check,
    ) -> None:
        self.states = States()
        self._controller = controller
        self._autoscaler = autoscaler
        self._lookup = lookup
        self._inventory = inventory
        self._surveyor = Surveyor(controller.classes)
        self._interval = autoscaling_interval
        self._smoke = smoke
        self._pool = ThreadPoolExecutor(max_workers=RECONCILE_WORKERS, thread_name_prefix="reconcile")
        self.reconciles: WorkQueue[Key, Note] = WorkQueue(
            "reconcile", self._reconcile, workers=RECONCILE_WORKERS, clock=clock, backoff=RECONCILE_BACKOFF
        )
        self.probes: WorkQueue[tuple[Job, Key], SmokeRequest] = WorkQueue(
            "probe", self._probe, workers=PROBE_WORKERS, clock=clock, backoff=RECONCILE_BACKOFF
        )

    def start(self) -> None:
        self.reconciles.start()
        self.probes.start()

    async def stop(self) -> None:
        await asyncio.gather(self.reconciles.stop(), self.probes.stop())
        self._pool.shutdown(wait=False, cancel_futures=True)

    def changed(self, key: Key, metadata: Mapping[str, Any]) -> None:
        """The object itself changed: reconcile now, unless this generation was handled (our own status writes)."""
        if self.states.of(key).handled != uid_generation(metadata):
            self.reconciles.reset_backoff(key)
            self.reconciles.add(key)

    def refresh(self, key: Key, delay: float) -> None:
        """Something the object's status depends on changed (a child, a pod, a node)."""
        self.reconciles.add(key, delay)

    def fleet_changed(self) -> None:
        """A node or pod changed: survey the fleet again, soon, and look again at the new templates that wait for
        GPUs (a burst of events makes one reconcile of each)."""
        self.probes.add((Job.FLEET, FLEET_KEY), FLEET_DEBOUNCE_SECONDS)
        for key in self._controller.waiting_for_capacity():
            self.reconciles.add(key, FLEET_DEBOUNCE_SECONDS)

    def forget(self, key: Key) -> None:
        self.reconciles.forget(key)
        for waiting in self._controller.forget(key):
            self.reconciles.add(waiting)
        for job in (Job.VERIFY, Job.AUTOSCALE):
            self.probes.forget((job, key))
        self.states.forget(key)
        metrics.CENSUS.forget(key)
        metrics.forget_autoscaling(key)

    async def _reconcile(self, key: Key, notes: list[Note]) -> Result:
        found = self._lookup(key)
        if found is None:
            return DONE  # the object is gone or going: the garbage collector takes the children
        gemma, cluster = found
        state = self.states.of(key)
        outcome = await asyncio.get_running_loop().run_in_executor(
            self._pool, self._controller.reconcile, key, gemma, cluster, state, notes
        )
        state.handled = uid_generation(gemma["metadata"])
        for waiting in outcome.wake:
            self.reconciles.add(waiting)
        if outcome.smoke is not None:
            self.probes.add((Job.VERIFY, key), note=outcome.smoke)
        if outcome.autoscaling and not state.ticking:
            state.ticking = True
            self.probes.add((Job.AUTOSCALE, key), self._interval)
        return outcome.queue

    async def _probe(self, job_key: tuple[Job, Key], requests: list[SmokeRequest]) -> Result:
        job, key = job_key
        if job is Job.FLEET:
            nodes, claims = self._inventory()
            report = await asyncio.get_running_loop().run_in_executor(self._pool, self._surveyor.survey, nodes, claims)
            metrics.FLEET.record(report)
            return DONE
        if job is Job.VERIFY:
            for request in requests[-1:]:  # an older request for the same object is moot
                self.reconciles.add(key, note=SmokeOutcome(request.generation, await self._check(request)))
            return DONE
        found = self._lookup(key)
        state = self.states.of(key)
        tick = await self._autoscaler.tick(*found, state) if found else None
        if tick is None or not tick.enabled:
            state.ticking = False
            return DONE
        if tick.scaling is not None:
            self.reconciles.add(key, note=ScalingDecided(tick.scaling))
        return Result(after=self._interval)

    async def _check(self, request: SmokeRequest) -> SmokeResult:
        try:
            return await self._smoke(request.base_url, request.adapters)
        except Exception as error:  # a check that breaks still answers: Verified must not stay "Verifying"
            return SmokeResult(
                ok=False, message=f"smoke check failed: {error!r}"[:200], latency_seconds=0.0, attempts=0
            )
