"""The chaos suite's own plane (its API server and etcd get killed, so not the shared one) and its operator."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from bench.workload import inventory
from operator_process import CRD, OperatorProcess, operator_env
from plane import ROOT, Plane, kubectl, start_plane, stop_plane

CHAOS_DIR = ROOT / ".e2e" / "chaos"
# Room for the largest scenario: 100 single-replica e2b CRs on CPU nodes, and GPU CRs on H100 nodes.
CAPACITY_CRS = 150


def chaos_env() -> dict[str, str]:
    CHAOS_DIR.mkdir(parents=True, exist_ok=True)
    inventory_file = CHAOS_DIR / "inventory.yaml"
    text = inventory(CAPACITY_CRS)
    if not inventory_file.exists() or inventory_file.read_text() != text:
        inventory_file.write_text(text)
    return {
        **os.environ,
        "GEMMA_E2E_STATE": str(CHAOS_DIR / "state"),
        "GEMMA_E2E_INVENTORY": str(inventory_file),
    }


def start_chaos_plane(log: Callable[[str], None] | None = None) -> Plane:
    plane = start_plane(log=log or _stderr, env=chaos_env())
    kubectl(plane, "apply", "--server-side", "-f", str(CRD))
    kubectl(plane, "wait", "--for", "condition=established", "crd/gemmadeployments.serving.gemma.dev")
    return plane


def _stderr(line: str) -> None:
    sys.stderr.write(line)


def stop_chaos_plane(plane: Plane) -> str:
    return stop_plane(plane.env).stderr


def chaos_operator_process(plane: Plane, log_path: Path) -> OperatorProcess:
    return OperatorProcess(operator_env(plane.env), log_path)
