"""An operator upgrade on the local plane: the operator restarted with another default llama.cpp image renders a new
template for every GemmaDeployment, and the rollouts go one GemmaDeployment at a time (one slot for the CPU pool),
each waiting with Reconciling=OperatorUpgradePending, while a spec change rolls at once."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gemma import Gemma, manifest
from harness.plane import Plane
from harness.waiting import wait_for
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

# Another registry's copy of the same release: the simulator serves it as llama.cpp (by the repository's name), and
# the planner plans it with the pinned release's rules.
MIRROR = "mirror.example/ggml-org/llama.cpp:server-b11243"
PACED = ("up-a", "up-b", "up-c")
# Its spec changes while it waits: it rolls at once, outside the line.
EDITED = "up-d"
UPGRADE_SECONDS = 300


@pytest.fixture
def gemma(plane: Plane, simulated_llamacpp: str) -> Gemma:
    return Gemma(plane.api, simulated_llamacpp)


@pytest.fixture
def upgraded(operator: OperatorProcess, gemma: Gemma) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with MIRROR as llama.cpp's default image; as it was, after."""
    before = operator.args
    operator.stop()
    operator.args = (*before, "--runtime-image", f"llamacpp={MIRROR}")
    operator.start()
    try:
        yield operator
    finally:
        for name in (*PACED, EDITED):
            gemma.delete(name)
        wait_for(lambda: not gemma.children()["Deployment"], timeout=60, message="the GemmaDeployments' children gone")
        operator.stop()
        operator.args = before
        operator.start()


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def rolling(gemma: Gemma, name: str) -> bool:
    """Whether the GemmaDeployment's pods are changing: some run the new image, and not all of them do and are
    ready (an old pod still runs beside a new one, or a new one is not ready yet)."""
    pods = [pod for pod in gemma.pods(name) if pod.metadata.deletion_timestamp is None]
    new = [pod for pod in pods if pod.spec.containers[0].image == MIRROR]
    return bool(new) and (len(new) < len(pods) or not all(map(_ready, new)))


def upgraded_and_ready(gemma: Gemma, name: str) -> bool:
    pods = [pod for pod in gemma.pods(name) if pod.metadata.deletion_timestamp is None]
    status = gemma.get(name).get("status") or {}
    ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {}).get("status") == "True"
    return bool(pods) and all(pod.spec.containers[0].image == MIRROR and _ready(pod) for pod in pods) and ready


def runtime_on(gemma: Gemma, name: str, image: str) -> dict[str, Any] | None:
    """status.runtime once it names the image."""
    runtime: dict[str, Any] = (gemma.get(name).get("status") or {}).get("runtime") or {}
    return runtime if runtime.get("image") == image else None


def test_an_upgrade_rolls_one_gemmadeployment_at_a_time_and_a_spec_change_at_once(
    gemma: Gemma, operator: OperatorProcess, request: pytest.FixtureRequest
) -> None:
    for name in (*PACED, EDITED):
        gemma.create(manifest(name, model={"variant": "e2b"}, serving={"verify": False}))
    for name in (*PACED, EDITED):
        gemma.wait(name, "Ready", timeout=120)
    old_image = gemma.get(PACED[0])["status"]["runtime"]["image"]
    assert old_image != MIRROR
    pods_before = {name: {pod.metadata.uid for pod in gemma.pods(name)} for name in PACED}

    request.getfixturevalue("upgraded")
    pending_seen: set[str] = set()
    finished: dict[str, float] = {}
    edited_at = 0.0
    edited_before: set[str] = set()
    deadline = time.monotonic() + UPGRADE_SECONDS
    while len(finished) < len(PACED) + 1:
        now = time.monotonic()
        assert now < deadline, f"not all upgraded within {UPGRADE_SECONDS} s; pending: {pending_seen}, done: {finished}"
        changing = {name for name in PACED if rolling(gemma, name)}
        assert len(changing) <= 1, f"{sorted(changing)} roll at once"
        for name in (*PACED, EDITED):
            if name not in finished and upgraded_and_ready(gemma, name):
                finished[name] = now
            reconciling = gemma.condition(name, "Reconciling")
            if reconciling.get("reason") == "OperatorUpgradePending":
                pending_seen.add(name)
                assert "position" in reconciling["message"]
        if EDITED in pending_seen and not edited_at:
            # Last in line (by name): a spec change lets it roll at once, with the new image.
            edited_before = {pod.metadata.uid for pod in gemma.pods(EDITED)}
            gemma.patch_spec(EDITED, {"serving": {"verify": False, "env": [{"name": "UPGRADE", "value": "1"}]}})
            edited_at = now
        time.sleep(0.2)

    assert edited_at, "the last in line never waited with OperatorUpgradePending"
    assert {pod.metadata.uid for pod in gemma.pods(EDITED)}.isdisjoint(edited_before)
    # The spec change did not wait for the paced ones ahead of it.
    assert finished[EDITED] < max(finished[name] for name in PACED)
    # Everyone but the first in line waited for a slot, and every paced one rolled: new pods, on the new image.
    assert pending_seen >= set(PACED[1:])
    assert [name for name, _ in sorted(finished.items(), key=lambda item: item[1]) if name in PACED] == list(PACED)
    for name in PACED:
        assert {pod.metadata.uid for pod in gemma.pods(name)}.isdisjoint(pods_before[name])
        runtime = wait_for(
            functools.partial(runtime_on, gemma, name, MIRROR), timeout=60, message=f"{name}: status.runtime"
        )
        assert runtime["operatorVersion"]
        assert gemma.condition(name, "Reconciling")["status"] == "False"
