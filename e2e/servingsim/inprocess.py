"""Run the simulator in a background thread, fed with pod objects instead of a watch.

For tests that need real HTTP servers but no cluster::

    with InProcessSim() as sim:
        sim.apply_pod(pod_dict)          # API-JSON form, as the watch delivers it
        requests.get(f"http://{ip}:{port}/metrics")
        sim.control_url                  # the same control API as `python -m servingsim`
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from .app import start_control
from .fleet import Fleet
from .loopback import require_loopback
from .realllama import LlamaServer
from .watcher import PodEvent, target_for_pod

T = TypeVar("T")


def free_port(ip: str) -> int:
    """A TCP port currently free on loopback address ``ip``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((require_loopback(ip), 0))
        return int(sock.getsockname()[1])


class InProcessSim:
    """Fleet + control API on a private event loop in a daemon thread."""

    def __init__(self, control_host: str = "127.0.0.1", llama: LlamaServer | None = None) -> None:
        self._control_host = control_host
        self._llama = llama
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="servingsim", daemon=True)
        self.fleet: Fleet | None = None
        self._runner: web.AppRunner | None = None
        self._retrier: asyncio.Task[None] | None = None
        self.control_url = ""

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> Self:
        self._thread.start()

        async def setup() -> tuple[Fleet, web.AppRunner, str]:
            fleet = Fleet(self._llama)
            runner, url = await start_control(fleet, self._control_host, 0)
            fleet.synced = True
            self._retrier = asyncio.get_running_loop().create_task(fleet.retry_binds(0.2))
            return fleet, runner, url

        self.fleet, self._runner, self.control_url = self.call(setup())
        return self

    def apply_pod(self, pod: dict[str, Any]) -> None:
        """Apply a pod as an ADDED/MODIFIED watch event would."""
        decision = target_for_pod(pod)
        meta = pod["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        assert self.fleet is not None
        self.call(self.fleet.handle(PodEvent(key, decision)))

    def delete_pod(self, namespace: str, name: str) -> None:
        assert self.fleet is not None
        self.call(self.fleet.handle(PodEvent((namespace, name), None, deleted=True)))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async def teardown() -> None:
            if self._retrier is not None:
                self._retrier.cancel()
            if self.fleet is not None:
                await self.fleet.close()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            self.call(teardown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
