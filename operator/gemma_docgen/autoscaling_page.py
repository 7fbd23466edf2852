"""docs/benchmarks/autoscaling.md, from the suite's results (autoscaling-suite.json), the spec's defaults and the
constants of the serving model and of every baseline."""

from __future__ import annotations

import json
from typing import Any

from gemma_docgen.autoscaling_suite import LEAN_UTILIZATION
from gemma_operator.api import AutoscalingSpec
from gemma_operator.autoscaling import keda, kpa
from gemma_operator.autoscaling.benchmark import ADAPTER_DELAY_SECONDS
from gemma_operator.autoscaling.decision import MAX_DELAY_FACTOR
from gemma_operator.autoscaling.hpa import (
    SCALE_DOWN_STABILIZATION_SECONDS,
    SCALE_UP_PERCENT,
    SCALE_UP_PERIOD_SECONDS,
    SCALE_UP_PODS,
    SYNC_SECONDS,
    TOLERANCE,
)
from gemma_operator.autoscaling.serving import (
    CALIBRATION_TOLERANCE,
    COMPUTE_EFFICIENCY,
    ENGINE_INIT_SECONDS,
    LOAD_BYTES_PER_SECOND,
    MEMORY_EFFICIENCY,
)
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.cli.tables import markdown

CONFIG = SimulationConfig()
SPEC = AutoscalingSpec()
HEADROOM = f"{1 - SPEC.target_utilization:.0%}"
SIDES = ("builtin", "hpa", "keda", "kpa", "oracle")
# The goal: on every trace no more SLO-violation time than the HPA at most 1.05x its replica-seconds; over the
# suite at most half its violation time.
REPLICA_BUDGET = 1.05
SUITE_VIOLATION_RATIO = 0.5


def trace_goal_met(sides: dict[str, dict[str, Any]]) -> bool:
    ours, hpa = sides["builtin"], sides["hpa"]
    return bool(
        ours["sloViolationSeconds"] <= hpa["sloViolationSeconds"]
        and ours["replicaSeconds"] <= REPLICA_BUDGET * hpa["replicaSeconds"]
    )


def _total(traces: list[dict[str, Any]], side: str, metric: str) -> int:
    return sum(int(t["sides"][side][metric]) for t in traces)


def suite_table(traces: list[dict[str, Any]]) -> str:
    header = [
        "trace",
        "requests",
        *(f"violation s {side}" for side in SIDES),
        *(f"replica-s {side}" for side in SIDES),
        "goal met",
    ]
    body = [
        [
            t["trace"],
            str(t["requests"]),
            *(str(t["sides"][side]["sloViolationSeconds"]) for side in SIDES),
            *(str(t["sides"][side]["replicaSeconds"]) for side in SIDES),
            "yes" if trace_goal_met(t["sides"]) else "no",
        ]
        for t in traces
    ]
    body.append(
        [
            "**total**",
            str(sum(int(t["requests"]) for t in traces)),
            *(str(_total(traces, side, "sloViolationSeconds")) for side in SIDES),
            *(str(_total(traces, side, "replicaSeconds")) for side in SIDES),
            "",
        ]
    )
    return markdown(header, body)


def _plot_name(trace: str) -> str:
    return "autoscaling-" + "".join(c if c.isalnum() else "-" for c in trace).strip("-").replace("--", "-") + ".svg"


def plot_names(results: dict[str, Any]) -> dict[str, str]:
    """The plotted traces' SVG file names, by trace."""
    return {t["trace"]: _plot_name(t["trace"]) for t in results["traces"] if "series" in t}


def lean_table(traces: list[dict[str, Any]]) -> str:
    """The built-in without headroom beside the HPA: violation and replica-seconds, and the per-trace goal."""
    body = []
    for t in traces:
        lean, hpa = t["leanBuiltin"], t["sides"]["hpa"]
        met = trace_goal_met({"builtin": lean, "hpa": hpa})
        share = lean["replicaSeconds"] / hpa["replicaSeconds"]
        body.append(
            [
                t["trace"],
                f"{lean['sloViolationSeconds']} / {hpa['sloViolationSeconds']}",
                f"{lean['replicaSeconds']} / {hpa['replicaSeconds']} ({share:.2f})",
                "yes" if met else "no",
            ]
        )
    ours = sum(int(t["leanBuiltin"]["sloViolationSeconds"]) for t in traces)
    hpa_total = _total(traces, "hpa", "sloViolationSeconds")
    body.append(["**total**", f"{ours} / {hpa_total} ({ours / hpa_total:.2f})", "", ""])
    header = ["trace", "violation s, lean built-in / HPA", "replica-s, lean built-in / HPA", "goal met"]
    return markdown(header, body) + "\n"


