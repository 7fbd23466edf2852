"""docs/benchmarks/autoscaling.md and its plots, generated from the simulator so that they cannot go stale.

Run `python -m gemma_operator.cli.autoscaling_docs docs/benchmarks`; a unit test compares the committed files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gemma_operator.autoscaling.benchmark import Comparison, compare
from gemma_operator.autoscaling.scorecard import Scorecard
from gemma_operator.autoscaling.simulation import Run, SimulationConfig
from gemma_operator.autoscaling.traces import BUILTIN_TRACES, RIPPLE, Trace, spike, step
from gemma_operator.cli.simulate import ratio
from gemma_operator.cli.svg import Panel, Series, chart
from gemma_operator.cli.tables import markdown

CONFIG = SimulationConfig()
PLOT_EVERY_SECONDS = 10
BUILTIN_COLOR, BASELINE_COLOR, LOAD_COLOR = "#1f77b4", "#d62728", "#888888"
STEP_HEIGHTS = (6.25, 7.5, 8.5, 10.0, 12.5, 15.0)
BURST_HEIGHTS = (9.0, 12.0, 15.0, 18.0)


def goal_met(builtin: Scorecard, baseline: Scorecard) -> bool:
    """The issue's goal: at most half the SLO-violation time, at most 1.1x the replica-seconds, no more flapping."""
    return (
        builtin.slo_violation_seconds <= 0.5 * baseline.slo_violation_seconds
        and builtin.replica_seconds <= 1.1 * baseline.replica_seconds
        and builtin.scale_direction_changes <= baseline.scale_direction_changes
    )


def _pair(ours: float | None, theirs: float | None) -> str:
    show = ["-" if value is None else f"{value:g}" for value in (ours, theirs)]
    return f"{show[0]} / {show[1]} ({ratio(ours, theirs)})"


def results_table(rows: Sequence[tuple[str, Comparison]]) -> str:
    header = [
        "trace",
        "SLO-violation s",
        "replica-s",
        "direction changes",
        "scale-up reaction s",
        "goal met",
    ]
    body = []
    for label, comparison in rows:
        ours, theirs = comparison.scorecards()
        body.append(
            [
                label,
                _pair(ours.slo_violation_seconds, theirs.slo_violation_seconds),
                _pair(ours.replica_seconds, theirs.replica_seconds),
                _pair(ours.scale_direction_changes, theirs.scale_direction_changes),
                _pair(ours.scale_up_reaction_seconds, theirs.scale_up_reaction_seconds),
                "yes" if goal_met(ours, theirs) else "no",
            ]
        )
    return markdown(header, body)


def _sweep(label: Callable[[float], str], make: Callable[[float], Trace], values: Sequence[float]) -> str:
    return results_table([(label(value), compare(make(value), CONFIG)) for value in values])


def _downsampled(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(values[::PLOT_EVERY_SECONDS])


def plot(comparison: Comparison) -> str:
    """Replicas and queue over time for both autoscalers, with the load in pods for reference."""

    def replicas(run: Run) -> tuple[float, ...]:
        return _downsampled([s.replicas for s in run.seconds])

    def queue(run: Run) -> tuple[float, ...]:
        return _downsampled([s.queue for s in run.seconds])

    load = _downsampled([s.rps / CONFIG.replica_capacity_rps for s in comparison.builtin.seconds])
    return chart(
        f"{comparison.trace}: built-in autoscaler vs the HPA baseline",
        PLOT_EVERY_SECONDS,
        [
            Panel(
                "replicas (ready or starting)",
                (
                    Series("built-in", BUILTIN_COLOR, replicas(comparison.builtin)),
                    Series("HPA baseline", BASELINE_COLOR, replicas(comparison.baseline)),
                    Series("load / replica capacity", LOAD_COLOR, load, dashed=True),
                ),
            ),
            Panel(
                "queue (requests waiting)",
                (
                    Series("built-in", BUILTIN_COLOR, queue(comparison.builtin)),
                    Series("HPA baseline", BASELINE_COLOR, queue(comparison.baseline)),
                ),
            ),
        ],
    )


def _builtin_comparisons(
    amplitude: float | None = None, baseline_utilization: float = 1.0
) -> list[tuple[str, Comparison]]:
    return [
        (name, compare(shape() if amplitude is None else shape(amplitude=amplitude), CONFIG, baseline_utilization))
        for name, shape in BUILTIN_TRACES.items()
    ]


def plots() -> dict[str, str]:
    return {f"autoscaling-{name}.svg": plot(comparison) for name, comparison in _builtin_comparisons()}


def autoscaling_document() -> str:
    sections = (
        INTRO,
        "## Results\n\n"
        + RESULTS_INTRO
        + results_table(_builtin_comparisons())
        + "\n\n"
        + "".join(f"![{name}](autoscaling-{name}.svg)\n\n" for name in BUILTIN_TRACES),
        MODEL,
        ALGORITHM,
        TUNING,
        "## Where it stops winning\n\n"
        + LIMITS_STEP
        + _sweep(lambda high: f"step 5 -> {high:g} rps (+{round(100 * (high / 5 - 1))}%)", step, STEP_HEIGHTS)
        + "\n\n"
        + LIMITS_BURST
        + _sweep(lambda burst: f"burst 6 -> {burst:g} rps ({burst / 6:g}x)", spike, BURST_HEIGHTS)
        + "\n\n"
        + LIMITS_RIPPLE
        + results_table(_builtin_comparisons(amplitude=0.0))
        + "\n\n"
        + LIMITS_HEADROOM
        + results_table(_builtin_comparisons(baseline_utilization=0.8))
        + "\n",
        REPRODUCE,
    )
    return "\n".join(sections)


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "autoscaling.md").write_text(autoscaling_document(), encoding="utf-8")
    for name, svg in plots().items():
        (directory / name).write_text(svg, encoding="utf-8")


