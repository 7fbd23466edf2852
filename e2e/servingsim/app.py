"""Wiring: API client, watcher, fleet and control server, with a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

from aiohttp import web
from kubernetes import config as kube_config

from .control import make_app
from .fleet import Fleet
from .loopback import NotLoopbackError, is_loopback_v4, require_loopback
from .realllama import LlamaServer
from .watcher import PodWatcher

log = logging.getLogger("servingsim")

URL_FILE = "servingsim.url"


def check_api_server(host: str) -> None:
    """The API server named by the kubeconfig must be on loopback too."""
    hostname = urlparse(host).hostname or ""
    if hostname != "localhost" and not is_loopback_v4(hostname):
        raise NotLoopbackError(f"refusing API server {host!r}: servingsim only talks to 127.0.0.0/8")


def write_url_file(state_dir: Path, url: str) -> Path:
    """Atomically write ``<state>/servingsim.url``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / URL_FILE
    tmp = path.with_name(f".{URL_FILE}.{os.getpid()}")
    tmp.write_text(url + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


async def start_control(fleet: Fleet, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(fleet), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, require_loopback(host), port, reuse_address=True)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    return runner, f"http://{host}:{bound_port}"


async def run(
    kubeconfig: str, control_host: str, control_port: int, state_dir: Path | None, llama_root: Path | None = None
) -> None:
    api = kube_config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    check_api_server(str(api.configuration.host))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    llama = None
    if llama_root is not None:
        llama = await asyncio.to_thread(LlamaServer.prepare, llama_root, state_dir or Path.cwd())
        log.info("llama.cpp pods run the real llama-server: %s (%s)", llama.build, llama_root)
    fleet = Fleet(llama)
    consumer = asyncio.create_task(fleet.run(), name="fleet")
    retrier = asyncio.create_task(fleet.retry_binds(), name="retry-binds")
    runner, url = await start_control(fleet, control_host, control_port)
    url_file = write_url_file(state_dir, url) if state_dir is not None else None
    log.info("control API at %s (API server %s)", url, api.configuration.host)

    watcher = PodWatcher(api, loop, fleet.submit)
    watcher.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        watcher.stop()
        for task in (consumer, retrier):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await fleet.close()
        await runner.cleanup()
        api.close()
        if url_file is not None:
            url_file.unlink(missing_ok=True)
        log.info("stopped")
