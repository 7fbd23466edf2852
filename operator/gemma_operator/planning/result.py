"""What plan() returns: a Plan that fits, or why not. PlanReport, the shape API.md fixes, is built from either
only at the edges (the CLI's JSON and status.plan)."""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import (
    ConcurrencyPlan,
    FitsUpTo,
    GemmaDeployment,
    LimitsPlan,
    MemoryPlan,
    PlacementPlan,
    PlanReport,
    Reason,
    RuntimePlan,
)


@dataclass(frozen=True)
class Plan:
    """A replica that fits: what runs, where, and how much memory it takes."""

    runtime: RuntimePlan
    placement: PlacementPlan
    memory: MemoryPlan
    fits_up_to: FitsUpTo
    concurrency: ConcurrencyPlan


@dataclass(frozen=True)
class Refused:
    """Why a spec cannot be served as asked: a reason and messages a person can act on, with the numbers.

    `closest` is the plan that came nearest when sizing got that far (DoesNotFit, NoNodeFits), so that
    status and the CLI can show its memory figures.
    """

    reason: Reason
    problems: tuple[str, ...]
    closest: Plan | None = None

    @classmethod
    def because(cls, reason: Reason, message: str) -> Refused:
        return cls(reason, (message,))

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


PlanResult = Plan | Refused


def sized_plan(result: PlanResult | None) -> Plan | None:
    """The plan a result describes: itself when it fits, else the closest one sized (if any)."""
    return result if isinstance(result, Plan) else result.closest if result is not None else None


def plan_report(deployment: GemmaDeployment, result: PlanResult) -> PlanReport:
    """The plan as `gemma-operator plan -o json` prints it and status.plan carries it."""
    serving = deployment.spec.serving
    sized = sized_plan(result)
    return PlanReport(
        name=deployment.metadata.name,
        namespace=deployment.metadata.namespace,
        fits=isinstance(result, Plan),
        problems=[] if isinstance(result, Plan) else list(result.problems),
        runtime=sized.runtime if sized else None,
        placement=sized.placement if sized else None,
        memory=sized.memory if sized else None,
        limits=LimitsPlan(
            max_context_tokens=serving.max_context_tokens,
            max_concurrent_sequences=serving.max_concurrent_sequences,
        ),
        fits_up_to=sized.fits_up_to if sized else None,
        concurrency=sized.concurrency if sized else None,
    )
