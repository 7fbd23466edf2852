"""`python -m bench` (PYTHONPATH=e2e): the operator benchmark on a plane of its own. See docs/benchmarks/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from bench import report
from bench.procstat import machine
from bench.profile import Profiler
from bench.run import Bench, Settings
from bench.workload import plane_for
from harness.config import ROOT, PlaneConfig
from harness.plane import running
from operator_process import install_crd

BENCH_DIR = ROOT / ".e2e" / "bench"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--crs", type=int, default=int(os.environ.get("BENCH_CRS", "1000")))
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight when creating")
    parser.add_argument("--steady-seconds", type=float, default=float(os.environ.get("BENCH_STEADY_SECONDS", "300")))
    parser.add_argument("--profile", action="store_true", default=os.environ.get("BENCH_PROFILE") == "1")
    parser.add_argument("--keep", action="store_true", default=os.environ.get("BENCH_KEEP") == "1")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--state", type=Path, default=BENCH_DIR / "state")
    parser.add_argument("--skip", default="", help="phases to leave out (development): steady,resync,spec,delete")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if args.profile and not Profiler.available():
        sys.exit("bench: --profile needs py-spy (pip install py-spy)")
    # Stopped afterwards unless --keep, whatever GEMMA_E2E_DOWN says: a benchmark plane is large.
    config = plane_for(replace(PlaneConfig.from_environment(), down_at_end=not args.keep), args.state, args.crs)
    work_dir = BENCH_DIR / "run"
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        crs=args.crs,
        concurrency=args.concurrency,
        steady_seconds=args.steady_seconds,
        profile=args.profile,
        work_dir=work_dir,
        skip=frozenset(filter(None, args.skip.split(","))),
    )
    with running(config, log=lambda line: print(line, end="", file=sys.stderr)) as plane:
        install_crd(plane)
        results = asyncio.run(Bench(plane, settings).run())
    report.write(results, machine(), args.out)
    print(json.dumps(results.latest(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
