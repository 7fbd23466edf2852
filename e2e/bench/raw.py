"""The raw floor: a bare async client creating the same Deployment and Service for every name.

No planning, no watches, no status: the time the API server (and everything reacting to the
new Deployments, as it does for the operator's) takes to accept the objects themselves.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.kube import AsyncKube
from bench.timeline import Timeline
from bench.workload import children, name_of, variant_of

PATHS = {"Deployment": "/apis/apps/v1/namespaces/{ns}/deployments", "Service": "/api/v1/namespaces/{ns}/services"}


@dataclass(frozen=True)
class RawResult:
    seconds: float
    throughput_per_s: float
    latencies_ms: list[float]
    writes: int


def raw_manifests(crs: int, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Every name's Deployment and Service, rendered before the clock starts."""
    return {name_of(i): children(name_of(i), variant_of(i), namespace) for i in range(crs)}


async def raw_floor(
    kube: AsyncKube, timeline: Timeline, manifests: dict[str, list[dict[str, Any]]], concurrency: int
) -> RawResult:
    """Create every name's children with ``concurrency`` names in flight; latency is send → watch event."""
    namespace = timeline.namespace
    sent: dict[str, float] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> None:
        async with gate:
            sent[name] = time.monotonic()
            for manifest in manifests[name]:
                await kube.create(PATHS[manifest["kind"]].format(ns=namespace), manifest)

    names = list(manifests)
    started = time.monotonic()
    await asyncio.gather(*(one(name) for name in names))
    finished = await timeline.until(
        lambda: all(n in timeline.deployments.added and n in timeline.services.added for n in names),
        timeout=120,
        what="the raw client's objects to show up in the watches",
    )
    seconds = finished - started
    latencies = [(timeline.deployments.added[name] - sent[name]) * 1000 for name in names]
    return RawResult(seconds, len(names) / seconds, latencies, writes=sum(len(m) for m in manifests.values()))
