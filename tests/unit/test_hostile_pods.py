"""The probes distrust the pods: bounded bodies, no redirects, a deadline on the whole read, safe text.

Each test serves a misbehaving pod on 127.0.0.1 and checks the outcome and that the operator's
memory and time stay bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web

from gemma_operator.api import Runtime
from gemma_operator.autoscaling import signals
from gemma_operator.autoscaling.signals import Load
from gemma_operator.probes import scrape
from gemma_operator.probes.scrape import scrape_load
from gemma_operator.probes.smoke import MAX_ANSWER_BYTES, smoke_check
from gemma_operator.probes.untrusted import excerpt

from .loopback import Handler, serving

MiB = 1 << 20
CHUNK = b"x" * MiB
CHAT = {"model": "google/gemma-3-27b-it", "choices": [{"message": {"content": "Ready."}, "finish_reason": "stop"}]}


def streaming(total_bytes: int, status: int = 200) -> Handler:
    """A handler that streams `total_bytes` of x's, chunked, without a Content-Length."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        try:
            for _ in range(total_bytes // MiB):
                await response.write(CHUNK)
        except (ConnectionError, RuntimeError):  # the operator hung up, as it should
            pass
        return response

    return handle


async def slow_loris(request: web.Request) -> web.StreamResponse:
    """Answers 200 at once, then one byte every 50 ms, forever."""
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        while True:
            await response.write(b"{")
            await asyncio.sleep(0.05)
    except (ConnectionError, RuntimeError):
        pass
    return response


@contextmanager
def peak_traced() -> Iterator[list[int]]:
    """The peak of Python allocations inside the block, in bytes, in the list it yields."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[str]]]:
    """Another host a pod may redirect to; the list records every request it receives (there must be none)."""
    received: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        received.append(f"{request.method} {request.path}")
        return web.json_response(CHAT | {"model": "secret from the other host"})

    async with serving(handle) as url:
        yield url, received


def answering(reply: Callable[[], web.StreamResponse]) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        return reply()

    return handle


def redirecting(status: int, target: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": target + request.path}, text="moved")

    return handle


# --- the smoke check ------------------------------------------------------------------------------


async def test_smoke_check_reads_at_most_64_kib_of_a_huge_answer() -> None:
    async with serving(streaming(32 * MiB)) as url:
        with peak_traced() as peak:
            result = await smoke_check(url, attempts=1)
    assert not result.ok
    assert result.message == (
        f"POST /v1/chat/completions failed (attempt 1 of 1): the answer is larger than {MAX_ANSWER_BYTES} bytes"
    )
    assert peak[0] < 4 * MiB


async def test_smoke_check_reads_at_most_64_kib_of_a_huge_error_body() -> None:
    async with serving(streaming(32 * MiB, status=500)) as url:
        with peak_traced() as peak:
            result = await smoke_check(url, attempts=1)
    assert not result.ok
    assert result.message.startswith("POST /v1/chat/completions failed (attempt 1 of 1): HTTP 500: xxx")
    assert len(result.message) < 300
    assert peak[0] < 4 * MiB


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_smoke_check_follows_no_redirect(elsewhere: tuple[str, list[str]], status: int) -> None:
    target, received = elsewhere
    async with serving(redirecting(status, target)) as url:
        result = await smoke_check(url, backoff_seconds=0.01)
    assert received == []
    assert not result.ok
    assert result.attempts == 1  # a redirect will not go away by asking again
    assert result.message == f"POST /v1/chat/completions failed (attempt 1 of 4): HTTP {status}: redirects are refused"


async def test_smoke_check_deadline_holds_against_a_slow_loris() -> None:
    async with serving(slow_loris) as url:
        started = time.monotonic()
        result = await smoke_check(url, timeout_seconds=0.5, attempts=1)
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.message.endswith("no answer within 0.5s")
    assert elapsed < 1.5


async def test_smoke_check_truncates_a_long_model_name() -> None:
    model = "evil\n\x1b[31m" + "m" * (MAX_ANSWER_BYTES - 1000)
    async with serving(answering(lambda: web.json_response(CHAT | {"model": model}))) as url:
        result = await smoke_check(url)
    assert result.ok, result.message[:300]
    assert result.message.startswith("evil\\n\\x1b[31mmmm")
    assert "m... answered in " in result.message
    assert len(result.message) < 300
    assert result.message.isprintable()


async def test_smoke_check_refuses_a_megabyte_model_name() -> None:
    async with serving(answering(lambda: web.json_response(CHAT | {"model": "m" * MiB}))) as url:
        result = await smoke_check(url)
    assert not result.ok
    assert result.attempts == 1
    assert result.message.endswith(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")


async def test_smoke_check_makes_an_error_detail_safe() -> None:
    detail = "line one\nline two\r\n\u202etxt.exe"
    async with serving(answering(lambda: web.json_response({"error": detail}, status=400))) as url:
        result = await smoke_check(url)
    assert result.message.endswith("HTTP 400: line one\\nline two\\r\\n\\u202etxt.exe")
    assert result.message.isprintable()


# --- the scrape -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307])
async def test_scrape_follows_no_redirect(elsewhere: tuple[str, list[str]], status: int) -> None:
    target, received = elsewhere
    async with serving(redirecting(status, target)) as url:
        result = await scrape_load(url, Runtime.VLLM)
    assert received == []
    assert result.load is None
    assert result.reason == f"GET {url}/metrics: HTTP {status}: redirects are refused"


async def test_scrape_deadline_holds_against_a_slow_loris() -> None:
    async with serving(slow_loris) as url:
        started = time.monotonic()
        result = await scrape_load(url, Runtime.TGI, timeout_seconds=0.5)
        elapsed = time.monotonic() - started
    assert result.load is None
    assert result.reason.endswith("no answer within 0.5s")
    assert elapsed < 1.5


async def test_scrape_refuses_a_huge_page_in_bounded_memory() -> None:
    async with serving(streaming(64 * MiB)) as url:
        with peak_traced() as peak:
            result = await scrape_load(url, Runtime.TGI)
    assert result.load is None
    assert result.reason.endswith(f"page larger than {2 * MiB} bytes")
    assert peak[0] < 3 * scrape.MAX_PAGE_BYTES


@pytest.mark.parametrize(
    "page",
    [
        b"\x00\xff\xfe garbage \x80",
        b"# TYPE\n{{{\n",
        b'tgi_queue_size{a="\n',
        b"tgi_queue_size NaN\ntgi_batch_current_size 1\n",
    ],
    ids=["binary", "broken-comment", "open-label", "nan"],
)
async def test_scrape_of_garbage_is_unknown(page: bytes) -> None:
    async with serving(answering(lambda: web.Response(body=page))) as url:
        result = await scrape_load(url, Runtime.TGI)
    assert result.load is None
    assert result.reason.endswith("no valid tgi_queue_size and tgi_batch_current_size in the page")


async def test_scrape_parses_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed_on: list[threading.Thread] = []
    parse = signals.load_from_exposition

    def recording(text: str, runtime: Runtime) -> Load | None:
        parsed_on.append(threading.current_thread())
        return parse(text, runtime)

    monkeypatch.setattr(scrape, "load_from_exposition", recording)
    page = "tgi_queue_size 2\ntgi_batch_current_size 4\n"
    async with serving(answering(lambda: web.Response(text=page))) as url:
        result = await scrape_load(url, Runtime.TGI)
    assert result.load == Load(2, 4)
    assert parsed_on
    assert parsed_on[0] is not threading.main_thread()


# --- the one helper for text from pods ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "safe"),
    [
        ("Ready.", 200, "Ready."),
        ("a" * 300, 200, "a" * 200 + "..."),
        ("two\nlines\tand\x00nul", 200, "two\\nlines\\tand\\x00nul"),
        ("bidi \u202e and \u2028 separators", 200, "bidi \\u202e and \\u2028 separators"),
        ("emoji 🙂 and 𠜎𠜱 stay", 200, "emoji 🙂 and 𠜎𠜱 stay"),
        ("\ud800 lone surrogate", 200, "\\ud800 lone surrogate"),
        ("\n" * 10, 4, "\\n\\n\\n\\n..."),
    ],
)
def test_excerpt_truncates_and_escapes(text: str, limit: int, safe: str) -> None:
    assert excerpt(text, limit) == safe
    json.dumps(excerpt(text, limit), ensure_ascii=False).encode()  # encodable for the API server and logs
