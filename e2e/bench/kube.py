"""A bare async Kubernetes client on aiohttp: the raw floor's client, and the benchmark's own eyes.

It reads a kubeconfig (client certificate or bearer token), refuses any server off loopback,
and does only what the benchmark needs: JSON requests, lists, and watch streams.
"""

from __future__ import annotations

import json
import ssl
import tempfile
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import aiohttp
import yaml

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class KubeError(RuntimeError):
    """An API call answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_data: bytes
    cert_data: bytes = b""
    key_data: bytes = b""
    token: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_data.decode())
        if self.cert_data:
            with tempfile.TemporaryDirectory() as folder:
                cert, key = Path(folder) / "client.crt", Path(folder) / "client.key"
                cert.write_bytes(self.cert_data)
                key.write_bytes(self.key_data)
                context.load_cert_chain(cert, key)
        return context


def load_kubeconfig(path: Path) -> Credentials:
    """The current context's server and user; only inline (``*-data``) certificates and tokens."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    server = str(cluster["server"])
    host = urlparse(server).hostname or ""
    if not host.startswith("127.") and host != "localhost":
        raise ValueError(f"refusing API server {server}: the benchmark stays on loopback")
    return Credentials(
        server=server,
        ca_data=b64decode(cluster["certificate-authority-data"]),
        cert_data=b64decode(user.get("client-certificate-data", "")),
        key_data=b64decode(user.get("client-key-data", "")),
        token=str(user.get("token", "")),
    )


def write_token_kubeconfig(path: Path, credentials: Credentials, user: str, token: str) -> None:
    """A kubeconfig for the same server that authenticates with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bench",
                "cluster": {
                    "server": credentials.server,
                    "certificate-authority-data": b64encode(credentials.ca_data).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": user}}],
        "current-context": "bench",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


class AsyncKube:
    """One aiohttp session against the API server, at most ``limit`` connections."""

    def __init__(self, credentials: Credentials, limit: int = 64) -> None:
        self.credentials = credentials
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncKube:
        headers = {"Accept": JSON}
        if self.credentials.token:
            headers["Authorization"] = f"Bearer {self.credentials.token}"
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context(), limit=self.limit)
        self._session = aiohttp.ClientSession(
            base_url=self.credentials.server, headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(60)
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("AsyncKube used outside 'async with'")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, path, data=data, params=params, headers={"Content-Type": content_type}
        ) as response:
            text = await response.text()
            if response.status == 404 and missing_ok:
                return {}
            if response.status >= 300:
                raise KubeError(method, path, response.status, text)
            result: dict[str, Any] = json.loads(text) if text else {}
            return result

    async def text(self, path: str) -> str:
        async with self.session.get(path, headers={"Accept": "text/plain"}) as response:
            if response.status >= 300:
                raise KubeError("GET", path, response.status, await response.text())
            return await response.text()

    async def create(self, path: str, body: Mapping[str, Any], exist_ok: bool = False) -> dict[str, Any]:
        try:
            return await self.request("POST", path, dict(body))
        except KubeError as error:
            if exist_ok and error.status == 409:
                return {}
            raise

    async def list(self, path: str, params: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], str]:
        """All items (following continue tokens) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        query = {"limit": "500", **(params or {})}
        while True:
            page = await self.request("GET", path, params=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, str(page["metadata"]["resourceVersion"])
            query["continue"] = token

    async def watch(self, path: str, resource_version: str, timeout: int = 300) -> AsyncIterator[dict[str, Any]]:
        """Events of one watch request from ``resource_version``, until the server closes it."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        async with self.session.get(
            path, params=params, timeout=aiohttp.ClientTimeout(total=timeout + 30, sock_read=timeout + 30)
        ) as response:
            if response.status >= 300:
                raise KubeError("WATCH", path, response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)
