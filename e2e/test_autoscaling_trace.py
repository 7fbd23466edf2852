"""The built-in autoscaler on the local plane, driven by a slice of the Azure conversation trace.

The serving simulator feeds the trace's requests to the GemmaDeployment's simulated vLLM pods, which batch them
as the autoscaling simulation's replicas do (gemma_operator.autoscaling.engine) on the plan's roofline; the
operator scrapes their vllm:num_requests_waiting/running and must follow the load up, then back down.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from gemma import Gemma, manifest
from gemma_operator.autoscaling.traces import read_workload_csv, scaled, window
from harness.plane import Plane
from harness.simulator import ServingSim
from harness.waiting import wait_for
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

TRACE = Path(__file__).resolve().parents[1] / "docs/benchmarks/traces/AzureLLMInferenceTrace_conv.csv"
MODEL = {"variant": "26b-a4b", "precision": "bf16"}
ACCELERATOR = "h100"
CONTEXT, SEQUENCES = 8192, 8
# A minute of the trace from its tenth: 301 requests of 1297 prompt and 255 output tokens on average. Twice its
# rate is about 10 requests a second, some 3.3 pods' worth of a pod's ~3 (a batch of 8 on an H100).
START_SECONDS, LOAD_SECONDS, RATE = 600, 60, 2.0
MAX_REPLICAS = 4
AUTOSCALING = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": MAX_REPLICAS,
    # Windows shortened for the test (the operator under test scrapes every 2 s); the target is the plan's.
    "stableWindowSeconds": 4,
    "panicWindowSeconds": 2,
    "scaleDownDelaySeconds": 10,
}
IN_FLIGHT = re.compile(r"in-flight ([0-9.]+) over (\d+) ready pods")


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Gemma:
    return Gemma(plane.api, namespace)


def trace_rows() -> list[dict[str, Any]]:
    workload = read_workload_csv("azure-conv", TRACE.read_text(encoding="utf-8"), max_tokens=CONTEXT)
    sliced = scaled(window(workload, START_SECONDS, LOAD_SECONDS), rate=RATE)
    return [
        {"at": r.arrival, "contextTokens": r.prompt_tokens, "generatedTokens": r.output_tokens} for r in sliced.requests
    ]


def desired(gemma: Gemma, name: str) -> int:
    return int((gemma.get(name).get("status") or {}).get("desiredReplicas", 0))


def test_replicas_follow_a_trace_slice_up_and_back_down(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess
) -> None:
    spec = {
        "model": MODEL,
        "serving": {"runtime": "vllm", "maxContextTokens": CONTEXT, "maxConcurrentSequences": SEQUENCES},
        "placement": {"acceleratorClass": ACCELERATOR},
        "autoscaling": AUTOSCALING,
    }
    gemma.create(manifest("traced", **spec))
    try:
        gemma.wait("traced", "Ready")
        assert desired(gemma, "traced") == 1
        # Served before any request is sent: a pod that cannot listen (its address taken) fails here, by name.
        for pod in gemma.pods("traced"):
            servingsim.wait_for_pod(gemma.namespace, pod.metadata.name)
        rows = trace_rows()
        model = {**MODEL, "accelerator": ACCELERATOR, "maxContextTokens": CONTEXT, "maxConcurrentSequences": SEQUENCES}
        began = time.time()
        started = servingsim.start_traffic(gemma.namespace, "traced", {"model": model, "requests": rows})
        assert started["maxBatch"] == SEQUENCES
        assert started["requests"] == len(rows)

        # (seconds since the trace began, desired replicas, the simulator's waiting + running) every second.
        timeline: list[tuple[float, int, int]] = []

        def sample() -> dict[str, Any]:
            traffic = servingsim.traffic(gemma.namespace, "traced")
            timeline.append((time.time() - began, desired(gemma, "traced"), traffic["waiting"] + traffic["running"]))
            return traffic

        def served_all() -> bool:
            traffic = sample()
            return bool(traffic["finished"] == traffic["requests"])

        wait_for(served_all, timeout=LOAD_SECONDS + 60, interval=1.0, message="every request of the slice served")
        peak = max(replicas for _, replicas, _ in timeline)
        assert peak >= 3, timeline  # ~3.3 pods' worth of load
        first_up = next(at for at, replicas, _ in timeline if replicas > 1)
        assert first_up < LOAD_SECONDS / 2, timeline  # it rose while the load was high
        # It rose once a full batch was in flight, not before.
        assert any(in_flight >= SEQUENCES for at, _, in_flight in timeline if at <= first_up), timeline

        def scaled_down() -> bool:
            sample()
            return desired(gemma, "traced") == 1

        wait_for(scaled_down, timeout=60, interval=1.0, message="back to one replica after the load")
        print("timeline (s, desired, in flight):", [(round(at), r, f) for at, r, f in timeline])
        # The scale-down delay runs from the autoscaler's last recommendation for more pods, and a queue that drains
        # records none (the batch-aware scale-down, autoscaling/decision.py): the last second the load rose above
        # one batch is the latest such recommendation, and the fall to one replica waits the delay after it (less
        # the operator's 2 s scrape interval: it may have seen the rise end before this test's once-a-second sample).
        down_at = timeline[-1][0]
        rises = [at for (_, _, before), (at, _, in_flight) in pairwise(timeline) if SEQUENCES < in_flight >= before]
        last_rise = max(rises)
        assert down_at - last_rise >= AUTOSCALING["scaleDownDelaySeconds"] - 2, timeline

        # What the operator scraped is the simulator's queue: each decision's in-flight load lies within what the
        # simulator held in the seconds around it. A decision's time is written to the whole second, so it was made
        # within the second after `at`; the simulator samples at the start of each second, so the sample after the
        # decision's second bounds it from above, and its scrape, up to a window earlier, from below.
        history = servingsim.traffic(gemma.namespace, "traced")["history"]
        held = {second: waiting + running for second, waiting, running, _ in history}
        # The simulator stops sampling once every request has finished: its pods hold nothing after that second.
        last_second = max(held)
        decisions = (gemma.get("traced").get("status") or {}).get("decisions") or []
        checked = 0
        for decision in decisions:
            match = IN_FLIGHT.search(decision["reason"])
            at = datetime.fromisoformat(decision["time"].replace("Z", "+00:00")).timestamp() - began
            around = [held.get(s, 0) for s in range(int(at) - 4, int(at) + 3) if s in held or s > last_second]
            if match is None or not around:
                continue
            checked += 1
            assert min(around) <= float(match.group(1)) <= max(around), (decision, around)
        assert checked >= 2, (decisions, history)
    finally:
        servingsim.stop_traffic(gemma.namespace, "traced")
        gemma.delete("traced")
        wait_for(lambda: not gemma.pods("traced"), timeout=60, message="traced's pods gone")
