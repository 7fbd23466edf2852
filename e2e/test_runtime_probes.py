"""The operator's probes against the simulated runtimes: the same scrape and smoke check, over real loopback HTTP.

In-process (servingsim's InProcessSim), so no control plane is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load
from gemma_operator.probes.scrape import scrape_load
from gemma_operator.probes.smoke import smoke_check
from servingsim.inprocess import InProcessSim
from test_servingsim import LLAMACPP_IMAGE, TGI_IMAGE, VLLM_IMAGE, put_load, served

# How each runtime's pod is started, as the operator renders it.
PODS = {
    Runtime.TGI: (TGI_IMAGE, None, ["--model-id", "google/gemma-3-27b-it", "--port", "8000"]),
    Runtime.VLLM: (VLLM_IMAGE, ["vllm"], ["serve", "google/gemma-4-31B-it", "--port", "8000"]),
    Runtime.LLAMACPP: (LLAMACPP_IMAGE, None, ["-hf", "unsloth/gemma-4-E2B-it-GGUF:Q4_0", "--metrics"]),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[InProcessSim]:
    with InProcessSim() as running:
        yield running


def start(sim: InProcessSim, runtime: Runtime, name: str) -> str:
    image, command, args = PODS[runtime]
    return served(sim, name, image, command=command, args=args)


@pytest.mark.parametrize("runtime", list(Runtime))
def test_scrape_reads_the_simulated_load(sim: InProcessSim, runtime: Runtime) -> None:
    base = start(sim, runtime, f"scrape-{runtime.value}")
    put_load(sim, f"scrape-{runtime.value}", waiting=6, running=3)
    assert asyncio.run(scrape_load(base, runtime)).load == Load(waiting=6, running=3)
    other = next(r for r in Runtime if r is not runtime)
    assert asyncio.run(scrape_load(base, other)).load is None


@pytest.mark.parametrize("runtime", list(Runtime))
def test_smoke_check_verifies_each_runtime(sim: InProcessSim, runtime: Runtime) -> None:
    base = start(sim, runtime, f"smoke-{runtime.value}")
    result = asyncio.run(smoke_check(base))
    assert result.ok, result.message
    assert result.attempts == 1


@pytest.mark.parametrize(
    ("runtime", "error"),
    [
        (Runtime.TGI, "Cannot connect"),  # TGI and vLLM open their port only once loaded
        (Runtime.VLLM, "Cannot connect"),
        (Runtime.LLAMACPP, "HTTP 503: Loading model"),
    ],
)
def test_smoke_check_reports_a_loading_runtime(sim: InProcessSim, runtime: Runtime, error: str) -> None:
    name = f"loading-{runtime.value}"
    base = start(sim, runtime, name)
    put_load(sim, name, loading=True)
    result = asyncio.run(smoke_check(base, attempts=2, backoff_seconds=0.01, timeout_seconds=2))
    assert not result.ok
    assert result.attempts == 2
    assert error in result.message
    assert asyncio.run(scrape_load(base, runtime)).load is None