def verdict(traces: list[dict[str, Any]]) -> str:
    ours = _total(traces, "builtin", "sloViolationSeconds")
    hpa = _total(traces, "hpa", "sloViolationSeconds")
    missed = [t["trace"] for t in traces if not trace_goal_met(t["sides"])]
    ratio = f"{ours / hpa:.2f}" if hpa else "-"
    lines = [
        f"Over the suite the built-in has {ours} s of SLO violation against the HPA's {hpa} s ({ratio}x; the "
        f"goal is at most {SUITE_VIOLATION_RATIO:g}x).",
        (
            "Every trace meets the per-trace goal."
            if not missed
            else "The per-trace goal is missed on: " + ", ".join(missed) + "."
        ),
    ]
    return " ".join(lines) + "\n"


def autoscaling_document(results: dict[str, Any]) -> str:
    """The page, from the suite's results (autoscaling-suite.json)."""
    traces = results["traces"]
    plots = plot_names(results)
    sections = (
        INTRO.format(
            model=results["model"],
            context=CONFIG.max_context_tokens,
            batch=results["maxBatch"],
            startup=results["startupSeconds"],
            ttft=CONFIG.slo_ttft_seconds,
            tpot=CONFIG.slo_tpot_seconds * 1000,
            low=CONFIG.min_replicas,
            high=CONFIG.max_replicas,
            scrape=CONFIG.scrape_seconds,
            budget=REPLICA_BUDGET,
            ratio=SUITE_VIOLATION_RATIO,
        ),
        "## Results\n\n"
        + RESULTS_INTRO
        + suite_table(traces)
        + "\n\n"
        + verdict(traces)
        + "\n"
        + "".join(f"![{trace}]({name})\n\n" for trace, name in plots.items()),
        MODEL,
        BASELINES,
        ALGORITHM,
        TUNING,
        LIMITS + lean_table(traces),
        REPRODUCE,
    )
    return "\n".join(sections)


INTRO = """\
# Autoscaling benchmark: the built-in autoscaler against the HPA, KEDA and Knative, and an oracle

Generated by `make generate` from docs/benchmarks/autoscaling-suite.json, which `make bench-autoscaling` writes
by running the suite (a few minutes); a unit test fails when this page or its plots are stale against that file.
`gemma-operator simulate-autoscaling` runs one trace, with your own numbers, and prints every side's metrics as
a table or JSON.

Each trace runs through the same token-level serving model under five autoscalers: the built-in (the very
`decide` function the operator's timer calls), models of the Kubernetes HPA, KEDA and Knative's KPA with their
default behaviour, and a clairvoyant oracle. All get the same per-pod target, a full batch, and the same bounds.

- The pods serve {model}: the planner's deployment with the most sequences the plan fits at {context} tokens,
  a batch of {batch}; a pod starts in {startup} s.
- SLOs: p95 TTFT {ttft:g} s, p95 TPOT {tpot:g} ms; {low} to {high} replicas; metrics scraped every {scrape} s.

The goal: on every trace the built-in has no more SLO-violation time than the HPA, at most {budget:g}x its
replica-seconds, and over the whole suite at most {ratio:g}x the HPA's violation time.
"""

RESULTS_INTRO = """\
The rate shapes (step ... ramp, see `traces.py`) are drawn in units of a pod serving 2 requests a second and
rescaled to the simulated pod at the conversation trace's mean lengths; their requests are Poisson arrivals
with log-normal lengths fitted to that trace. The azure rows are the real 2023 traces (docs/benchmarks/traces),
half-hour windows at a rate scale, and the whole hour compressed to half (t0.5). The oracle spends at most the
HPA's replica-seconds. The plots show, per side, the pods ordered, the requests waiting and the p95 TTFT of each
10 s of arrivals.

"""

