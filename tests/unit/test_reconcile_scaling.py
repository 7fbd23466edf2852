"""scaling_after: the autoscaler's conditions and decision history after one decision."""

from __future__ import annotations

from gemma_operator.api import Reason
from gemma_operator.autoscaling.decision import CapacityLimit, Decision
from gemma_operator.autoscaling.signals import Load
from gemma_operator.autoscaling.state import AutoscalerState
from gemma_operator.probes.scrape import Scrape
from gemma_operator.reconcile.conditions import FALSE, TRUE, UNKNOWN, Scaling
from gemma_operator.reconcile.scaling import DECISIONS_KEPT, scaling_after

CURRENT = Scaling(desired=2, last_scale_time="t0", decisions=({"time": "t0", "replicas": 2, "reason": "start"},))
LIMIT = CapacityLimit(3, "free h100 GPUs")


def decision(desired: int = 2, limited: bool = False, reason: str = "in-flight 10.0 over 2 ready pods") -> Decision:
    return Decision(desired, reason, panicking=False, limited=limited, held=False, state=AutoscalerState())


def loaded(count: int, running: float = 5.0) -> list[Scrape]:
    return [Scrape(Load(waiting=0.0, running=running))] * count


def test_no_ready_pod_to_scrape_is_unknown() -> None:
    after = scaling_after(CURRENT, decision(), [], None, "t1")
    assert after.active == (UNKNOWN, Reason.NO_READY_PODS, "no ready pod to scrape")


def test_failed_scrapes_name_their_count_and_the_first_reason() -> None:
    scrapes = [*loaded(1), Scrape(None, "connection refused"), Scrape(None, "HTTP 404")]
    after = scaling_after(CURRENT, decision(), scrapes, None, "t1")
    assert after.active == (
        FALSE,
        Reason.METRICS_UNAVAILABLE,
        "2/3 ready pods did not report load (connection refused); not scaling down",
    )


def test_every_pod_reporting_is_metrics_available() -> None:
    after = scaling_after(CURRENT, decision(), loaded(2), None, "t1")
    assert after.active == (TRUE, Reason.METRICS_AVAILABLE, "load from 2 ready pods")


def test_a_limited_decision_names_what_fits_and_what_ran_out() -> None:
    after = scaling_after(CURRENT, decision(3, limited=True), loaded(2), LIMIT, "t1")
    assert after.limited == (TRUE, Reason.NODE_CAPACITY, "at most 3 replicas fit: free h100 GPUs")


def test_an_unlimited_decision_is_within_limits_even_with_a_limit_known() -> None:
    after = scaling_after(CURRENT, decision(3), loaded(2), LIMIT, "t1")
    assert after.limited == (FALSE, Reason.WITHIN_LIMITS, "")


def test_an_unchanged_count_keeps_the_decisions_and_the_scale_time() -> None:
    after = scaling_after(CURRENT, decision(2), loaded(2), None, "t1")
    assert (after.desired, after.last_scale_time, after.decisions) == (2, "t0", CURRENT.decisions)


def test_a_new_count_is_recorded_with_its_time_and_reason() -> None:
    after = scaling_after(CURRENT, decision(4, reason="in-flight 40.0 over 2 ready pods -> 4"), loaded(2), None, "t1")
    assert (after.desired, after.last_scale_time) == (4, "t1")
    assert after.decisions == (
        *CURRENT.decisions,
        {"time": "t1", "replicas": 4, "reason": "in-flight 40.0 over 2 ready pods -> 4"},
    )


def test_only_the_latest_decisions_are_kept() -> None:
    scaling = CURRENT
    counts = list(range(3, 3 + DECISIONS_KEPT + 2))
    for replicas in counts:
        scaling = scaling_after(scaling, decision(replicas), loaded(2), None, f"t{replicas}")
    # The first decision and the two oldest new ones have gone.
    assert [entry["replicas"] for entry in scaling.decisions] == counts[2:]
    assert scaling.decisions[-1]["time"] == f"t{counts[-1]}"


def test_a_change_of_load_alone_changes_nothing_to_write() -> None:
    settled = scaling_after(CURRENT, decision(2), loaded(2, running=5.0), None, "t1")
    assert scaling_after(settled, decision(2), loaded(2, running=9.0), None, "t2") == settled
