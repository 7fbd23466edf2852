"""HTTP from the tests, to loopback only: pods, the simulator's control API, the operator's endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse


class NotLoopback(ValueError):
    """A URL outside 127.0.0.0/8: e2e traffic never leaves the machine."""


def require_loopback_url(url: str) -> str:
    host = urlparse(url).hostname or ""
    if host != "localhost" and not host.startswith("127."):
        raise NotLoopback(f"refusing {url!r}: e2e traffic stays inside 127.0.0.0/8")
    return url


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET a loopback URL; (status, body) for any HTTP status."""
    require_loopback_url(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8")


def http_json(method: str, url: str, body: object | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    """A JSON request to a loopback URL; (status, decoded body) for any HTTP status."""
    require_loopback_url(url)
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")
