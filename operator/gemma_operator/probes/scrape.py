"""Scraping one serving pod's /metrics into the autoscaler's load signal, over plain HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import aiohttp

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load, load_from_exposition
from gemma_operator.catalog import runtimes
from gemma_operator.probes import bounded
from gemma_operator.probes.untrusted import excerpt

METRICS_PATH: Final = "/metrics"
SCRAPE_TIMEOUT_SECONDS: Final = 5.0
# A TGI page with its 1024-bucket batch histogram is a few hundred KiB, vLLM's and llama.cpp's far less:
# 2 MiB leaves several times the largest real page, and parsing that much takes ~0.5 s of CPU (8 MiB: ~2 s).
MAX_PAGE_BYTES: Final = 2 << 20


@dataclass(frozen=True)
class Scrape:
    """What one scrape learned: the load, or None and why it is unknown."""

    load: Load | None
    reason: str = ""


def _load_of(page: bytes, runtime: Runtime) -> Load | None:
    return load_from_exposition(page.decode("utf-8", errors="replace"), runtime)


async def scrape_load(
    base_url: str,
    runtime: Runtime,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout_seconds: float = SCRAPE_TIMEOUT_SECONDS,
) -> Scrape:
    """GET {base_url}/metrics and normalise it, e.g. scrape_load("http://10.1.2.3:8000", Runtime.VLLM).

    Never raises for network or HTTP trouble: the load is then None with the reason. Pass a
    shared session to reuse connections across scrapes; without one, a session is opened for
    this call.
    """
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await scrape_load(base_url, runtime, session=own, timeout_seconds=timeout_seconds)
    url = base_url.rstrip("/") + METRICS_PATH
    try:
        answer = await bounded.request(
            session, "GET", url, max_body_bytes=MAX_PAGE_BYTES, timeout_seconds=timeout_seconds
        )
    except TimeoutError:
        return Scrape(None, f"GET {url}: no answer within {timeout_seconds:g}s")
    except aiohttp.ClientError as error:
        return Scrape(None, f"GET {url}: {excerpt(str(error) or type(error).__name__)}")
    if answer.redirect:
        return Scrape(None, f"GET {url}: HTTP {answer.status}: {bounded.REDIRECT_REFUSED}")
    if answer.status != 200:
        return Scrape(None, f"GET {url}: HTTP {answer.status}")
    if answer.cut:
        return Scrape(None, f"GET {url}: page larger than {MAX_PAGE_BYTES} bytes")
    # Off the event loop: a page near the cap is half a second of parsing, which would stall every reconcile.
    load = await asyncio.to_thread(_load_of, answer.body, runtime)
    if load is None:
        names = runtimes()[runtime].metrics
        return Scrape(None, f"GET {url}: no valid {names.waiting} and {names.running} in the page")
    return Scrape(load)
