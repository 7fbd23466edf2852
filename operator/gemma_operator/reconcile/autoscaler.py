"""The built-in autoscaler's loop: scrape the ready pods, decide (pure), and hand a new count to the reconciler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gemma_operator.api import InvalidSpec, PlanReport, parse_deployment
from gemma_operator.autoscaling.decision import CapacityLimit, Decision, Observation, decide
from gemma_operator.autoscaling.policy import AutoscalingPolicy
from gemma_operator.autoscaling.state import AutoscalerState
from gemma_operator.catalog import runtimes
from gemma_operator.planning import plan
from gemma_operator.probes.scrape import Scrape, scrape_load
from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.conditions import FALSE, TRUE, UNKNOWN, Scaling
from gemma_operator.reconcile.observe import gpu_capacity, pod_state
from gemma_operator.reconcile.reconciler import Cluster, Key, Reconciler, Warn

DECISIONS_KEPT = 5


def scaling_after(
    current: Scaling, decision: Decision, scrapes: Sequence[Scrape], limit: CapacityLimit | None, now: str
) -> Scaling:
    """The status part after one decision. Messages carry no load figures, so an unchanged verdict writes nothing."""
    failed = [scrape for scrape in scrapes if scrape.load is None]
    if not scrapes:
        active = (UNKNOWN, "NoReadyPods", "no ready pod to scrape")
    elif failed:
        active = (
            FALSE,
            "MetricsUnavailable",
            f"{len(failed)}/{len(scrapes)} ready pods did not report load ({failed[0].reason}); not scaling down",
        )
    else:
        active = (TRUE, "MetricsAvailable", f"load from {len(scrapes)} ready pods")
    limited = (
        (TRUE, "NodeCapacity", f"at most {limit.replicas} replicas fit: {limit.resource}")
        if decision.limited and limit is not None
        else (FALSE, "WithinLimits", "")
    )
    if decision.desired == current.desired:
        return replace(current, active=active, limited=limited)
    entry = {"time": now, "replicas": decision.desired, "reason": decision.reason}
    return Scaling(decision.desired, now, (*current.decisions, entry)[-DECISIONS_KEPT:], active, limited)


@dataclass
class Autoscaler:
    """Per GemmaDeployment: the decision state, carried from one tick to the next."""

    reconciler: Reconciler
    states: dict[Key, AutoscalerState] = field(default_factory=dict)

    def forget(self, key: Key) -> None:
        self.states.pop(key, None)

    async def tick(self, gemma: Mapping[str, Any], cluster: Cluster, warn: Warn) -> None:
        try:
            deployment = parse_deployment(gemma)
            report = plan(deployment, self.reconciler.classes, cluster.nodes or None)
        except InvalidSpec:
            return  # the reconcile reports it
        current = self.reconciler.scaling.get((deployment.metadata.namespace, deployment.metadata.name))
        if not report.fits or report.runtime is None or current is None:
            return  # nothing rolled out to scale yet
        key = (deployment.metadata.namespace, deployment.metadata.name)

        pods = [state for state in map(pod_state, cluster.pods) if not state.terminating]
        ready = [pod for pod in pods if pod.ready and pod.ip]
        scrapes = await self._scrape(report, [pod.ip for pod in ready])
        # Pods ordered but not created yet count as starting too: they are capacity on its way.
        starting = max(len(pods), current.desired) - len(ready)
        capacity = gpu_capacity(report, cluster.nodes, cluster.gpus_in_use, placed=sum(1 for pod in pods if pod.node))
        limit = (
            CapacityLimit(capacity, f"free {report.placement.accelerator_class} GPUs")
            if capacity is not None and report.placement
            else None
        )
        policy = AutoscalingPolicy.from_spec(deployment.spec.autoscaling, report.limits.max_concurrent_sequences)
        decision = decide(
            policy,
            self.states.get(key, AutoscalerState()),
            Observation(tuple(scrape.load for scrape in scrapes), max(starting, 0)),
            time.monotonic(),
            limit,
        )
        self.states[key] = decision.state
        metrics.record_autoscaling(key, decision.desired, scrapes)

        after = scaling_after(current, decision, scrapes, limit, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if after != current:
            self.reconciler.scaling[key] = after
            await asyncio.to_thread(self.reconciler.reconcile, gemma, cluster, warn)

    @staticmethod
    async def _scrape(report: PlanReport, addresses: Sequence[str]) -> list[Scrape]:
        assert report.runtime is not None
        runtime = report.runtime.name
        port = runtimes()[runtime].port
        async with aiohttp.ClientSession() as session:
            return list(
                await asyncio.gather(
                    *(scrape_load(f"http://{address}:{port}", runtime, session=session) for address in addresses)
                )
            )