INTRO = f"""\
# Autoscaling benchmark: the built-in autoscaler against the Kubernetes HPA

Generated by `python -m gemma_operator.cli.autoscaling_docs docs/benchmarks` from the simulator; a unit test
fails when this page or its plots are stale. `gemma-operator simulate-autoscaling` runs one trace, with your
own numbers, and prints the same four metrics as a table or JSON.

Each trace runs twice through the same discrete-time queueing model: once under the built-in autoscaler (the
very `decide` function the operator's timer calls) and once under a model of the Kubernetes HPA v2 with its
default behaviour. Both get the same per-pod target. The settings are the command's defaults:

- replica capacity {CONFIG.replica_capacity_rps:g} rps and mean request {CONFIG.request_seconds:g} s, so a full pod \
holds {CONFIG.target_in_flight_per_replica:g} requests in flight: the target;
- pod startup {CONFIG.startup_seconds} s, queue-wait SLO {CONFIG.slo_queue_seconds:g} s, {CONFIG.min_replicas} to \
{CONFIG.max_replicas} replicas, metrics scraped every {CONFIG.scrape_seconds} s.

The goal, from the issue: on every trace the built-in has at most 0.5x the baseline's SLO-violation seconds, at
most 1.1x its replica-seconds, and no more scale-direction changes.
"""

RESULTS_INTRO = """\
Each cell is built-in / baseline (ratio). The plots show both runs: pods ordered (ready or starting), the load
in pods at full capacity (dashed), and the queue.

"""

MODEL = f"""\
## What is simulated, and what the numbers mean

- **Time** advances in 1 s steps. **Arrivals** follow the trace's requests per second, as a fluid (fractions of
  requests, no randomness), so every run is deterministic. Each built-in trace carries a +-{RIPPLE:.0%} ripple of three
  incommensurate waves (43 s, 97 s, 211 s): real chat traffic is never flat minute to minute.
- **Service:** each ready pod serves up to the replica capacity; what is not served waits in one shared queue
  (the Service spreads it) for the next second. A pod counts in replica-seconds from creation, because it holds
  its GPUs while it loads weights, and serves only after the startup time. A scale-down removes starting pods
  first.
- **Metrics** per ready pod: waiting = queue / ready pods; running = served per pod x mean request time (Little's
  law), so a fully busy pod reports the target. In-flight = waiting + running.
- **sloViolationSeconds:** seconds in which the mean queue wait, queue / (ready pods x capacity) (how long a new
  request waits for the queue ahead of it to drain), exceeds the SLO. With no ready pod and a queue, it is
  infinite.
- **replicaSeconds:** the sum over seconds of pods ordered, ready or starting.
- **scaleDirectionChanges:** how often the pod count turned around (up after down, or down after up).
- **scaleUpReactionSeconds:** the mean time from the load outgrowing the pods ordered (arrivals above what all
  pods, ready or starting, can serve, below maxReplicas) to the next scale-up decision. An episode that ends
  because the load fell back counts whole. `-` means the load never outgrew the pods ordered.

**The baseline** follows the HPA controller (pkg/controller/podautoscaler) on a Pods metric with an
AverageValue target: desired = ceil(usage ratio x pods with metrics), no change within the 10% tolerance;
pods without metrics (starting ones) count as 0 on a scale-up and as the target on a scale-down, and keep the
current count if they flip the direction; it syncs every 15 s; scale-up is limited to max(+100%, +4 pods) per
15 s with no stabilisation; scale-down takes the highest recommendation of the last 300 s; a new controller
remembers the current count. Metrics reach it through Prometheus and an adapter: it reads the sample scraped one
scrape interval plus 15 s before, from the pods that were ready then.

**The built-in** scrapes the pods itself and decides once per scrape interval, the same cadence as the
baseline's scrapes, so neither samples more often than the other.
"""