MODEL = f"""\
## What is simulated, and what the numbers mean

- **Requests** arrive at their trace times; each is routed to the ready pod with the fewest requests in flight.
  A pod runs continuous batching: at most a full batch of sequences, the rest wait in its queue in order.
- **A step** of a pod reads the weights once (for a mixture of experts, only the experts its tokens are routed
  to) and every sequence's KV cache (sliding layers up to their window), and does 2 FLOPs per active parameter
  per token; its time is the larger of bytes / bandwidth and FLOPs / peak, at {MEMORY_EFFICIENCY:.0%} of the
  datasheet bandwidth and {COMPUTE_EFFICIENCY:.0%} of the dense BF16 peak (catalog/accelerator_performance.yaml).
  Each step advances prefill by what the decode tokens leave of the plan's prefill chunk.
- **Calibration:** vLLM serving Gemma-4-26B-A4B-it BF16 on a DGX Spark at 10 concurrent chat users, 91 tokens/s
  (https://djangodevreng.nl/en/arena/gemma-4-26b-a4b-it-bf16-v23/), and Gemma-4-31B-it FP8 on an RTX PRO 6000
  Blackwell at 21 sequences, about 548 output tokens/s
  (https://blog.hexgrid.cloud/gemma-4-31b-vllm-on-rtx-6000-pro-1-17k-tokens-sec-and-still-asking-for-more).
  tests/unit/test_autoscaling_serving.py reproduces both within {CALIBRATION_TOLERANCE:.0%}.
- **Startup:** {ENGINE_INIT_SECONDS:g} s of engine initialisation plus the weights at
  {LOAD_BYTES_PER_SECOND / 1e9:g} GB/s, both from the vLLM log published with
  https://huggingface.co/LargitData/gemma-4-26b-a4b-it-fp8 (weights in 15.76 s, ready at about 153 s). A pod
  counts in replica-seconds from its creation.
- **sloViolationSeconds:** seconds whose arrivals' p95 TTFT or p95 TPOT broke its SLO (more than 5% of them
  missed it; a request never served counts as a miss). **replicaSeconds:** pods ordered, summed over seconds.
  **scaleDirectionChanges:** turnarounds of the pod count. **ttftP95Seconds, tpotP95Seconds:** over all
  requests (`-`: more than 5% never got a first or last token).
"""

BASELINES = f"""\
## The baselines

**HPA** (pkg/controller/podautoscaler): desired = ceil(usage ratio x pods with metrics), no change within the
{TOLERANCE:.0%} tolerance; pods without metrics count as 0 on a scale-up and as the target on a scale-down; it
syncs every {SYNC_SECONDS} s; scale-up at most max(+{SCALE_UP_PERCENT}%, +{SCALE_UP_PODS} pods) per \
{SCALE_UP_PERIOD_SECONDS} s; scale-down takes the highest
recommendation of the last {SCALE_DOWN_STABILIZATION_SECONDS} s. It reads the pods' in-flight requests through
Prometheus and prometheus-adapter, one scrape interval plus {ADAPTER_DELAY_SECONDS} s late.

**KEDA** (kedacore/keda v2.20.2) with a Prometheus trigger: KEDA's own HPA, whose metric KEDA's metrics server
answers from a live query on each sync (no adapter lag); its loop polls every {keda.POLLING_INTERVAL_SECONDS} s \
for activation and scales to
zero only {keda.COOLDOWN_PERIOD_SECONDS} s after the trigger was last active, which with minReplicas >= 1 never
happens: between 1 and N replicas KEDA is an HPA with a fresher metric.

**Knative KPA** (knative/serving v0.50.0, pkg/autoscaler): concurrency scraped every second; every \
{kpa.TICK_SECONDS} s,
desired = ceil(mean concurrency over the {kpa.STABLE_WINDOW_SECONDS} s stable window / (target x \
{kpa.TARGET_UTILIZATION:.0%})); panic when the
{kpa.PANIC_WINDOW_SECONDS} s window asks for {kpa.PANIC_THRESHOLD:.0%} of the ready pods, then no scale-down \
until a stable window passes without it;
at most halving per decision; scale-down-delay 0 s.

**The oracle** knows every request and the startup: it runs, each second, the most pods any second of the next
startup time needs at full batches (open-loop, never looking at a queue), at the lowest utilisation whose plan
fits the HPA's replica-seconds. It is a near lower bound on violation at that budget, not a proven one.
"""

