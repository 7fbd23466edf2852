"""The benchmark's own plane and namespaces: started with its own state dir and a generated inventory."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from bench.kube import AsyncKube, KubeError
from bench.workload import inventory
from operator_process import CRD
from plane import ROOT, Plane, kubectl, start_plane, stop_plane

BENCH_DIR = ROOT / ".e2e" / "bench"


def plane_env(state: Path, crs: int) -> dict[str, str]:
    """Environment for e2e/cluster/up: a separate state dir and an inventory sized for ``crs``."""
    state.parent.mkdir(parents=True, exist_ok=True)
    inventory_file = state.parent / f"inventory-{crs}.yaml"
    text = inventory(crs)
    if not inventory_file.exists() or inventory_file.read_text() != text:
        inventory_file.write_text(text)
    return {**os.environ, "GEMMA_E2E_STATE": str(state), "GEMMA_E2E_INVENTORY": str(inventory_file)}


def bring_up(env: dict[str, str]) -> Plane:
    """Start (or reuse) the plane and install the CRD."""

    def log(line: str) -> None:
        sys.stderr.write(line)

    plane = start_plane(log=log, env=env)
    kubectl(plane, "apply", "--server-side", "-f", str(CRD))
    kubectl(plane, "wait", "--for", "condition=established", "crd/gemmadeployments.serving.gemma.dev")
    return plane


def tear_down(env: dict[str, str]) -> None:
    result = stop_plane(env)
    sys.stderr.write(result.stderr)


async def fresh_namespace(kube: AsyncKube, name: str, timeout: float = 600) -> None:
    """Delete ``name`` if a previous run left it, wait until it is gone, and create it anew."""
    await delete_namespace(kube, name, timeout)
    await kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while not await kube.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default", missing_ok=True):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no default ServiceAccount in {name} after 60 s")
        await asyncio.sleep(0.2)


async def delete_namespace(kube: AsyncKube, name: str, timeout: float = 600) -> float:
    """Delete a namespace and wait until it (and so every pod in it) is gone; the seconds it took."""
    started = time.monotonic()
    try:
        await kube.request("DELETE", f"/api/v1/namespaces/{name}", {"propagationPolicy": "Background"})
    except KubeError as error:
        if error.status != 404:
            raise
        return 0.0
    while await kube.request("GET", f"/api/v1/namespaces/{name}", missing_ok=True):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"namespace {name} still terminating after {timeout:g} s")
        await asyncio.sleep(1)
    return time.monotonic() - started
