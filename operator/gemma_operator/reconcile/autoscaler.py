"""The built-in autoscaler's tick: scrape the ready pods, decide (pure), and say what the reconcile should apply.
Runs on the event loop as a probe-queue job, one at a time per object."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gemma_operator.api import InvalidSpec, parse_deployment
from gemma_operator.autoscaling.decision import CapacityLimit, Observation, decide
from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.serving import batch_step_seconds, plan_roofline
from gemma_operator.catalog import AcceleratorClasses, lookup, runtimes
from gemma_operator.planning import CATALOG_IMAGES, Plan, RuntimeImages, plan
from gemma_operator.probes.scrape import Scrape, scrape_load
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.clock import Clock, timestamp
from gemma_operator.reconcile.conditions import Scaling
from gemma_operator.reconcile.controller import Cluster
from gemma_operator.reconcile.observe import gpu_capacity, pod_state
from gemma_operator.reconcile.scaling import scaling_after
from gemma_operator.reconcile.state import ObjectState


@dataclass(frozen=True)
class Tick:
    """Whether autoscaling is (still) on, and a changed verdict for the reconcile to apply."""

    enabled: bool
    scaling: Scaling | None = None


class Autoscaler:
    def __init__(self, classes: AcceleratorClasses, clock: Clock, images: RuntimeImages = CATALOG_IMAGES) -> None:
        self._classes = classes
        self._clock = clock
        self._images = images

    async def tick(self, gemma: Mapping[str, Any], cluster: Cluster, state: ObjectState) -> Tick:
        try:
            gd = parse_deployment(gemma)
        except InvalidSpec:
            return Tick(enabled=False)  # the reconcile reports it
        if not gd.spec.autoscaling.enabled:
            return Tick(enabled=False)
        result = plan(gd, self._classes, cluster.nodes or None, self._images)
        current = state.scaling
        if not isinstance(result, Plan) or current is None:
            return Tick(enabled=True)  # nothing rolled out to scale yet
        key = (gd.metadata.namespace, gd.metadata.name)

        pods = [pod for pod in map(pod_state, cluster.pods) if not pod.terminating]
        ready = [pod for pod in pods if pod.ready and pod.ip]
        scrapes = await self._scrape(result, [pod.ip for pod in ready])
        # Pods ordered but not created yet count as starting too: they are capacity on its way.
        starting = max(len(pods), current.desired) - len(ready)
        capacity = gpu_capacity(result, cluster.nodes, cluster.gpus_in_use, placed=sum(1 for pod in pods if pod.node))
        limit = (
            CapacityLimit(capacity, f"free {result.placement.accelerator_class} GPUs") if capacity is not None else None
        )
        model = gd.spec.model
        roofline = plan_roofline(lookup(model.family, model.variant), model.precision, result, self._classes)
        curve = batch_step_seconds(roofline, gd.spec.serving.max_concurrent_sequences) if roofline else ()
        policy = AutoscalingPolicy.from_spec(gd.spec.autoscaling, gd.spec.serving.max_concurrent_sequences, curve)
        decision = decide(
            policy,
            state.autoscaler,
            Observation(tuple(scrape.load for scrape in scrapes), max(starting, 0)),
            self._clock.monotonic(),
            limit,
        )
        state.autoscaler = decision.state
        metrics.record_autoscaling(key, decision.desired, scrapes)
        after = scaling_after(current, decision, scrapes, limit, timestamp(self._clock.now()))
        return Tick(enabled=True, scaling=after if after != current else None)

    @staticmethod
    async def _scrape(result: Plan, addresses: Sequence[str]) -> list[Scrape]:
        runtime = result.runtime.name
        port = runtimes()[runtime].port
        async with aiohttp.ClientSession() as session:
            return list(
                await asyncio.gather(
                    *(scrape_load(f"http://{address}:{port}", runtime, session=session) for address in addresses)
                )
            )
