"""probes: the metrics scrape and the smoke check over real HTTP, against a stub runtime on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load
from gemma_operator.probes import scrape
from gemma_operator.probes.scrape import scrape_load
from gemma_operator.probes.smoke import smoke_check

from .loopback import serving

SAMPLES = Path(__file__).parent / "data" / "metrics"
Reply = Callable[[], web.StreamResponse]

# Successful chat completions as each runtime writes them (fields the TGI client's own schema trips on kept).
TGI_CHAT = {
    "object": "chat.completion",
    "id": "",
    "created": 1767225600,
    "model": "google/gemma-3-27b-it",
    "system_fingerprint": "3.3.7-native",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Ready."}, "logprobs": None, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
}
VLLM_CHAT = {
    "id": "chatcmpl-8f1c",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "google/gemma-4-31B-it",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Ready.", "tool_calls": [], "reasoning_content": None},
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": None,
        }
    ],
    "system_fingerprint": None,
    "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17, "prompt_tokens_details": None},
    "prompt_logprobs": None,
}
LLAMACPP_CHAT = {
    "choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": "Ready."}}],
    "created": 1767225600,
    "model": "gpt-3.5-turbo",
    "system_fingerprint": "b6000-0a1b2c3d",
    "object": "chat.completion",
    "usage": {"completion_tokens": 3, "prompt_tokens": 14, "total_tokens": 17},
    "id": "chatcmpl-Qw3",
}


def json_reply(document: object, status: int = 200) -> Reply:
    return lambda: web.json_response(document, status=status)


def text_reply(text: str, status: int = 200) -> Reply:
    return lambda: web.Response(text=text, status=status)


@dataclass
class StubRuntime:
    """Answers each request with the next reply (the last one repeats) and records what it was sent."""

    replies: list[Reply] = field(default_factory=list)
    delay_seconds: float = 0.0
    bodies: list[Any] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.can_read_body:
            self.bodies.append(await request.json())
        else:
            self.bodies.append(None)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply()


@pytest.fixture
async def stub() -> AsyncIterator[StubRuntime]:
    runtime = StubRuntime()
    async with serving(runtime.handle) as url:
        runtime.url = url
        yield runtime


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- scrape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("runtime", "load"), [(Runtime.TGI, Load(2, 4)), (Runtime.LLAMACPP, Load(1, 2))])
async def test_scrape_reads_the_runtime_page(stub: StubRuntime, runtime: Runtime, load: Load) -> None:
    stub.replies = [text_reply((SAMPLES / f"{runtime.value}.txt").read_text())]
    result = await scrape_load(stub.url + "/", runtime)
    assert result == scrape.Scrape(load)


async def test_scrape_reuses_a_shared_session(stub: StubRuntime) -> None:
    stub.replies = [text_reply((SAMPLES / "vllm.txt").read_text())]
    async with aiohttp.ClientSession() as session:
        first = await scrape_load(stub.url, Runtime.VLLM, session=session)
        second = await scrape_load(stub.url, Runtime.VLLM, session=session)
    assert first.load == second.load == Load(5, 3)
    assert stub.bodies == [None, None]


async def test_scrape_of_an_unavailable_pod_is_unknown(stub: StubRuntime) -> None:
    stub.replies = [json_reply({"error": {"code": 503, "message": "Loading model"}}, status=503)]
    result = await scrape_load(stub.url, Runtime.LLAMACPP)
    assert result.load is None
    assert result.reason == f"GET {stub.url}/metrics: HTTP 503"


async def test_scrape_of_another_runtime_page_names_the_metrics(stub: StubRuntime) -> None:
    stub.replies = [text_reply((SAMPLES / "tgi.txt").read_text())]
    result = await scrape_load(stub.url, Runtime.VLLM)
    assert result.load is None
    assert "no valid vllm:num_requests_waiting and vllm:num_requests_running" in result.reason


async def test_scrape_times_out(stub: StubRuntime) -> None:
    stub.replies, stub.delay_seconds = [text_reply("")], 2.0
    result = await scrape_load(stub.url, Runtime.TGI, timeout_seconds=0.2)
    assert result.load is None
    assert result.reason.endswith("no answer within 0.2s")


async def test_scrape_of_a_closed_port_is_unknown(closed_port_url: str) -> None:
    result = await scrape_load(closed_port_url, Runtime.TGI)
    assert result.load is None
    assert result.reason.startswith(f"GET {closed_port_url}/metrics: Cannot connect")


async def test_scrape_refuses_an_endless_page(stub: StubRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scrape, "MAX_PAGE_BYTES", 1000)
    stub.replies = [text_reply((SAMPLES / "vllm.txt").read_text())]
    result = await scrape_load(stub.url, Runtime.VLLM)
    assert result.load is None
    assert result.reason.endswith("page larger than 1000 bytes")


# --- smoke check ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "model"),
    [(TGI_CHAT, "google/gemma-3-27b-it"), (VLLM_CHAT, "google/gemma-4-31B-it"), (LLAMACPP_CHAT, "gpt-3.5-turbo")],
)
async def test_smoke_check_accepts_each_runtime_answer(stub: StubRuntime, answer: dict[str, Any], model: str) -> None:
    stub.replies = [json_reply(answer)]
    result = await smoke_check(stub.url)
    assert result.ok, result.message
    assert result.attempts == 1
    assert result.message.startswith(f"{model} answered in ")
    assert result.message.endswith(": 'Ready.'")
    assert 0 <= result.latency_seconds < 5
    # One short question; no model name, since vLLM refuses a name it does not serve.
    assert stub.bodies == [
        {
            "messages": [{"role": "user", "content": "Reply with one word: are you ready?"}],
            "max_tokens": 8,
            "stream": False,
        }
    ]


async def test_smoke_check_asks_the_model_and_then_each_adapter_by_name(stub: StubRuntime) -> None:
    stub.replies = [json_reply(VLLM_CHAT)]
    result = await smoke_check(stub.url, ("sql", "chat"))
    assert result.ok, result.message
    assert [body.get("model") for body in stub.bodies] == [None, "sql", "chat"]
    assert result.attempts == 3
    assert result.message.endswith("; adapters sql, chat answered")


async def test_smoke_check_names_the_adapter_that_did_not_answer(stub: StubRuntime) -> None:
    missing = {"error": {"message": "The model `chat` does not exist.", "type": "NotFoundError", "code": 404}}
    stub.replies = [json_reply(VLLM_CHAT), json_reply(VLLM_CHAT), json_reply(missing, 404)]
    result = await smoke_check(stub.url, ("sql", "chat", "later"), backoff_seconds=0.01)
    assert not result.ok
    assert result.message == (
        "adapter chat: POST /v1/chat/completions failed (attempt 1 of 4): HTTP 404: The model `chat` does not exist."
    )
    assert len(stub.bodies) == 3  # a 404 is not retried, and the adapters after it are not asked


async def test_smoke_check_retries_transient_failures_with_backoff(stub: StubRuntime) -> None:
    stub.replies = [
        json_reply({"error": "Model is overloaded", "error_type": "overloaded"}, status=429),
        text_reply("upstream connect error", status=503),
        json_reply(VLLM_CHAT),
    ]
    result = await smoke_check(stub.url, backoff_seconds=0.01)
    assert result.ok, result.message
    assert result.attempts == 3


async def test_smoke_check_reports_503_after_bounded_attempts(stub: StubRuntime) -> None:
    stub.replies = [json_reply({"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}, 503)]
    result = await smoke_check(stub.url, attempts=3, backoff_seconds=0.01)
    assert not result.ok
    assert result.attempts == 3
    assert len(stub.bodies) == 3
    assert result.message == "POST /v1/chat/completions failed (attempt 3 of 3): HTTP 503: Loading model"


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (
            404,
            {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404}},
            "The model `x` does not exist.",
        ),
        (
            422,
            {"error": "Input validation error: `max_tokens` must be > 0", "error_type": "validation"},
            "Input validation error",
        ),
        (400, "Failed to parse the request body as JSON", "Failed to parse the request body as JSON"),
    ],
)
async def test_smoke_check_does_not_retry_a_refused_request(
    stub: StubRuntime, status: int, body: Any, detail: str
) -> None:
    stub.replies = [json_reply(body, status) if isinstance(body, dict) else text_reply(body, status)]
    result = await smoke_check(stub.url, backoff_seconds=0.01)
    assert not result.ok
    assert result.attempts == 1
    assert f"HTTP {status}: {detail}" in result.message


@pytest.mark.parametrize(
    "reply",
    [
        text_reply("<html>hello</html>"),
        json_reply({"object": "chat.completion", "choices": []}),
        json_reply([TGI_CHAT]),
    ],
    ids=["not-json", "no-choices", "a-list"],
)
async def test_smoke_check_rejects_a_malformed_answer(stub: StubRuntime, reply: Reply) -> None:
    stub.replies = [reply]
    result = await smoke_check(stub.url, backoff_seconds=0.01)
    assert not result.ok
    assert result.attempts == 1
    assert "the answer is not a chat completion" in result.message


async def test_smoke_check_times_out(stub: StubRuntime) -> None:
    stub.replies, stub.delay_seconds = [json_reply(TGI_CHAT)], 2.0
    result = await smoke_check(stub.url, timeout_seconds=0.2, attempts=2, backoff_seconds=0.01)
    assert not result.ok
    assert result.attempts == 2
    assert result.message.endswith("no answer within 0.2s")
    assert result.latency_seconds < 1.5


async def test_smoke_check_of_a_closed_port(closed_port_url: str) -> None:
    result = await smoke_check(closed_port_url, attempts=2, backoff_seconds=0.01)
    assert not result.ok
    assert result.attempts == 2
    assert "Cannot connect to host 127.0.0.1" in result.message
