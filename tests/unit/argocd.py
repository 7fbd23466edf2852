"""Argo CD's health check run as Argo CD runs it: in gopher-lua, through `gemma-plane argocd-health`.

Argo CD embeds gopher-lua (a Lua 5.1 in Go) and opens only some of its libraries for a health.lua;
e2e/cluster/argocd_health.go does the same, so the script is checked in the VM it will meet.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = ROOT / "manifests" / "gitops" / "argocd" / "health.lua"
# e2e/cluster/lib.sh builds it there; `make unit` builds it first (make cluster-build).
PLANE = Path(os.environ.get("GEMMA_E2E_BIN", ROOT / ".e2e" / "bin")) / "gemma-plane"


def argocd_health_of(objects: Sequence[dict[str, Any]], script: Path = HEALTH_LUA) -> list[dict[str, str]]:
    """For each live object, {"status", "message"} from the script, or {"error"} where it raised."""
    if not PLANE.is_file():
        pytest.fail(f"{PLANE} is missing: run `make cluster-build` (make unit does), which builds it from e2e/cluster")
    result = subprocess.run(
        [str(PLANE), "argocd-health", str(script)],
        input=json.dumps(list(objects)),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(
            f"gemma-plane argocd-health exited {result.returncode} (stale binary? run `make cluster-build`):\n"
            f"{result.stderr}"
        )
    answers: list[dict[str, str]] = json.loads(result.stdout)
    return answers


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """Argo CD's (status, message) for one live object; fails the test if the script raised."""
    [answer] = argocd_health_of([obj])
    if "error" in answer:
        pytest.fail(f"health.lua raised in gopher-lua: {answer['error']}")
    return answer["status"], answer["message"]
