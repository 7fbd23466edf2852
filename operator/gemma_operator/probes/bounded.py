"""One HTTP request to a serving pod, on the operator's terms: no redirects, a capped body, a deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp

REDIRECT_REFUSED: Final = "redirects are refused"
_CHUNK_BYTES: Final = 64 << 10


@dataclass(frozen=True)
class Answer:
    """A pod's answer: the status and at most the cap of its body."""

    status: int
    body: bytes
    cut: bool
    """The body went on past the cap; the rest was never read."""

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400


async def _read_capped(response: aiohttp.ClientResponse, max_body_bytes: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        room = max_body_bytes - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    max_body_bytes: int,
    timeout_seconds: float,
    json: object = None,
) -> Answer:
    """Send one request and read at most max_body_bytes of the answer, e.g. request(s, "GET", url, ...).

    A redirect is answered, not followed: a pod must not send the operator to another host
    (an SSRF). aiohttp's total timeout spans connecting, sending and reading the whole body,
    so a pod that trickles bytes is cut off too. Raises aiohttp.ClientError and TimeoutError.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    async with session.request(method, url, json=json, allow_redirects=False, timeout=timeout) as response:
        body, cut = await _read_capped(response, max_body_bytes)
        return Answer(response.status, body, cut)
