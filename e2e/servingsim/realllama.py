"""Pods of the llama.cpp runtime served by the real llama-server, not by the simulator.

With ``--llama-server ROOT`` (the folder e2e/realruntime/fetch-llama-server unpacks), every llama.cpp pod gets a
real llama-server on its pod IP and port, started with the pod's own args and literal env. Only two things
change: ``-hf repo:quant`` (a download) becomes ``-m`` a tiny random-weight GGUF of the same family, written once
per run into the state dir by realruntime.tinygguf, and ``--host`` is the pod IP (the pod says 0.0.0.0); ``-lv 4``
is added, which changes only the log (its KV cache and system_info lines). Each server's log is kept in the state
dir. A server that exits by itself is started again after a backoff, as the kubelet would. The server is stopped
when its pod goes away, and it dies with the simulator (PR_SET_PDEATHSIG); `down` stops the simulator's process
group, which holds every server it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gemma_operator.api import Family
from gemma_operator.catalog import variants
from realruntime import llamaserver
from realruntime.tinygguf import Shape, write_gemma3, write_gemma4

from .loopback import require_loopback
from .modelconfig import flag_value

log = logging.getLogger("servingsim.llama")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SECONDS = 10.0
RESTART_BACKOFF_MAX_SECONDS = 10.0


def tiny_shape(family: Family) -> Shape:
    """Two layers (gemma4: one sliding, one global) of width 64: fast on two cores. The trained context is the
    family's largest in the catalog, so that no plan's per-slot context exceeds it."""
    context = max(v.max_context_tokens for (f, _), v in variants().items() if f is family)
    return Shape(layers=2, context=context)


@dataclass(frozen=True)
class LlamaServer:
    """The unpacked llama-server, its build, the tiny model of each family, and where pod logs go."""

    root: Path
    build: str
    models: Mapping[Family, Path]
    logs: Path

    @classmethod
    def prepare(cls, root: Path, state_dir: Path) -> LlamaServer:
        models_dir, logs = state_dir / "llama-models", state_dir / "llama-server"
        models_dir.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        models = {
            Family.GEMMA_3: write_gemma3(models_dir / "tiny-gemma3.gguf", tiny_shape(Family.GEMMA_3)),
            Family.GEMMA_4: write_gemma4(models_dir / "tiny-gemma4.gguf", tiny_shape(Family.GEMMA_4)),
        }
        return cls(root, llamaserver.version(root), models, logs)


def family_of(args: Sequence[str]) -> Family | None:
    """The Gemma family of the `-hf repo:quant` a pod downloads (its repository names it), else None."""
    repository = (flag_value(args, "-hf", "--hf-repo") or "").partition(":")[0].lower()
    return next((family for family in Family if family.value in repository), None)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the simulator dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class RealPodServer:
    """One pod's real llama-server. ``listening`` is the port once the server answers /health at all (it
    answers 503 "Loading model" until its model is loaded)."""

    def __init__(
        self,
        label: str,
        ip: str,
        ports: tuple[int, ...],
        llama: LlamaServer,
        family: Family,
        args: Sequence[str],
        env: Mapping[str, str],
    ) -> None:
        self.label = label
        self.ip = require_loopback(ip)
        wanted = flag_value(args, "--port")
        self.port = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ports else ports[0]
        self.ports = (self.port,)
        self.args = llamaserver.listening_args(llamaserver.with_model(args, llama.models[family]), self.ip, self.port)
        self.env = {**env, **llamaserver.environment(llama.root)}  # the unpacked runtime's own variables win
        self.llama = llama
        self.log_path = llama.logs / f"{label.replace('/', '_')}.log"
        self.errors: list[str] = []
        self.health = "starting"
        self.hostility = None
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._runner: asyncio.Task[None] | None = None
        self._spawning = asyncio.Lock()

    @property
    def listening(self) -> tuple[int, ...]:
        return self.ports if self.health in ("loading", "ok") else ()

    def wants_port_open(self) -> bool:
        return False  # llama-server binds its own port; there is nothing to retry here

    async def sync_listening(self) -> None:
        return None

    async def start(self) -> None:
        await self._spawn()
        self._runner = asyncio.create_task(self._run(), name=f"llama-server {self.label}")

    async def _spawn(self) -> None:
        with self.log_path.open("wb") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *llamaserver.command(self.llama.root, self.args),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.health = "starting"
        log.info(
            "%s: llama-server pid %d on %s:%d, log %s", self.label, self._process.pid, self.ip, self.port, self.log_path
        )

    async def _run(self) -> None:
        """Follow the server; when it exits by itself (a port still held, say), start it again after a backoff, as
        the kubelet restarts a container that exits."""
        while True:
            process = self._process
            assert process is not None
            await self._follow(process)
            code = await process.wait()
            self.health = "exited"
            self.restarts += 1
            delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0 ** (self.restarts - 1))
            message = f"llama-server exited with {code}, restart {self.restarts} in {delay:g}s; log: {self.log_path}"
            self.errors = [*self.errors[-4:], message]
            log.error("%s: %s", self.label, message)
            await asyncio.sleep(delay)
            async with self._spawning:
                await self._spawn()

    async def _follow(self, process: asyncio.subprocess.Process) -> None:
        """Poll /health until it answers 200 (noting the 503 while loading) or the process exits."""
        url = f"http://{self.ip}:{self.port}/health"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while process.returncode is None and self.health != "ok":
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as answer:
                        self.health = "ok" if answer.status == 200 else "loading"
                if self.health != "ok":
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        async with self._spawning:  # never between starting a process and holding it
            if self._runner is not None:
                self._runner.cancel()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()

    def describe(self) -> dict[str, Any]:
        process = self._process
        return {
            "build": self.llama.build,
            "pid": process.pid if process is not None else None,
            "health": self.health,
            "restarts": self.restarts,
            "args": self.args,
            "log": str(self.log_path),
        }
