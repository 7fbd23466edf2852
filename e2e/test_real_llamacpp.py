"""The real llama-server (Debian sid's build) on the operator's rendered arguments, with a tiny Gemma GGUF.

The packages are fetched into .e2e/llamacpp on first use (e2e/realruntime/fetch-llama-server); when they cannot
be, the test fails and says what to do. The build used and its KV cache lines are printed (pytest -s shows them).
"""

from __future__ import annotations

import asyncio
import re
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
from llamapods import rendered_args
from operator_process import free_port
from realruntime import llamaserver
from realruntime.tinygguf import write_gemma3
from servingsim.modelconfig import llamacpp_config

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