ALGORITHM = f"""\
## How the built-in autoscaler decides

`gemma_operator.autoscaling.decision.decide(policy, state, observation, now, capacity_limit)` is pure: the
timer passes the policy, the state the previous call returned, one scrape of the pods (each ready pod's
waiting and running, or nothing when its scrape failed, plus the number of pods still starting), a monotonic
time, and how many replicas the node inventory can host. It returns the desired replicas, a reason with the
numbers, the flags `panicking`, `limited`, `held`, and the next state.

1. **Load** is in-flight requests summed over the ready pods. The pods are sized at target x
   targetUtilization per pod: {HEADROOM} headroom by default, because a pod ordered now serves only after its
   startup.
2. **Scale up at once** when the newest load needs more pods: no stabilisation, no tolerance, and no adapter
   lag. The HPA learns of a step 30-45 s later.
3. **Startup awareness.** Pods still starting count as capacity on its way: the backlog that builds up while
   they load weights is not counted again, since they were ordered for it and will drain it. Without this, a
   queue that grows for two minutes of weight loading keeps ordering pods that arrive to an empty queue.
4. **A draining backlog holds.** When fewer requests wait than at the last scrape, the ready pods already
   out-serve the arrivals; pods ordered now would start after the queue is gone.
5. **Panic.** When the load reaches panicThreshold x the capacity of every pod, starting ones included, the
   autoscaler scales to what the whole load needs (backlog included) and does not scale down while
   panicking nor for a stable window after.
6. **Scale down slowly, and only on demand.** The count may fall only to the larger of the stable-window
   average's need and the highest demand recommendation of the last scaleDownDelaySeconds. A backlog being
   drained is not demand and leaves no recommendation, so the delay runs from the last time the load (a growing
   backlog included) asked for the pods, not from when the queue was finally cleared, as the HPA's does.
   Recommendations are taken at (1 - scaleDownTolerance) of the aimed load, a hysteresis that keeps a ripple
   from flapping a pod. Both count each pod's running requests at full-batch speed: a pod running 2 sequences
   at 4.3 ms a step would hold 2 x 13.8 / 4.3 = 6.4 once fewer pods fill their batches of 16 at 13.8 ms a step
   (26B-A4B on an H100), so the count never falls to what lightly loaded pods seem to need. The operator takes
   the step times from the plan's roofline (autoscaling/serving.py); off GPUs, requests count as they are.
7. **Flap damping.** A scale-down undone within scaleDownDelaySeconds doubles that delay \
(up to {MAX_DELAY_FACTOR}x) for an
   hour: load that comes back every few minutes keeps its pods instead of paying a startup each time.
8. **Hold on missing metrics.** A pod whose scrape failed counts at the known pods' average, and nothing scales
   down while any ready pod's load is unknown; with no load known at all, the count holds. A failed scrape is
   never read as zero load.
9. **Bounds.** At most max(x maxScaleUpRate, + maxScaleUpPods) up and / maxScaleDownRate down per decision,
   then minReplicas and maxReplicas, then the capacity limit of the node inventory (`limited`, with the
   resource in the reason: "limited to 6 by free H100 GPUs").

Against the HPA on LLM load, this removes the adapter lag, the tolerance band on the way up, the overshoot of
counting a queue that starting pods will drain, and the repeated startups of a recurring load.
"""

# The fields of spec.autoscaling (python names), what each does, and when to raise or lower it.
KNOBS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("min_replicas", "max_replicas"), "bounds of the count", "-", "-"),
    (
        ("target_in_flight_per_replica",),
        "requests (waiting + running) a pod holds at full speed",
        "pods keep up with more",
        "latency per token at a full batch is too high",
    ),
    (
        ("target_utilization",),
        "fraction of the target the count is sized for: headroom for increases while pods start",
        "cost matters more than tail latency",
        "load rises faster than pods start",
    ),
    (("stable_window_seconds",), "averaging window of scale-down", "load is noisy", "cost matters and load is smooth"),
    (("panic_window_seconds",), "window of the panic test; with 15 s scrapes, the newest sample", "-", "-"),
    (
        ("panic_threshold",),
        "load, in multiples of the capacity ordered, that starts panic",
        "short bursts are routine",
        "bursts must be met at once",
    ),
    (
        ("scale_down_delay_seconds",),
        "how long demand must stay low before pods go",
        "load recurs within minutes",
        "load drops for good and cost matters",
    ),
    (("scale_down_tolerance",), "hysteresis of scale-down", "a ripple flaps pods", "every pod counts"),
    (
        ("max_scale_up_rate", "max_scale_up_pods"),
        f"at most x{SPEC.max_scale_up_rate:g} or +{SPEC.max_scale_up_pods} pods per decision, whichever is more",
        "bursts are large and pods start fast",
        "GPUs are scarce or shared",
    ),
    (("max_scale_down_rate",), "at most halve the count per decision", "-", "drops should be gradual"),
)


