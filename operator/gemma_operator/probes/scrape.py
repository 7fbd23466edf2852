"""Scraping one serving pod's /metrics into the autoscaler's load signal, over plain HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp

from gemma_operator.api import Runtime
from gemma_operator.autoscaling.signals import Load, load_from_exposition
from gemma_operator.catalog import runtimes

METRICS_PATH: Final = "/metrics"
SCRAPE_TIMEOUT_SECONDS: Final = 5.0
# A TGI page with its 1024-bucket batch histogram is a few hundred KiB; past this it is not a metrics page.
MAX_PAGE_BYTES: Final = 8 << 20


@dataclass(frozen=True)
class Scrape:
    """What one scrape learned: the load, or None and why it is unknown."""

    load: Load | None
    reason: str = ""


def _truncated(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


async def _read_page(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or None when it grows past MAX_PAGE_BYTES."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 << 10):
        body += chunk
        if len(body) > MAX_PAGE_BYTES:
            return None
    return bytes(body)


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
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as response:
            if response.status != 200:
                return Scrape(None, f"GET {url}: HTTP {response.status}")
            page = await _read_page(response)
    except TimeoutError:
        return Scrape(None, f"GET {url}: no answer within {timeout_seconds:g}s")
    except aiohttp.ClientError as error:
        return Scrape(None, f"GET {url}: {_truncated(str(error) or type(error).__name__)}")
    if page is None:
        return Scrape(None, f"GET {url}: page larger than {MAX_PAGE_BYTES} bytes")
    load = load_from_exposition(page.decode("utf-8", errors="replace"), runtime)
    if load is None:
        names = runtimes()[runtime].metrics
        return Scrape(None, f"GET {url}: no valid {names.waiting} and {names.running} in the page")
    return Scrape(load)
