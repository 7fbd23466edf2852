"""The built-in autoscaler's part of the status after one decision. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from gemma_operator.api import Reason
from gemma_operator.autoscaling.decision import CapacityLimit, Decision
from gemma_operator.reconcile.conditions import FALSE, TRUE, UNKNOWN, Scaling

if TYPE_CHECKING:
    # Only its type: the module that defines it does HTTP (aiohttp), and this one stays pure.
    from gemma_operator.probes.scrape import Scrape

DECISIONS_KEPT = 5


def scaling_after(
    current: Scaling, decision: Decision, scrapes: Sequence[Scrape], limit: CapacityLimit | None, now: str
) -> Scaling:
    """The status part after one decision. Messages carry no load figures, so an unchanged verdict writes nothing."""
    failed = [scrape for scrape in scrapes if scrape.load is None]
    active: tuple[str, Reason, str]
    if not scrapes:
        active = (UNKNOWN, Reason.NO_READY_PODS, "no ready pod to scrape")
    elif failed:
        active = (
            FALSE,
            Reason.METRICS_UNAVAILABLE,
            f"{len(failed)}/{len(scrapes)} ready pods did not report load ({failed[0].reason}); not scaling down",
        )
    else:
        active = (TRUE, Reason.METRICS_AVAILABLE, f"load from {len(scrapes)} ready pods")
    limited = (
        (TRUE, Reason.NODE_CAPACITY, f"at most {limit.replicas} replicas fit: {limit.resource}")
        if decision.limited and limit is not None
        else (FALSE, Reason.WITHIN_LIMITS, "")
    )
    if decision.desired == current.desired:
        return replace(current, active=active, limited=limited)
    entry = {"time": now, "replicas": decision.desired, "reason": decision.reason}
    return Scaling(decision.desired, now, (*current.decisions, entry)[-DECISIONS_KEPT:], active, limited)
