"""`python -m bench` (PYTHONPATH=e2e): the operator benchmark on a plane of its own. See docs/benchmarks/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from bench import report
from bench.cluster import BENCH_DIR, bring_up, plane_env, tear_down
from bench.procstat import machine
from bench.profile import Profiler
from bench.run import Bench, Settings
from plane import ROOT


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
    env = plane_env(args.state, args.crs)
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
    plane = bring_up(env)
    try:
        results = asyncio.run(Bench(plane, settings).run())
    finally:
        plane.api.close()  # type: ignore[no-untyped-call]
        if not args.keep:
            tear_down(env)
    report.write(results, machine(), args.out)
    print(json.dumps(results.latest(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
