"""The simulator's llama.cpp replies have the shapes of the real llama-server's, recorded in the same run.

One real llama-server (Debian's build, see conftest.llama_root) and the simulator's llama.cpp serve the same rendered
E2B arguments; every reply the operator or a client reads is fetched from both: /health (ready and while loading),
/metrics, the model list, a chat completion, and the errors for an unknown route and a body that is not JSON. Their
shapes must agree: status, content type, every key path of a JSON body with its JSON type, and every metric family
with its type. Values are the runtimes' own. pytest -s prints the real pages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gemma_operator.api import Family, Runtime
from gemma_operator.probes.scrape import scrape_load
from gemma_operator.probes.smoke import smoke_check
from llamapods import rendered_args
from operator_process import free_port
from realruntime import llamaserver
from realruntime.tinygguf import write_gemma4
from servingsim.inprocess import InProcessSim
from servingsim.inprocess import free_port as free_port_on
from servingsim.realllama import tiny_shape

pytestmark = pytest.mark.e2e

CHAT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Reply with one word: are you ready?"}],
    "max_tokens": 8,
}
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def shape(document: Any, path: str = "") -> set[str]:
    """Every key path of a JSON document with its JSON type, e.g. "choices[].message.content: string"."""
    kind = "null" if document is None else JSON_TYPES[type(document)]
    found = {f"{path or '.'}: {kind}"}
    if isinstance(document, dict):
        for key, value in document.items():
            found |= shape(value, f"{path}.{key}")
    elif isinstance(document, list):
        for item in document:
            found |= shape(item, f"{path}[]")
    return found


def families(text: str) -> set[tuple[str, str]]:
    return {(family.name, family.type) for family in text_string_to_metric_families(text)}


def content_type(answer: requests.Response) -> str:
    return answer.headers.get("Content-Type", "")


def answers(base: str) -> dict[str, requests.Response]:
    """The replies worth comparing, from one server."""
    ask = requests.Session()
    return {
        "health": ask.get(f"{base}/health", timeout=10),
        "chat": ask.post(f"{base}/v1/chat/completions", json=CHAT, timeout=60),
        # After the completion, so that its counters and gauges are on the page.
        "metrics": ask.get(f"{base}/metrics", timeout=10),
        "models": ask.get(f"{base}/v1/models", timeout=10),
        "unknown route": ask.get(f"{base}/no-such-route", timeout=10),
        "not JSON": ask.post(
            f"{base}/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
        ),
    }


@pytest.fixture(scope="module")
def args() -> list[str]:
    return rendered_args("e2b")


@pytest.fixture(scope="module")
def real(llama_root: Path, args: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("fidelity")
    # The tiny model loads in some 10 ms on a fast machine, too short to be sure of a 503 from /health. Real
    # Gemma 4 global layers (eight KV heads of 512) make a 512 MiB KV cache that llama-server zeroes before it
    # is ready: a loading window of some 300 ms, that no poll misses.
    shape = replace(tiny_shape(Family.GEMMA_4), heads=8, global_kv_heads=8, global_head_dim=512)
    gguf = write_gemma4(folder / "tiny-gemma4.gguf", shape)
    running = llamaserver.start(
        llama_root, llamaserver.with_model(args, gguf), "127.0.0.1", free_port(), folder / "llama-server.log"
    )
    try:
        yield running, answers(running.base_url)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def simulated(args: list[str]) -> Iterator[tuple[dict[str, requests.Response], requests.Response, str]]:
    with InProcessSim() as sim:
        ip = "127.0.77.1"
        port = free_port_on(ip)
        sim.apply_pod(
            {
                "metadata": {"namespace": "fidelity", "name": "e2b", "uid": "uid-e2b", "labels": {}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/ggml-org/llama.cpp:server",
                            "args": args,
                            "ports": [{"containerPort": port}],
                        }
                    ]
                },
                "status": {"phase": "Running", "podIP": ip},
            }
        )
        base = f"http://{ip}:{port}"
        replies = answers(base)
        put = requests.put(f"{sim.control_url}/pods/fidelity/e2b", json={"loading": True}, timeout=5)
        assert put.status_code == 200, put.text
        yield replies, requests.get(f"{base}/health", timeout=5), base


def test_the_real_llama_server_was_seen_loading(real: Any, llama_root: Path) -> None:
    server, _ = real
    print(f"\nllama.cpp used: {llamaserver.version(llama_root)}")
    assert server.loading, "no answer from /health before its 200: the loading window was missed"
    assert {answer.status_code for answer in server.loading} == {503}


@pytest.mark.parametrize("reply", ["health", "chat", "models", "unknown route", "not JSON"])
def test_a_simulated_reply_has_the_real_ones_shape(real: Any, simulated: Any, reply: str) -> None:
    _, real_answers = real
    simulated_answers, _, _ = simulated
    genuine, imitation = real_answers[reply], simulated_answers[reply]
    print(f"\n{reply}: {genuine.status_code} {content_type(genuine)} {genuine.text[:600]}")
    assert (imitation.status_code, content_type(imitation)) == (genuine.status_code, content_type(genuine))
    assert shape(imitation.json()) == shape(genuine.json())
    if reply in ("unknown route", "not JSON"):
        assert imitation.json()["error"]["type"] == genuine.json()["error"]["type"]


def test_the_simulated_loading_answer_is_the_real_ones(real: Any, simulated: Any) -> None:
    server, _ = real
    _, imitation, _ = simulated
    genuine = server.loading[0]
    print(f"\nloading: {genuine.status_code} {content_type(genuine)} {genuine.text}")
    assert (imitation.status_code, content_type(imitation)) == (genuine.status_code, content_type(genuine))
    assert json.loads(imitation.text) == json.loads(genuine.text)


def test_the_simulated_metrics_page_has_the_real_ones_families(real: Any, simulated: Any) -> None:
    _, real_answers = real
    simulated_answers, _, _ = simulated
    genuine, imitation = real_answers["metrics"], simulated_answers["metrics"]
    print(f"\nmetrics: {content_type(genuine)}\n{genuine.text}")
    assert content_type(imitation) == content_type(genuine)
    assert families(imitation.text) == families(genuine.text)


def test_the_operator_waits_out_a_loading_server(simulated: Any) -> None:
    """While loading (the simulator's answer is the real one, above), the smoke check sees a 503 it retries and
    the autoscaler's scrape an unknown load, never a zero."""
    *_, base = simulated
    smoke = asyncio.run(smoke_check(base, attempts=1))
    assert not smoke.ok
    assert "HTTP 503: Loading model" in smoke.message
    scrape = asyncio.run(scrape_load(base, Runtime.LLAMACPP))
    assert scrape.load is None
    assert "HTTP 503" in scrape.reason
