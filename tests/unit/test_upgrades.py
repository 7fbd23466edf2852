"""What an operator upgrade changes and says: --runtime-image in planning and on the command line, status.runtime
and the Deployment's provenance annotations, and the Reconciling condition of a paced rollout."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from gemma_operator.api import GemmaDeploymentStatus, Reason, Runtime, Target
from gemma_operator.catalog import default_accelerator_classes, runtimes
from gemma_operator.planning import Plan, plan, runtime_images
from gemma_operator.reconcile.conditions import TRUE, Paced, compute_status
from gemma_operator.reconcile.provenance import (
    OPERATOR_VERSION,
    OPERATOR_VERSION_ANNOTATION,
    rendered_for,
    runtime_of,
    stamp,
)
from gemma_operator.rendering import render

from .builders import deployment, fitted
from .test_reconcile_conditions import live_deployment, observed, summary

MIRROR = "registry.example.com/mirror/llama.cpp:server-b11243"
SMALL = {"model": {"variant": "e2b"}}


def planned_image(images: Any, **spec: Any) -> str:
    result = plan(deployment(**spec), default_accelerator_classes(), None, images)
    assert isinstance(result, Plan), result
    return result.runtime.image


def test_runtime_image_replaces_the_catalog_default_and_serving_image_still_wins() -> None:
    catalog = runtimes()[Runtime.LLAMACPP].images[Target.CPU].image
    assert planned_image(runtime_images([]), **SMALL) == catalog
    images = runtime_images([f"llamacpp={MIRROR}"])
    assert planned_image(images, **SMALL) == MIRROR
    assert planned_image(images, model={"variant": "e2b"}, placement={"target": "edge"}) == MIRROR
    own = "ghcr.io/ggml-org/llama.cpp:server-b11000"
    assert planned_image(images, model={"variant": "e2b"}, serving={"image": own}) == own
    # Another runtime keeps the catalog's image.
    vllm = runtimes()[Runtime.VLLM].images[Target.GPU].image
    assert planned_image(images, model={"variant": "31b"}) == vllm


def test_runtime_image_for_one_target_and_later_settings_win() -> None:
    images = runtime_images(["tgi=a/tgi:1", "tgi/cpu=a/tgi:1-intel-cpu", "tgi/cpu=b/tgi:2-intel-cpu"])
    assert dict(images) == {(Runtime.TGI, Target.GPU): "a/tgi:1", (Runtime.TGI, Target.CPU): "b/tgi:2-intel-cpu"}


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("llama=x/y:z", "no runtime 'llama' (choose one of tgi, vllm, llamacpp)"),
        ("vllm/cpu=x/y:z", "vllm has no 'cpu' image (its targets: gpu)"),
        ("vllm", "expected RUNTIME[/TARGET]=IMAGE"),
        ("vllm=a b", "expected RUNTIME[/TARGET]=IMAGE"),
    ],
)
def test_a_bad_runtime_image_is_refused_naming_it(setting: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)) as error:
        runtime_images([setting])
    assert repr(setting) in str(error.value)


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--runtime-image", "llama=x/y:z"], "error: --runtime-image 'llama=x/y:z': no runtime 'llama'"),
        (["--upgrade-rollouts-per-class", "0"], "error: --upgrade-rollouts-per-class must be at least 1, not 0"),
        (["--upgrade-rollout-timeout", "0.5"], "error: --upgrade-rollout-timeout must be at least 1, not 0.5"),
    ],
)
def test_run_refuses_bad_upgrade_flags_before_it_starts(flags: list[str], complaint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gemma_operator.cli", "run", *flags], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert complaint in result.stderr


def test_the_deployment_records_the_operator_version_and_generation_and_status_reads_them_back() -> None:
    gd = deployment(**SMALL)
    serving = next(child for child in render(gd, fitted(gd), 1) if child["kind"] == "Deployment")
    stamp(serving, 7)
    assert rendered_for(serving) == 7
    # Recorded on the Deployment's own metadata: a new operator version restarts no pod.
    assert OPERATOR_VERSION_ANNOTATION not in serving["spec"]["template"]["metadata"].get("annotations", {})
    assert serving["metadata"]["annotations"][OPERATOR_VERSION_ANNOTATION] == OPERATOR_VERSION
    runtime = runtime_of(serving)
    assert runtime is not None
    assert runtime["image"] == runtimes()[Runtime.LLAMACPP].images[Target.CPU].image
    assert runtime["args"] == serving["spec"]["template"]["spec"]["containers"][0]["args"]
    assert runtime["operatorVersion"] == OPERATOR_VERSION
    assert GemmaDeploymentStatus.model_validate({"runtime": runtime}).runtime is not None
    del serving["metadata"]["annotations"]
    assert rendered_for(serving) is None


def running(image: str) -> dict[str, Any]:
    return {"image": image, "args": ["--port", "8000"], "operatorVersion": OPERATOR_VERSION}


def test_status_runtime_is_what_the_last_complete_rollout_runs() -> None:
    old, new = running("old:1"), running("new:2")
    assert compute_status(observed(running=new), {}, "t0")["runtime"] == new
    # Mid-rollout the pods still run what the last complete rollout rolled out.
    mid = observed(running=new, deployment=live_deployment(updated=1, total=3))
    assert compute_status(mid, {"runtime": old}, "t0")["runtime"] == old
    assert "runtime" not in compute_status(mid, {}, "t0")


def test_a_waiting_operator_rollout_is_reconciling_and_says_its_place_while_serving_as_before() -> None:
    message = "operator upgrade: the new template waits for a rollout slot of cpu: position 2 of 3 waiting"
    status = compute_status(observed(paced=Paced(waiting=message)), {}, "t0")
    assert summary(status, "Ready")[:2] == (TRUE, Reason.READY)
    assert summary(status, "Reconciling") == (TRUE, Reason.OPERATOR_UPGRADE_PENDING, message)


def test_a_timed_out_operator_rollout_says_so_until_ready() -> None:
    note = "operator upgrade: not Ready within 600 s of taking its rollout slot of cpu"
    rolling = observed(paced=Paced(timed_out=note), deployment=live_deployment(updated=1, total=3))
    reconciling = summary(compute_status(rolling, {}, "t0"), "Reconciling")
    assert reconciling[1] == Reason.ROLLING_OUT
    assert reconciling[2].endswith(note)
    ready = compute_status(replace(rolling, deployment=live_deployment()), {}, "t0")
    assert note not in summary(ready, "Ready")[2]
