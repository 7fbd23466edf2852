"""The real llama-server (Debian sid's build) on the operator's rendered arguments, with a tiny Gemma GGUF.

The packages are fetched into .e2e/llamacpp on first use (e2e/realruntime/fetch-llama-server); when they cannot
be, the test fails and says what to do. The build used and its KV cache lines are printed (pytest -s shows them).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load
from gemma_operator.probes.scrape import scrape_load
from gemma_operator.probes.smoke import smoke_check
from harness.waiting import wait_for
from llamapods import rendered_args
from operator_process import free_port
from realruntime import llamaserver
from realruntime.tinygguf import write_gemma3
from servingsim.inprocess import InProcessSim
from servingsim.inprocess import free_port as free_port_on
from servingsim.modelconfig import llamacpp_config
from servingsim.realllama import LlamaServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gemma3(tmp_path_factory.mktemp("gguf") / "tiny-gemma3.gguf")


@pytest.fixture(params=["e2b", "e4b"])
def server(request: pytest.FixtureRequest, llama_root: Path, tiny_gguf: Path, tmp_path: Path) -> Iterator[Any]:
    args = llamaserver.with_model(rendered_args(request.param), tiny_gguf)
    running = llamaserver.start(llama_root, args, "127.0.0.1", free_port(), tmp_path / "llama-server.log")
    try:
        yield running, args
    finally:
        running.stop()


def startup_line(log: str, pattern: str) -> re.Match[str]:
    found = re.search(pattern, log)
    assert found, f"no {pattern!r} in the llama-server log:\n{log}"
    return found


def test_real_llama_server_serves_the_rendered_arguments(server: Any) -> None:
    running, args = server
    log = running.log_text()
    for line in log.splitlines():
        if "llama_kv_cache: size" in line or "n_ctx_slot" in line:
            print(line)
    # Slot arithmetic: -c is split over -np, as the simulator now does too.
    slots = startup_line(log, r"n_slots = (\d+), n_ctx_slot = (\d+)")
    context, parallel = int(args[args.index("-c") + 1]), int(args[args.index("-np") + 1])
    assert (int(slots[1]), int(slots[2])) == (parallel, context // parallel)
    assert llamacpp_config(args, {}, "pod").max_total_tokens == context // parallel

    scrape = asyncio.run(scrape_load(running.base_url, Runtime.LLAMACPP))
    assert scrape.load == Load(waiting=0, running=0), scrape.reason
    smoke = asyncio.run(smoke_check(running.base_url, attempts=1))
    assert smoke.ok, smoke.message


def test_real_llama_server_reports_concurrent_requests_in_its_metrics(server: Any) -> None:
    running, args = server
    parallel = int(args[args.index("-np") + 1])
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "Count."}], "max_tokens": 400}

    def ask() -> int:
        return requests.post(running.base_url + "/v1/chat/completions", json=body, timeout=120).status_code

    seen: list[Load] = []
    with ThreadPoolExecutor(parallel + 2) as pool:
        replies = [pool.submit(ask) for _ in range(parallel + 2)]
        while not all(reply.done() for reply in replies):
            scrape = asyncio.run(scrape_load(running.base_url, Runtime.LLAMACPP))
            assert scrape.load is not None, scrape.reason
            seen.append(scrape.load)
        assert [reply.result() for reply in replies] == [200] * (parallel + 2)
    assert max(load.running for load in seen) >= 1, seen
    assert max(load.in_flight for load in seen) <= parallel + 2


def test_a_pod_server_that_cannot_bind_is_restarted_and_stops_with_its_pod(llama_root: Path, tmp_path: Path) -> None:
    """The simulator's real llama-server for a pod (servingsim/realllama.py): while another socket holds the pod's
    port it exits and is started again, as the kubelet would; once the port is free it serves; deleting the pod
    stops it."""
    ip = "127.0.78.1"
    port = free_port_on(ip)
    holder = socket.create_server((ip, port))
    pod = {
        "metadata": {"namespace": "real", "name": "e2b", "uid": "uid-e2b", "labels": {}},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "ghcr.io/ggml-org/llama.cpp:server",
                    "args": llamaserver.replace_flag(rendered_args("e2b"), "--port", str(port)),
                    "ports": [{"containerPort": port}],
                }
            ]
        },
        "status": {"phase": "Running", "podIP": ip},
    }
    with InProcessSim(llama=LlamaServer.prepare(llama_root, tmp_path)) as sim:
        sim.apply_pod(pod)

        def served() -> dict[str, Any]:
            answer = requests.get(f"{sim.control_url}/pods/real/e2b", timeout=5)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        restarted = wait_for(lambda: (s := served())["real"]["restarts"] >= 1 and s, timeout=30, message="a restart")
        assert "exited with 1" in restarted["errors"][-1]
        holder.close()
        ready = wait_for(lambda: (s := served())["real"]["health"] == "ok" and s, timeout=30, message="serving")
        assert requests.get(f"http://{ip}:{port}/health", timeout=5).json() == {"status": "ok"}
        assert requests.put(f"{sim.control_url}/pods/real/e2b", json={"waiting": 1}, timeout=5).status_code == 409
        sim.delete_pod("real", "e2b")
        pid = ready["real"]["pid"]
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, message=f"llama-server {pid} gone")
