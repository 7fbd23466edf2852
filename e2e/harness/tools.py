"""The plane's own command-line tools (kubectl at the server's version, helm, gemma-plane), run with its environment."""

from __future__ import annotations

import subprocess

from harness.config import ROOT
from harness.plane import Plane
from harness.waiting import wait_for


def run_tool(
    plane: Plane,
    binary: str,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run one of the plane's tools from the repository root; raise with its stderr when ``check`` and it fails."""
    result = subprocess.run(
        [str(plane.bin_dir / binary), *args],
        env=plane.env,
        input=input,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{binary} {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    return result


def kubectl(
    plane: Plane, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """The plane's kubectl (the server's version)."""
    return run_tool(plane, "kubectl", *args, input=input, check=check, timeout=timeout)


def wait_established(plane: Plane, crd: str, timeout: float = 60.0) -> None:
    """Until the API server serves a CRD: `kubectl wait --for condition=established` exits with an accessor error
    when it reads the CRD before its status has any condition, so this asks for the condition itself."""

    def established() -> bool:
        jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        return kubectl(plane, "get", f"crd/{crd}", "-o", jsonpath, check=False).stdout.strip() == "True"

    wait_for(established, timeout=timeout, message=f"CRD {crd} established")


def helm(plane: Plane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The pinned helm, with time enough for an install that waits for readiness."""
    return run_tool(plane, "helm", *args, check=check, timeout=180)


def gemma_plane(
    plane: Plane, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The plane's own binary: nodes --check, ports, kstatus, argocd-health, wait ..."""
    return run_tool(plane, "gemma-plane", *args, input=input, check=check, timeout=180)