ALGORITHM = """\
## How the built-in autoscaler decides

`gemma_operator.autoscaling.decision.decide(policy, state, observation, now, capacity_limit)` is pure: the
timer passes the policy, the state the previous call returned, one scrape of the pods (each ready pod's
waiting and running, or nothing when its scrape failed, plus the number of pods still starting), a monotonic
time, and how many replicas the node inventory can host. It returns the desired replicas, a reason with the
numbers, the flags `panicking`, `limited`, `held`, and the next state.

1. **Load** is in-flight requests summed over the ready pods. The pods are sized at target x
   targetUtilization per pod: 20% headroom by default, because a pod ordered now serves only after its
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
   from flapping a pod.
7. **Flap damping.** A scale-down undone within scaleDownDelaySeconds doubles that delay (up to 4x) for an
   hour: load that comes back every few minutes keeps its pods instead of paying a startup each time.
8. **Hold on missing metrics.** A pod whose scrape failed counts at the known pods' average, and nothing scales
   down while any ready pod's load is unknown; with no load known at all, the count holds. A failed scrape is
   never read as zero load.
9. **Bounds.** At most max(x maxScaleUpRate, + maxScaleUpPods) up and / maxScaleDownRate down per decision,
   then minReplicas and maxReplicas, then the capacity limit of the node inventory (`limited`, with the
   resource in the reason: "limited to 6 by free H100 GPUs").

Against the HPA on LLM load, this removes the adapter lag, the tolerance band on the way up, the overshoot of
counting a queue that starting pods will drain, and the repeated startups of a recurring load: on the
oscillating trace the baseline lets its pods go about 330 s into each 360 s lull and meets every batch short.
"""

KNOBS = (
    ("minReplicas, maxReplicas", "1, 1", "bounds of the count", "-", "-"),
    (
        "targetInFlightPerReplica",
        "the plan's maxConcurrentSequences",
        "requests (waiting + running) a pod holds at full speed",
        "pods keep up with more",
        "latency per token at a full batch is too high",
    ),
    (
        "targetUtilization",
        "0.8",
        "fraction of the target the count is sized for: headroom for increases while pods start",
        "cost matters more than tail latency",
        "load rises faster than pods start",
    ),
    ("stableWindowSeconds", "60", "averaging window of scale-down", "load is noisy", "cost matters and load is smooth"),
    ("panicWindowSeconds", "6", "window of the panic test; with 15 s scrapes, the newest sample", "-", "-"),
    (
        "panicThreshold",
        "2.0",
        "load, in multiples of the capacity ordered, that starts panic",
        "short bursts are routine",
        "bursts must be met at once",
    ),
    (
        "scaleDownDelaySeconds",
        "300",
        "how long demand must stay low before pods go",
        "load recurs within minutes",
        "load drops for good and cost matters",
    ),
    ("scaleDownTolerance", "0.05", "hysteresis of scale-down", "a ripple flaps pods", "every pod counts"),
    (
        "maxScaleUpRate, maxScaleUpPods",
        "2.0, 4",
        "at most x2 or +4 pods per decision, whichever is more",
        "bursts are large and pods start fast",
        "GPUs are scarce or shared",
    ),
    ("maxScaleDownRate", "2.0", "at most halve the count per decision", "-", "drops should be gradual"),
)

TUNING = (
    """\
## Tuning

The fields of `spec.autoscaling` and the policy share names and defaults.

"""
    + markdown(["field", "default", "what it does", "raise it when", "lower it when"], KNOBS)
    + """

Pod startup dominates everything here: a 31B replica that loads weights for minutes leaves only headroom
(targetUtilization) between a load increase and a queue. Cached weights shorten the startup; a lower
targetUtilization buys the headroom.
"""
)

LIMITS_STEP = """\
Nothing serves a load increase beyond the pods already ready until new pods finish starting. The built-in
keeps 20% headroom and orders pods about 30 s sooner than the baseline. A step within the headroom costs it no
violation at all, but the headroom is paid in replica-seconds, above 1.1x when the baseline has no overshoot
to give back. A step well past the headroom leaves it only the faster reaction: the queue grows for a whole
startup either way, and the violation ratio stays above 0.5. A sweep of the step height, same trace shape:

"""

LIMITS_BURST = """\
And of the first burst's height in the spike trace:

"""

LIMITS_RIPPLE = """\
The built-in traces without their ripple. On the spike trace, the ripple's peaks make the built-in hold one
more pod before the burst; without them it keeps one fewer and loses more time to the burst:

"""

LIMITS_HEADROOM = """\
How much of the gain is headroom? The same traces against an HPA whose target is also 80% of the pod's
capacity (the same headroom as the built-in):

"""

REPRODUCE = """\
## Reproduce

```
python -m gemma_operator.cli.autoscaling_docs docs/benchmarks    # this page and the plots
gemma-operator simulate-autoscaling --trace step -o json        # one trace, the four metrics per side
gemma-operator simulate-autoscaling --trace-file my-trace.csv --startup-seconds 300 --max 16
```

A trace file is CSV with the header `seconds,rps`; each row's rate holds until the next row's second, and the
last row lasts one second.
"""


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/benchmarks"))
