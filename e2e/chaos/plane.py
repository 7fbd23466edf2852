"""The chaos suite's own plane: its API server and etcd get killed, so never the shared one."""

from __future__ import annotations

import os

from bench.workload import plane_for
from harness.config import ROOT, PlaneConfig

CHAOS_DIR = ROOT / ".e2e" / "chaos"
# Room for the largest scenario: 100 single-replica e2b CRs on CPU nodes, and GPU CRs on H100 nodes.
CAPACITY_CRS = 150
# The full chaos suite runs only when asked for (`make chaos` sets GEMMA_CHAOS=1): `pytest -m "not e2e"` (make unit)
# would pick its marker-chaos tests too.
FULL_WANTED = os.environ.get("GEMMA_CHAOS") == "1"


def chaos_config(config: PlaneConfig) -> PlaneConfig:
    """The session's settings for a plane in .e2e/chaos/state, with nodes for CAPACITY_CRS GemmaDeployments."""
    return plane_for(config, CHAOS_DIR / "state", CAPACITY_CRS)
