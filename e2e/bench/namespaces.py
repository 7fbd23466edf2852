"""The benchmark's namespaces, created and deleted through its own async client."""

from __future__ import annotations

import asyncio
import time

from bench.kube import AsyncKube, KubeError


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
