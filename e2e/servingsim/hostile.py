"""Hostile serving pods: one misbehaviour set on one simulated pod, to show that the operator distrusts pods (#14).

Set with ``PUT /pods/{ns}/{name}/hostile`` and a body such as ``{"hostile": "redirect", "location": URL}``;
``{"hostile": null}`` makes the pod well-behaved again. Each behaviour answers the routes it is about, and
leaves the others to the runtime:

- ``huge-reply``: every route streams 64 MiB, chunked, without a Content-Length;
- ``redirect``: every route answers 307 to ``location`` (a loopback URL) plus the path;
- ``slow-loris``: every route answers 200 at once, then one byte every 50 ms until the client hangs up;
- ``garbage-metrics``: the metrics route answers bytes that are no Prometheus exposition;
- ``long-model``: the chat route answers a valid completion whose model name is 1 MiB long.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlparse

from aiohttp import web

from .loopback import is_loopback_v4
from .state import LoadFieldError

MiB: Final = 1 << 20
BEHAVIOURS: Final = ("huge-reply", "redirect", "slow-loris", "garbage-metrics", "long-model")
HUGE_REPLY_BYTES: Final = 64 * MiB
SLOW_LORIS_INTERVAL_SECONDS: Final = 0.05
GARBAGE: Final = b"\x00\xff\xfe garbage \x80\n# TYPE\n{{{\n"


@dataclass(frozen=True)
class Hostility:
    """What one pod does instead of serving; `location` only for a redirect."""

    behaviour: str
    location: str = ""


def parse_hostility(document: object) -> Hostility | None:
    """Validate the JSON body of ``PUT /pods/{ns}/{name}/hostile``; raise LoadFieldError."""
    if not isinstance(document, dict) or set(document) - {"hostile", "location"}:
        raise LoadFieldError("(body)", 'must be {"hostile": BEHAVIOUR or null, "location": URL (redirect only)}')
    behaviour, location = document.get("hostile"), document.get("location", "")
    if behaviour is None:
        return None
    if behaviour not in BEHAVIOURS:
        raise LoadFieldError("hostile", f"must be one of {', '.join(BEHAVIOURS)} or null, got {behaviour!r}")
    if (behaviour == "redirect") != bool(location):
        raise LoadFieldError("location", "a redirect needs a location, and only a redirect takes one")
    if location and not (isinstance(location, str) and is_loopback_v4(urlparse(location).hostname or "")):
        raise LoadFieldError("location", f"must be an http URL on 127.0.0.0/8, got {location!r}")
    return Hostility(str(behaviour), str(location))


async def _stream(request: web.Request, chunks: int, chunk: bytes, interval: float) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        for _ in range(chunks):
            await response.write(chunk)
            if interval:
                await asyncio.sleep(interval)
    except (ConnectionError, RuntimeError):  # the client hung up, as it should
        pass
    return response


def _long_model_completion() -> web.Response:
    completion = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "model": "m" * MiB,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Ready."}, "finish_reason": "stop"}],
    }
    return web.Response(body=json.dumps(completion).encode(), content_type="application/json")


async def misbehave(hostility: Hostility, request: web.Request, endpoint: str) -> web.StreamResponse | None:
    """The hostile answer to a request for `endpoint`, or None where the behaviour leaves the route alone."""
    behaviour = hostility.behaviour
    if behaviour == "huge-reply":
        return await _stream(request, HUGE_REPLY_BYTES // MiB, b"x" * MiB, 0.0)
    if behaviour == "redirect":
        return web.Response(status=307, headers={"Location": hostility.location + request.path}, text="moved")
    if behaviour == "slow-loris":
        return await _stream(request, 1 << 30, b"{", SLOW_LORIS_INTERVAL_SECONDS)
    if behaviour == "garbage-metrics" and endpoint == "metrics":
        return web.Response(body=GARBAGE, content_type="text/plain")
    if behaviour == "long-model" and endpoint == "chat":
        return _long_model_completion()
    return None
