"""Fast tests of the serving simulator: real HTTP on 127.x addresses, no cluster."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import text_generation
from prometheus_client.parser import text_string_to_metric_families

from expected import fitting_plan
from gemma_operator.api import Runtime, parse_deployment
from gemma_operator.catalog import runtimes
from gemma_operator.catalog.versions.metric_names import metric_table
from gemma_operator.catalog.versions.options import image_version
from gemma_operator.rendering import RUNTIME_LABEL, render
from servingsim.inprocess import InProcessSim, free_port
from servingsim.loopback import NotLoopbackError, parse_host_port, require_loopback
from servingsim.modelconfig import llamacpp_config, lora_module_names, tgi_config, vllm_config
from servingsim.runtimes import RUNTIMES, runtime_for_image
from servingsim.watcher import Refusal, Target, target_for_pod

E2E_DIR = Path(__file__).resolve().parent
TGI_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.5"
VLLM_IMAGE = "vllm/vllm-openai:v0.19.0"
LLAMACPP_IMAGE = "ghcr.io/ggml-org/llama.cpp:server"

_octets = itertools.count(random.randrange(0, 200))


def fresh_ip() -> str:
    n = next(_octets)
    return f"127.{231 + (n // 65536) % 20}.{(n // 256) % 256}.{n % 256 or 1}"


def pod(
    name: str,
    image: str,
    *,
    ip: str | None = None,
    ports: tuple[int, ...] = (8000,),
    phase: str = "Running",
    args: list[str] | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    namespace: str = "sim",
    uid: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "ports": [{"containerPort": p, "protocol": "TCP"} for p in ports],
    }
    if args is not None:
        container["args"] = args
    if command is not None:
        container["command"] = command
    if env is not None:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    status: dict[str, Any] = {"phase": phase}
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": uid or f"uid-{name}",
            "labels": labels or {},
        },
        "spec": {"containers": [container]},
        "status": status,
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[InProcessSim]:
    with InProcessSim() as running:
        yield running


def served(sim: InProcessSim, name: str, image: str, **kw: Any) -> str:
    """Apply a Running pod on a fresh 127.x IP and a free port; return its base URL."""
    ip = fresh_ip()
    port = free_port(ip)
    sim.apply_pod(pod(name, image, ip=ip, ports=(port,), **kw))
    return f"http://{ip}:{port}"


def put_load(sim: InProcessSim, name: str, namespace: str = "sim", **load: Any) -> Any:
    r = requests.put(f"{sim.control_url}/pods/{namespace}/{name}", json=load, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def metric_value(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in metrics:\n{text}")


# --- pure decisions -----------------------------------------------------------------


def test_image_decides_runtime() -> None:
    assert runtime_for_image(TGI_IMAGE) == "tgi"
    assert runtime_for_image("ghcr.io/huggingface/text-generation-inference:3.3.7-intel-cpu") == "tgi"
    assert runtime_for_image(VLLM_IMAGE) == "vllm"
    assert runtime_for_image(LLAMACPP_IMAGE) == "llamacpp"
    assert runtime_for_image("registry:5000/nginx:1.27") is None
    assert runtime_for_image("busybox") is None


def test_running_loopback_pod_becomes_target() -> None:
    decision = target_for_pod(pod("a", VLLM_IMAGE, ip="127.0.5.9", ports=(8000, 8001)))
    assert isinstance(decision, Target)
    assert (decision.ip, decision.ports, decision.runtime) == (
        "127.0.5.9",
        (8000, 8001),
        "vllm",
    )


def test_pending_or_ipless_or_plain_pods_are_ignored() -> None:
    assert target_for_pod(pod("a", VLLM_IMAGE, ip=None)) is None
    assert target_for_pod(pod("a", VLLM_IMAGE, ip="127.0.0.9", phase="Pending")) is None
    assert target_for_pod(pod("a", "nginx:1.27", ip="127.0.0.9")) is None


def test_non_loopback_ip_is_refused_explicitly() -> None:
    for ip in ("10.244.0.5", "192.168.1.2", "0.0.0.0", "::1"):
        decision = target_for_pod(pod("a", VLLM_IMAGE, ip=ip))
        assert isinstance(decision, Refusal), ip
        assert "127.0.0.0/8" in decision.reason


def test_runtime_label_wins_over_image_and_bad_label_is_refused() -> None:
    labelled = target_for_pod(
        pod(
            "a",
            "example.com/custom-server:1",
            ip="127.0.0.9",
            labels={RUNTIME_LABEL: "tgi"},
        )
    )
    assert isinstance(labelled, Target)
    assert labelled.runtime == "tgi"
    bad = target_for_pod(pod("a", VLLM_IMAGE, ip="127.0.0.9", labels={RUNTIME_LABEL: "sglang"}))
    assert isinstance(bad, Refusal)
    assert "sglang" in bad.reason


def test_every_runtime_the_operator_labels_is_one_the_simulator_serves() -> None:
    assert {runtime.value for runtime in Runtime} <= set(RUNTIMES)


def operator_pod(spec: dict[str, Any], ip: str) -> tuple[str, dict[str, Any]]:
    """The runtime the operator plans for ``spec``, and a Running pod made from the Deployment it renders."""
    body = {"metadata": {"name": "chat", "namespace": "sim"}, "spec": spec}
    deployment = parse_deployment(body)
    report = fitting_plan(deployment)
    rendered = next(child for child in render(deployment, report) if child["kind"] == "Deployment")
    template = rendered["spec"]["template"]
    pod = {
        "metadata": {"namespace": "sim", "name": "chat-0", "uid": "uid-chat-0", **template["metadata"]},
        "spec": template["spec"],
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }
    return report.runtime.name.value, pod


@pytest.mark.parametrize(
    "spec",
    [
        {"model": {"family": "gemma-3", "variant": "4b"}, "placement": {"target": "gpu", "acceleratorClass": "l4"}},
        {"model": {"variant": "31b"}},
        {"model": {"variant": "e2b"}},
    ],
    ids=["tgi", "vllm", "llamacpp"],
)
def test_an_operator_pod_with_an_in_house_image_is_served_as_the_runtime_it_is_labelled(spec: dict[str, Any]) -> None:
    """No image marker names the runtime: only the operator's runtime label can."""
    image = "registry.example.com/in-house/gemma-server:1"
    assert runtime_for_image(image) is None
    runtime, pod = operator_pod({**spec, "serving": {"image": image}}, "127.0.7.9")
    assert pod["metadata"]["labels"][RUNTIME_LABEL] == runtime
    decision = target_for_pod(pod)
    assert isinstance(decision, Target), decision
    assert (decision.runtime, decision.container, decision.ip) == (runtime, "server", "127.0.7.9")
    assert decision.ports == tuple(port["containerPort"] for port in pod["spec"]["containers"][0]["ports"])


