"""The post-rollout smoke check against the simulated runtimes: one per runtime answers, a loading one does not."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gemma import Gemma, manifest
from harness.plane import Plane
from harness.simulator import ServingSim, base_url
from harness.waiting import wait_for
from operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


def generated_tokens(url: str) -> float:
    """llamacpp:tokens_predicted_total on a llama-server's own /metrics."""
    page = requests.get(f"{url}/metrics", timeout=5)
    page.raise_for_status()
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            if sample.name == "llamacpp:tokens_predicted_total":
                return sample.value
    raise AssertionError(f"no llamacpp:tokens_predicted_total on {url}/metrics:\n{page.text}")


@pytest.fixture
def gemma(plane: Plane, namespace: str) -> Gemma:
    return Gemma(plane.api, namespace)


@pytest.mark.parametrize(
    ("runtime", "spec"),
    [
        (
            "tgi",
            {"model": {"family": "gemma-3", "variant": "4b"}, "placement": {"target": "gpu", "acceleratorClass": "l4"}},
        ),
        ("vllm", {"model": {"variant": "26b-a4b"}}),
        ("llamacpp", {"model": {"variant": "e2b"}}),
    ],
)
def test_each_runtime_is_verified(
    gemma: Gemma,
    servingsim: ServingSim,
    operator: OperatorProcess,
    request: pytest.FixtureRequest,
    runtime: str,
    spec: dict[str, Any],
) -> None:
    gemma.create(manifest("smoke", **spec))
    ready = gemma.wait("smoke", "Ready", timeout=120)
    assert ready["status"]["plan"]["runtime"]["name"] == runtime
    verified = next(c for c in ready["status"]["conditions"] if c["type"] == "Verified")
    assert verified["status"] == "True"
    assert verified["reason"] == "Answered"
    (pod,) = gemma.pods("smoke")
    served = servingsim.pod(gemma.namespace, pod.metadata.name)
    assert served is not None
    assert served["runtime"] == runtime
    # The chat completion really went over HTTP to the pod: the simulator counted it, or the real llama-server did.
    if runtime == "llamacpp":
        request.getfixturevalue("real_llamacpp")
        assert served["real"] is not None, served
        assert generated_tokens(base_url(served)) >= 1
    else:
        assert served["requests"]["byRoute"].get("POST /v1/chat/completions", 0) >= 1


def test_an_in_house_image_is_verified_as_the_runtime_the_operator_labels_it(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess
) -> None:
    """The image names no runtime, so the simulator answers only because it reads the operator's runtime label."""
    in_house = {"image": "registry.example.com/in-house/llama-server:1"}
    gemma.create(manifest("in-house", model={"variant": "e2b"}, serving=in_house))
    ready = gemma.wait("in-house", "Ready", timeout=120)
    assert ready["status"]["plan"]["runtime"]["image"] == in_house["image"]
    assert gemma.condition("in-house", "Verified")["reason"] == "Answered"
    (pod,) = gemma.pods("in-house")
    served = servingsim.pod(gemma.namespace, pod.metadata.name)
    assert served is not None
    assert served["runtime"] == "llamacpp"


def test_a_runtime_that_does_not_answer_is_not_verified(
    gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess, simulated_llamacpp: str
) -> None:
    gemma.create(manifest("mute", model={"variant": "e2b"}))
    gemma.wait("mute", "Verified")
    (pod,) = gemma.pods("mute")
    servingsim.set_load(gemma.namespace, pod.metadata.name, loading=True)
    # A change that keeps the pod template makes a new generation on the same pod: verified again.
    changed = gemma.patch_spec("mute", {"autoscaling": {"maxReplicas": 2}})
    failed = gemma.wait("mute", "Verified", status="False", generation=changed["metadata"]["generation"], timeout=90)
    verified = next(c for c in failed["status"]["conditions"] if c["type"] == "Verified")
    assert "503" in verified["message"]
    assert gemma.condition("mute", "Ready")["status"] == "False"
    assert gemma.condition("mute", "Stalled")["status"] == "False"

    servingsim.set_load(gemma.namespace, pod.metadata.name, loading=False)
    wait_for(
        lambda: gemma.condition("mute", "Ready").get("status") == "True",
        timeout=150,
        message="the recheck finding it answering",
    )


def test_verification_can_be_turned_off(gemma: Gemma, operator: OperatorProcess) -> None:
    gemma.create(manifest("unverified", model={"variant": "e2b"}, serving={"verify": False}))
    ready = gemma.wait("unverified", "Ready")
    assert all(c["type"] != "Verified" for c in ready["status"]["conditions"])


def test_each_lora_adapter_is_asked_by_name(gemma: Gemma, servingsim: ServingSim, operator: OperatorProcess) -> None:
    adapters = [
        {"name": "sql", "repository": "example/gemma-4-26b-sql-lora"},
        {"name": "support-chat", "repository": "example/gemma-4-26b-support-lora"},
    ]
    gemma.create(manifest("lora", model={"variant": "26b-a4b"}, adapters=adapters, serving={"lora": {"maxLoaded": 2}}))
    ready = gemma.wait("lora", "Ready", timeout=120)
    status = ready["status"]
    assert status["adapters"] == ["sql", "support-chat"]
    assert status["plan"]["memory"]["adaptersGiB"] > 0
    args = status["plan"]["runtime"]["args"]
    assert "--enable-lora" in args
    modules = args.index("--lora-modules")
    assert args[modules + 1 : modules + 3] == [f"{a['name']}={a['repository']}" for a in adapters]
    verified = gemma.condition("lora", "Verified")
    assert verified["status"] == "True"
    assert verified["message"].endswith("; adapters sql, support-chat answered")
    (pod,) = gemma.pods("lora")
    served = servingsim.pod(gemma.namespace, pod.metadata.name)
    assert served is not None
    # One chat completion to the model and one to each adapter, by name, over HTTP to the pod.
    assert served["requests"]["byModel"] == {"google/gemma-4-26B-A4B-it": 1, "sql": 1, "support-chat": 1}
