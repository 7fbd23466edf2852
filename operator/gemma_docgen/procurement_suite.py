"""The procurement measurements: every default configuration of `gemma-operator size` on slices of the Azure
conversation and code traces at several rates, under the built-in autoscaler.

`python -m gemma_docgen.procurement_suite` (`make bench-procurement`, about a minute) writes
docs/benchmarks/procurement-suite.json: each slice's measurements (sizing.Measurement.as_json). docs/procurement.md
and its plot are priced and judged from that file by `make generate`, so the fast unit tests can check the page
without simulating.
"""

from __future__ import annotations

import json
from pathlib import Path

from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.autoscaling.sizing import configurations, measure
from gemma_operator.autoscaling.traces import read_workload_csv, scaled, window

TRACES = Path("docs/benchmarks/traces")
RESULTS = Path("docs/benchmarks/procurement-suite.json")
SERVICES = {"conv": "conversation", "code": "code"}
# Twenty minutes from the start of each trace, the first five the warm-up (sizing.WARM_UP_SECONDS): enough for
# scale-ups and their settling, and the suite stays at about a minute.
WINDOW_SECONDS = 1200
RATE_SCALES = (1.0, 2.0, 4.0, 8.0)


def run_suite(root: Path) -> dict[str, object]:
    max_tokens = SimulationConfig().max_context_tokens
    slices: list[dict[str, object]] = []
    for service, name in SERVICES.items():
        text = (root / TRACES / f"AzureLLMInferenceTrace_{service}.csv").read_text(encoding="utf-8")
        base = window(read_workload_csv(f"azure-{service}", text, max_tokens=max_tokens), 0, WINDOW_SECONDS)
        for rate in RATE_SCALES:
            workload = scaled(base, rate)
            measurements = [measure(workload, c).as_json() for c in configurations()]
            slices.append(
                {
                    "service": name,
                    "trace": workload.name,
                    "rateScale": rate,
                    "seconds": workload.seconds,
                    "requests": len(workload.requests),
                    "measurements": measurements,
                }
            )
            print(workload.name, len(workload.requests), flush=True)
    return {"windowSeconds": WINDOW_SECONDS, "slices": slices}


def main() -> None:
    root = Path()
    (root / RESULTS).write_text(json.dumps(run_suite(root), indent=1) + "\n", encoding="utf-8")
    print(RESULTS)


if __name__ == "__main__":
    main()