def _knob_default(field: str) -> str:
    default = AutoscalingSpec.model_fields[field].default
    return "the plan's maxConcurrentSequences" if default is None else json.dumps(default)


def tuning_table() -> str:
    """The knobs with their wire names and the spec's defaults, as docs/api.md shows them."""
    rows = [
        [
            ", ".join(AutoscalingSpec.model_fields[field].alias or field for field in fields),
            ", ".join(_knob_default(field) for field in fields),
            *advice,
        ]
        for fields, *advice in KNOBS
    ]
    return markdown(["field", "default", "what it does", "raise it when", "lower it when"], rows)


TUNING = (
    """\
## Tuning

The fields of `spec.autoscaling` and the policy share names and defaults.

"""
    + tuning_table()
    + """

Pod startup dominates everything here: a 31B replica that loads weights for minutes leaves only headroom
(targetUtilization) between a load increase and a queue. Cached weights shorten the startup; a lower
targetUtilization buys the headroom.
"""
)

LIMITS = f"""\
## Where it loses, and why

Every miss of the per-trace goal above is on replica-seconds: on every trace the built-in has less violation
time than the HPA. The misses are the code service's **bursts shorter than a startup**: it sends hundreds of
requests at once and then nothing. A panic orders pods for the whole backlog; they are ready
{CONFIG.pod_startup_seconds} s later, after the ready pods have drained it, and the flap damping (a scale-down
undone within the delay doubles the delay) then keeps them through the next bursts. The HPA, a scrape and its
adapter behind, orders later and fewer, and is no worse off for it, since neither side's new pods arrive in
time. The oracle, which sees each burst coming and its end, needs 15-40% fewer replica-seconds than either
for less violation: telling a burst the ready pods will drain from load that will stay takes knowing the
requests' lengths, which the runtimes' queue and batch gauges do not say.

The headroom is the built-in's other cost: it sizes pods for targetUtilization ({SPEC.target_utilization:g}) of
a full batch, {HEADROOM} headroom for load that rises while pods start, where the HPA sizes for the full batch
and lets it run {TOLERANCE:.0%} over before it acts.

What the built-in adds against the HPA on LLM load is measured in the violation columns: it reacts without the
adapter's lag, counts a backlog starting pods will drain only once, and sizes scale-down on running requests at
full-batch speed. The HPA reads a lightly loaded pod's small batch as spare capacity: sixteen pods holding two
requests each ask for two pods, whose full batches then run each token two to four times slower, the same
arrivals hold more requests in flight, and the queue that follows sends it back to sixteen: the HPA's
replica-seconds are above the built-in's on every shape but the ramp and the surge.

The built-in once more with targetUtilization {LEAN_UTILIZATION:g} (the spec knob; no headroom), against the HPA.
Without headroom it runs fewer pods on most traces and has more violation time on most, and on the bursty code
traces it loses to the HPA on both:

"""

REPRODUCE = """\
## Reproduce

```
make bench-autoscaling   # run the suite: docs/benchmarks/autoscaling-suite.json
make generate            # this page and its plots, from that file
gemma-operator simulate-autoscaling --trace surge -o json
gemma-operator simulate-autoscaling --trace-file docs/benchmarks/traces/AzureLLMInferenceTrace_conv.csv \\
  --rate-scale 4 --variant 31b --accelerator h200
```

A trace file is CSV: either `seconds,rps` rows (each rate holds until the next row's second; requests are drawn
with the `--lengths` statistics) or the Azure format's `TIMESTAMP,ContextTokens,GeneratedTokens`, one row per
request. `--rate-scale` and `--time-scale` stretch either.
"""


def suite_results(text: str) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(text)
    return results