def test_host_network_pod_is_refused() -> None:
    host = pod("a", VLLM_IMAGE, ip="127.0.0.1")
    host["spec"]["hostNetwork"] = True
    decision = target_for_pod(host)
    assert isinstance(decision, Refusal)
    assert "hostNetwork" in decision.reason


def test_pod_without_tcp_ports_is_refused() -> None:
    decision = target_for_pod(pod("a", VLLM_IMAGE, ip="127.0.0.9", ports=()))
    assert isinstance(decision, Refusal)
    assert "containerPort" in decision.reason


def test_loopback_guard() -> None:
    assert require_loopback("127.12.0.3") == "127.12.0.3"
    for bad in ("10.0.0.1", "0.0.0.0", "::1", "localhost", "8.8.8.8"):
        with pytest.raises(NotLoopbackError):
            require_loopback(bad)
    assert parse_host_port("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError, match="out of range"):
        parse_host_port("127.0.0.1:70000")


def test_model_ids_come_from_args_env_or_pod_name() -> None:
    assert tgi_config(["--model-id", "google/gemma-3-27b-it"], {}, "p").model_id == "google/gemma-3-27b-it"
    assert tgi_config([], {"MODEL_ID": "google/gemma-3-1b-it"}, "p").model_id == "google/gemma-3-1b-it"
    tgi = tgi_config(
        ["--model-id=m", "--max-total-tokens", "8192", "--max-input-tokens", "8000"],
        {},
        "p",
    )
    assert (tgi.max_total_tokens, tgi.max_input_tokens) == (8192, 8000)
    assert vllm_config(["vllm", "serve"], ["google/gemma-3-4b-it"], {}, "p").model_id == "google/gemma-3-4b-it"
    assert vllm_config([], ["google/gemma-3-4b-it", "--max-model-len", "4096"], {}, "p").model_id == (
        "google/gemma-3-4b-it"
    )
    assert (
        vllm_config(
            ["python3", "-m", "vllm.entrypoints.openai.api_server"],
            ["--model", "x/y"],
            {},
            "p",
        ).model_id
        == "x/y"
    )
    assert vllm_config([], ["x/y", "--served-model-name", "gemma"], {}, "p").model_id == "gemma"
    assert llamacpp_config(["-hf", "ggml-org/gemma-3-1b-it-GGUF"], {}, "p").model_id == "ggml-org/gemma-3-1b-it-GGUF"
    assert llamacpp_config([], {"LLAMA_ARG_HF_REPO": "a/b"}, "p").model_id == "a/b"
    assert llamacpp_config([], {}, "my-pod").model_id == "my-pod"


# --- vLLM over HTTP ----------------------------------------------------------------------


def test_vllm_health_metrics_follow_load(sim: InProcessSim) -> None:
    base = served(
        sim,
        "vllm-a",
        VLLM_IMAGE,
        command=["vllm", "serve"],
        args=["google/gemma-3-4b-it"],
    )
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200
    assert health.content == b""

    text = requests.get(f"{base}/metrics", timeout=5).text
    assert 'vllm:num_requests_waiting{engine="0",model_name="google/gemma-3-4b-it"} 0.0' in text
    assert "# TYPE vllm:e2e_request_latency_seconds histogram" in text
    assert "vllm:kv_cache_usage_perc" in text

    put_load(sim, "vllm-a", waiting=7, running=3)
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert metric_value(text, "vllm:num_requests_waiting") == 7
    assert metric_value(text, "vllm:num_requests_running") == 3
    put_load(sim, "vllm-a", kvCacheUsage=0.75, healthy=False)
    assert metric_value(requests.get(f"{base}/metrics", timeout=5).text, "vllm:kv_cache_usage_perc") == 0.75
    assert requests.get(f"{base}/health", timeout=5).status_code == 503


def test_vllm_chat_completion_shape_and_counts(sim: InProcessSim) -> None:
    base = served(sim, "vllm-chat", VLLM_IMAGE, args=["google/gemma-3-1b-it"])
    body: dict[str, Any] = {
        "model": "google/gemma-3-1b-it",
        "messages": [{"role": "user", "content": "Hello there"}],
    }
    r = requests.post(f"{base}/v1/chat/completions", json=body, timeout=5)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["object"] == "chat.completion"
    assert doc["id"].startswith("chatcmpl-")
    assert doc["model"] == "google/gemma-3-1b-it"
    assert isinstance(doc["created"], int)
    choice = doc["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    usage = doc["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    short = requests.post(f"{base}/v1/chat/completions", json={**body, "max_tokens": 2}, timeout=5).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 2

    wrong = requests.post(f"{base}/v1/chat/completions", json={**body, "model": "nope"}, timeout=5)
    assert wrong.status_code == 404
    assert wrong.json()["error"]["type"] == "NotFoundError"
    bad = requests.post(f"{base}/v1/chat/completions", json={"messages": []}, timeout=5)
    assert bad.status_code == 400
    assert "messages" in bad.json()["error"]["message"]

    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert metric_value(metrics, "vllm:e2e_request_latency_seconds_count") == 2
    state = requests.get(f"{sim.control_url}/pods/sim/vllm-chat", timeout=5).json()
    assert state["requests"]["completions"] == 2
    assert state["requests"]["byRoute"]["POST /v1/chat/completions"] == 4
    models = requests.get(f"{base}/v1/models", timeout=5).json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "google/gemma-3-1b-it"


def test_lora_modules_are_read_as_vllm_reads_them() -> None:
    args = [
        "x/y",
        "--lora-modules",
        "sql=org/sql-lora",
        '{"name": "chat", "path": "org/chat"}',
        "bad,json",
        "--port",
        "8",
    ]
    assert lora_module_names(args) == ("sql", "chat")
    # vLLM keeps the last --lora-modules only, and serves adapters only with --enable-lora.
    assert lora_module_names([*args, "--lora-modules", "last=org/last"]) == ("last",)
    assert vllm_config([], ["x/y", "--enable-lora", *args[1:]], {}, "p").adapters == ("sql", "chat")
    assert vllm_config([], args, {}, "p").adapters == ()


def test_vllm_serves_its_lora_adapters_by_name_and_counts_them(sim: InProcessSim) -> None:
    base = served(
        sim, "vllm-lora", VLLM_IMAGE, args=["google/gemma-4-31B-it", "--enable-lora", "--lora-modules", "sql=org/sql"]
    )
    question: dict[str, Any] = {"messages": [{"role": "user", "content": "Hello"}]}
    for model in (None, "sql", "sql"):
        body = question if model is None else {**question, "model": model}
        answer = requests.post(f"{base}/v1/chat/completions", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == (model or "google/gemma-4-31B-it")
    assert (
        requests.post(f"{base}/v1/chat/completions", json={**question, "model": "chat"}, timeout=5).status_code == 404
    )
    state = requests.get(f"{sim.control_url}/pods/sim/vllm-lora", timeout=5).json()
    assert state["requests"]["byModel"] == {"google/gemma-4-31B-it": 1, "sql": 2}
    cards = {card["id"]: card for card in requests.get(f"{base}/v1/models", timeout=5).json()["data"]}
    assert cards["sql"]["parent"] == "google/gemma-4-31B-it"
    assert cards["google/gemma-4-31B-it"]["parent"] is None


def test_latency_is_honoured_and_in_flight_requests_count_as_running(
    sim: InProcessSim,
) -> None:
    base = served(sim, "vllm-slow", VLLM_IMAGE, args=["m"])
    put_load(sim, "vllm-slow", latencySeconds=0.6, running=1)
    durations: list[float] = []

    def call() -> None:
        started = time.monotonic()
        requests.post(
            f"{base}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=5,
        )
        durations.append(time.monotonic() - started)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    during = metric_value(requests.get(f"{base}/metrics", timeout=5).text, "vllm:num_requests_running")
    worker.join()
    assert during == 2  # the configured 1 plus the one in flight
    assert durations[0] >= 0.6


# --- TGI -------------------------------------------------------------------------------------


def test_tgi_text_generation_client_parses_generate_and_chat(sim: InProcessSim) -> None:
    base = served(sim, "tgi-a", TGI_IMAGE, args=["--model-id", "google/gemma-3-27b-it"])
    client = text_generation.Client(base, timeout=5)
    response = client.generate("What is Kubernetes?", max_new_tokens=5, decoder_input_details=True)
    assert response.generated_text
    assert response.details.generated_tokens == 5 == len(response.details.tokens)
    assert response.details.finish_reason.value == "length"
    assert [t.text for t in response.details.prefill] == ["What", "is", "Kubernetes?"]

    chat = client.chat(
        messages=[text_generation.types.Message(role="user", content="Hi")],
        max_tokens=50,
    )
    assert chat.choices[0].message.content
    assert chat.choices[0].finish_reason == "stop"
    assert chat.model == "google/gemma-3-27b-it"
    assert chat.system_fingerprint.startswith("3.3.7")

    with pytest.raises(text_generation.errors.ValidationError, match="max_new_tokens"):
        client.generate("hello", max_new_tokens=100_000)


def test_tgi_generate_info_health_and_metrics(sim: InProcessSim) -> None:
    base = served(
        sim,
        "tgi-b",
        TGI_IMAGE,
        env={"MODEL_ID": "google/gemma-3-12b-it", "MAX_TOTAL_TOKENS": "8192"},
    )
    plain = requests.post(f"{base}/generate", json={"inputs": "Hello"}, timeout=5).json()
    assert set(plain) == {"generated_text"}
    detailed = requests.post(
        f"{base}/generate",
        json={"inputs": "Hello", "parameters": {"details": True, "max_new_tokens": 3}},
        timeout=5,
    ).json()
    assert detailed["details"]["generated_tokens"] == 3
    assert detailed["details"]["prefill"] == []

    info = requests.get(f"{base}/info", timeout=5).json()
    assert info["model_id"] == "google/gemma-3-12b-it"
    assert info["max_total_tokens"] == 8192
    assert info["router"] == "text-generation-router"
    assert info["version"] == "3.3.7"
    for field in ("model_sha", "max_concurrent_requests", "max_input_tokens", "max_best_of",
                  "max_stop_sequences", "validation_workers", "sha", "docker_label"):  # fmt: skip
        assert field in info

    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200
    assert health.content == b""
    put_load(sim, "tgi-b", healthy=False, waiting=4, running=2)
    unhealthy = requests.get(f"{base}/health", timeout=5)
    assert unhealthy.status_code == 503
    assert unhealthy.json() == {"error": "unhealthy", "error_type": "healthcheck"}

    text = requests.get(f"{base}/metrics", timeout=5).text
    assert "\ntgi_queue_size 4\n" in text
    assert "\ntgi_batch_current_size 2\n" in text
    assert "\ntgi_request_count 2\n" in text
    assert "\ntgi_request_success 2\n" in text
    assert "# TYPE tgi_request_duration histogram" in text
    assert "tgi_request_duration_count 2" in text
    assert "_created" not in text
    assert "tgi_batch_max_total_tokens" not in text
    assert "tgi_batch_current_max_tokens 1024" in text


def test_tgi_metrics_page_is_empty_until_the_first_request(sim: InProcessSim) -> None:
    # TGI 3.3.7 renders only metrics that were set; its gauges are set by the first request.
    base = served(sim, "tgi-idle", TGI_IMAGE, args=["--model-id", "google/gemma-3-4b-it"])
    idle = requests.get(f"{base}/metrics", timeout=5)
    assert idle.status_code == 200
    assert idle.content == b""
    text_generation.Client(base, timeout=5).generate("Hi", max_new_tokens=2)
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert "\ntgi_queue_size 0\n" in text
    assert "\ntgi_batch_current_size 0\n" in text
    assert "tgi_batch_max_total_tokens" not in text


def test_tgi_closes_port_while_loading(sim: InProcessSim) -> None:
    base = served(sim, "tgi-load", TGI_IMAGE, args=["--model-id", "m"])
    put_load(sim, "tgi-load", loading=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/health", timeout=2, headers={"Connection": "close"})
    state = requests.get(f"{sim.control_url}/pods/sim/tgi-load", timeout=5).json()
    assert state["listening"] == []
    put_load(sim, "tgi-load", loading=False)
    assert requests.get(f"{base}/health", timeout=5).status_code == 200


# --- llama.cpp -----------------------------------------------------------------------------


def test_llamacpp_health_loading_and_metrics(sim: InProcessSim) -> None:
    base = served(
        sim,
        "llama-a",
        LLAMACPP_IMAGE,
        args=["-hf", "ggml-org/gemma-3-1b-it-GGUF", "--metrics"],
    )
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    r = requests.post(
        f"{base}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        timeout=5,
    )
    assert r.status_code == 200
    assert r.json()["object"] == "chat.completion"
    assert r.json()["model"] == "ggml-org/gemma-3-1b-it-GGUF"

    put_load(sim, "llama-a", loading=True, running=1, waiting=2)
    loading = requests.get(f"{base}/health", timeout=5)
    assert loading.status_code == 503
    assert loading.json() == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 503
    assert requests.get(f"{base}/v1/models", timeout=5).status_code == 200

    put_load(sim, "llama-a", loading=False)
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert "# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total " in text
    assert "\nllamacpp:requests_processing 1\n" in text
    assert "\nllamacpp:requests_deferred 2\n" in text
    assert metric_value(text, "llamacpp:tokens_predicted_total") > 0


# --- lifecycle and control API ------------------------------------------------------------------


def test_deleted_pod_stops_serving_and_ip_change_moves_server(
    sim: InProcessSim,
) -> None:
    ip1, ip2 = fresh_ip(), fresh_ip()
    port = free_port(ip1)
    sim.apply_pod(pod("mover", VLLM_IMAGE, ip=ip1, ports=(port,), args=["m"]))
    assert requests.get(f"http://{ip1}:{port}/health", timeout=5).status_code == 200
    put_load(sim, "mover", waiting=5)
    sim.apply_pod(pod("mover", VLLM_IMAGE, ip=ip2, ports=(port,), args=["m"]))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{ip1}:{port}/health", timeout=2)
    text = requests.get(f"http://{ip2}:{port}/metrics", timeout=5).text
    assert metric_value(text, "vllm:num_requests_waiting") == 5  # same pod uid keeps its load
    sim.delete_pod("sim", "mover")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{ip2}:{port}/health", timeout=2)
    assert requests.get(f"{sim.control_url}/pods/sim/mover", timeout=5).status_code == 404


def test_port_taken_by_someone_else_is_reported_then_retried(sim: InProcessSim) -> None:
    ip = fresh_ip()
    blocker = socket.socket()
    blocker.bind((ip, 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        sim.apply_pod(pod("squatted", VLLM_IMAGE, ip=ip, ports=(port,), args=["m"]))
        state = requests.get(f"{sim.control_url}/pods/sim/squatted", timeout=5).json()
        assert state["listening"] == []
        assert f"cannot bind {ip}:{port}" in state["errors"][0]
    finally:
        blocker.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = requests.get(f"{sim.control_url}/pods/sim/squatted", timeout=5).json()
        if state["listening"] == [port]:
            break
        time.sleep(0.1)
    assert state["listening"] == [port]
    assert state["errors"] == []
    assert requests.get(f"http://{ip}:{port}/health", timeout=5).status_code == 200


def test_control_api_validates_input(sim: InProcessSim) -> None:
    served(sim, "ctl", VLLM_IMAGE, args=["m"])
    url = f"{sim.control_url}/pods/sim/ctl"
    missing = requests.put(f"{sim.control_url}/pods/sim/nope", json={"waiting": 1}, timeout=5)
    assert missing.status_code == 404
    assert "sim/nope" in missing.json()["error"]
    assert requests.get(f"{sim.control_url}/pods/sim/nope", timeout=5).status_code == 404
    for body, field in (
        ({"waiting": "3"}, "waiting"),
        ({"running": -1}, "running"),
        ({"healthy": 1}, "healthy"),
        ({"latencySeconds": "slow"}, "latencySeconds"),
        ({"kvCacheUsage": 2}, "kvCacheUsage"),
        ({"wating": 3}, "wating"),
    ):
        r = requests.put(url, json=body, timeout=5)
        assert r.status_code == 400, body
        assert r.json()["field"] == field
        assert field in r.json()["error"]
    not_json = requests.put(url, data=b"{nope", timeout=5)
    assert not_json.status_code == 400
    assert "JSON" in not_json.json()["error"]
    assert requests.put(url, json=[1], timeout=5).status_code == 400

    ok = requests.put(url, json={"waiting": 2}, timeout=5).json()
    assert ok["load"]["waiting"] == 2
    assert ok["load"]["running"] == 0
    listing = requests.get(f"{sim.control_url}/pods", timeout=5).json()
    entry = next(p for p in listing if p["name"] == "ctl")
    assert {"namespace", "name", "ip", "ports", "runtime", "load"} <= set(entry)
    assert requests.get(f"{sim.control_url}/healthz", timeout=5).json()["ok"] is True
    assert requests.delete(url, timeout=5).status_code == 405


# --- the CLI ---------------------------------------------------------------------------------


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": server, "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "servingsim", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(E2E_DIR)}


def test_cli_refuses_non_loopback_addresses(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", "https://127.0.0.1:1")
    r = subprocess.run(
        _cli("--kubeconfig", str(kubeconfig), "--control", "10.0.0.1:8080"),
        check=False, capture_output=True, text=True, env=_env(), timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "127.0.0.0/8" in r.stderr
    remote = _kubeconfig(tmp_path / "kc2", "https://10.1.2.3:6443")
    r = subprocess.run(
        _cli("--kubeconfig", str(remote)),
        check=False,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert r.returncode == 2
    assert "10.1.2.3" in r.stderr


def test_cli_writes_url_file_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # The API server is unreachable: the watcher retries, the control API still serves.
    kubeconfig = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port('127.0.0.1')}")
    proc = subprocess.Popen(
        _cli("--kubeconfig", str(kubeconfig), "--control", "127.0.0.1:0", "--state-dir", str(tmp_path)),
        stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        url_file = tmp_path / "servingsim.url"
        deadline = time.monotonic() + 20
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        health = requests.get(f"{url}/healthz", timeout=5).json()
        assert health["ok"] is True
        assert health["synced"] is False
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert not url_file.exists()
    assert "control API at http://127.0.0.1:" in stderr
    assert "stopped" in stderr


# --- hostile pods (servingsim/hostile.py) ----------------------------------------------------------


def test_a_hostile_pod_misbehaves_on_its_routes_only_and_behaves_again(sim: InProcessSim) -> None:
    base = served(sim, "evil", LLAMACPP_IMAGE, args=["-hf", "ggml-org/gemma-3-1b-it-GGUF", "--metrics"])
    url = f"{sim.control_url}/pods/sim/evil/hostile"
    target = "http://127.0.0.1:9"
    assert requests.put(url, json={"hostile": "redirect", "location": target}, timeout=5).json()["hostile"] == (
        "redirect"
    )
    moved = requests.get(f"{base}/metrics", timeout=5, allow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (307, f"{target}/metrics")

    requests.put(url, json={"hostile": "garbage-metrics"}, timeout=5)
    assert requests.get(f"{base}/metrics", timeout=5).content.startswith(b"\x00\xff\xfe")
    chat: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    assert requests.post(f"{base}/v1/chat/completions", json=chat, timeout=5).json()["choices"]

    requests.put(url, json={"hostile": "long-model"}, timeout=5)
    assert len(requests.post(f"{base}/v1/chat/completions", json=chat, timeout=5).json()["model"]) == 1 << 20

    assert requests.put(url, json={"hostile": None}, timeout=5).json()["hostile"] is None
    assert "llamacpp:requests_processing" in requests.get(f"{base}/metrics", timeout=5).text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hostile": "rude"}, "hostile"),
        ({"hostile": "redirect"}, "location"),
        ({"hostile": "redirect", "location": "http://10.0.0.1/"}, "location"),
        ({"hostile": "huge-reply", "location": "http://127.0.0.1:9"}, "location"),
        ({"hostile": "huge-reply", "extra": 1}, "(body)"),
    ],
)
def test_hostile_control_validates_input(sim: InProcessSim, body: dict[str, Any], field: str) -> None:
    served(sim, "strict", VLLM_IMAGE, args=["m"])
    refused = requests.put(f"{sim.control_url}/pods/sim/strict/hostile", json=body, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["field"] == field


# --- fidelity to the runtimes' own sources (the real llama-server's pages: e2e/test_simulator_fidelity.py) ---


def pinned_version(runtime: Runtime) -> str:
    [version] = {image_version(runtime, image.image) for image in runtimes()[runtime].images.values()}
    assert version is not None
    return version


@pytest.mark.parametrize(
    ("runtime", "image", "args"),
    [
        (Runtime.TGI, TGI_IMAGE, ["--model-id", "google/gemma-3-4b-it"]),
        (Runtime.VLLM, VLLM_IMAGE, ["google/gemma-3-4b-it"]),
        (Runtime.LLAMACPP, LLAMACPP_IMAGE, ["-hf", "ggml-org/gemma-3-1b-it-GGUF"]),
    ],
)
def test_every_simulated_metric_is_one_its_runtime_registers_at_the_pinned_release(
    sim: InProcessSim, runtime: Runtime, image: str, args: list[str]
) -> None:
    base = served(sim, f"names-{runtime.value}", image, args=args)
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    assert requests.post(f"{base}/v1/chat/completions", json=chat, timeout=5).status_code == 200
    page = requests.get(f"{base}/metrics", timeout=5).text
    announced = dict(re.findall(r"^# TYPE (\S+) (\S+)$", page, re.MULTILINE))
    if runtime is Runtime.VLLM:  # prometheus_client writes a counter as <name>_total, with a <name>_created gauge
        announced = {
            name.removesuffix("_total") if kind == "counter" else name: kind
            for name, kind in announced.items()
            if not name.endswith("_created")
        }
    table = metric_table(runtime, pinned_version(runtime))
    assert table is not None
    assert announced
    assert {name: table.metrics.get(name) for name in announced} == announced


def test_vllm_reports_the_pinned_release_as_its_version(sim: InProcessSim) -> None:
    base = served(sim, "vllm-version", VLLM_IMAGE, args=["google/gemma-3-4b-it"])
    assert requests.get(f"{base}/version", timeout=5).json() == {"version": pinned_version(Runtime.VLLM)}
