"""Watch timestamps: when each GemmaDeployment, Deployment and Service of a namespace appeared and changed.

One watch per resource, started from a list, keeps for every name the monotonic time of its
first sighting, and for GemmaDeployments the first time status.observedGeneration reached each
generation and the first time Ready=True was seen at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.kube import AsyncKube, KubeError
from bench.workload import GROUP, PLURAL, VERSION


@dataclass
class Sightings:
    """First-seen times (time.monotonic()) per object name."""

    added: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)


@dataclass
class GemmaTimes(Sightings):
    generation: dict[str, int] = field(default_factory=dict)
    # (name, generation) -> first time seen with observedGeneration == generation / Ready=True at it.
    status_written: dict[tuple[str, int], float] = field(default_factory=dict)
    ready: dict[tuple[str, int], float] = field(default_factory=dict)


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Timeline:
    """Watches of GemmaDeployments, Deployments and Services in one namespace."""

    def __init__(self, kube: AsyncKube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.gemmas = GemmaTimes()
        self.deployments = Sightings()
        self.services = Sightings()
        self._tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        paths: list[tuple[str, Sightings]] = [
            (f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}", self.gemmas),
            (f"/apis/apps/v1/namespaces/{self.namespace}/deployments", self.deployments),
            (f"/api/v1/namespaces/{self.namespace}/services", self.services),
        ]
        for path, sightings in paths:
            items, version = await self.kube.list(path)
            for item in items:
                self._see("ADDED", item, sightings)
            self._tasks.append(asyncio.create_task(self._follow(path, version, sightings)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self, path: str, version: str, sightings: Sightings) -> None:
        while True:
            try:
                async for event in self.kube.watch(path, version):
                    obj = event.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event.get("type") == "ERROR":
                        raise KubeError("WATCH", path, int(obj.get("code", 0)), str(obj.get("message")))
                    self._see(str(event.get("type")), obj, sightings)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Expired version or a dropped connection: list again and carry on from there.
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    items, version = await self.kube.list(path)
                    for item in items:
                        self._see("ADDED", item, sightings)

    def _see(self, kind: str, obj: dict[str, Any], sightings: Sightings) -> None:
        now = time.monotonic()
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name", ""))
        if kind == "BOOKMARK" or not name:
            return
        if kind == "DELETED":
            sightings.deleted.setdefault(name, now)
            sightings.live.discard(name)
        else:
            sightings.added.setdefault(name, now)
            sightings.live.add(name)
            if isinstance(sightings, GemmaTimes):
                generation = int(metadata.get("generation", 0))
                sightings.generation[name] = generation
                if (obj.get("status") or {}).get("observedGeneration") == generation:
                    sightings.status_written.setdefault((name, generation), now)
                    if _ready(obj):
                        sightings.ready.setdefault((name, generation), now)
        self.changed.set()

    async def until(self, done: Callable[[], bool], timeout: float, what: str) -> float:
        """Wait until ``done()``; return the monotonic time it first held. TimeoutError names ``what``."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
        return time.monotonic()

    # ---- questions the phases ask -------------------------------------------------------------

    def converged(self, names: list[str], generation: int = 1) -> bool:
        """Every name has its children and a status written for ``generation``."""
        return all(
            (name, generation) in self.gemmas.status_written
            and name in self.deployments.live
            and name in self.services.live
            for name in names
        )

    def all_ready(self, names: list[str], generation: int = 1) -> bool:
        return all((name, generation) in self.gemmas.ready for name in names)

    def converged_at(self, name: str, generation: int = 1) -> float:
        return max(
            self.gemmas.status_written[(name, generation)], self.deployments.added[name], self.services.added[name]
        )
