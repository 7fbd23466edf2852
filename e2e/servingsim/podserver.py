"""One simulated pod: an aiohttp server on podIP:containerPort for each port."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from .generation import generate
from .hostile import Hostility, misbehave
from .loopback import require_loopback
from .metrics import Finished, Snapshot
from .modelconfig import ModelConfig
from .runtimes import GenKind, Reply, Runtime
from .state import Load, RequestStats

log = logging.getLogger("servingsim.pod")

GENERATION_ENDPOINTS = frozenset({"chat", "generate", "compat"})


def to_response(reply: Reply, *, close: bool = False) -> web.Response:
    headers = dict(reply.headers)
    if reply.content_type is not None:
        headers["Content-Type"] = reply.content_type
    if close:
        headers["Connection"] = "close"
    if not reply.body:
        return web.Response(status=reply.status, headers=headers)
    return web.Response(status=reply.status, body=reply.body, headers=headers)


class PodServer:
    """Serves one pod's runtime at ``ip`` on every port; see ``sync_listening``."""

    def __init__(
        self,
        label: str,
        ip: str,
        ports: tuple[int, ...],
        runtime: Runtime,
        cfg: ModelConfig,
        load: Load,
        stats: RequestStats,
    ) -> None:
        self.label = label
        self.ip = require_loopback(ip)
        self.ports = ports
        self.runtime = runtime
        self.cfg = cfg
        self.load = load
        self.stats = stats
        self.meters = runtime.meters(cfg)
        self.errors: list[str] = []
        self.hostility: Hostility | None = None
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        self._sites: dict[int, web.TCPSite] = {}
        self._lock = asyncio.Lock()

    @property
    def listening(self) -> tuple[int, ...]:
        return tuple(sorted(self._sites))

    def wants_port_open(self) -> bool:
        return not (self.load.loading and self.runtime.closes_port_while_loading)

    async def start(self) -> None:
        await self._runner.setup()
        await self.sync_listening()

    async def sync_listening(self) -> None:
        """Open every port, or close them all while a TGI/vLLM model is "loading"."""
        async with self._lock:
            if self.wants_port_open():
                for port in self.ports:
                    if port in self._sites:
                        continue
                    site = web.TCPSite(self._runner, self.ip, port, reuse_address=True)
                    try:
                        await site.start()
                    except OSError as exc:
                        message = f"cannot bind {self.ip}:{port}: {exc.strerror or exc}"
                        if message not in self.errors:  # log once; the fleet retries
                            self.errors.append(message)
                            log.error("%s: %s", self.label, message)
                        continue
                    self._sites[port] = site
                    self.errors = [e for e in self.errors if not e.startswith(f"cannot bind {self.ip}:{port}:")]
                    log.info("%s: listening on %s:%d", self.label, self.ip, port)
            else:
                for port, site in sorted(self._sites.items()):
                    await site.stop()
                    log.info("%s: closed %s:%d (model loading)", self.label, self.ip, port)
                self._sites.clear()

    async def stop(self) -> None:
        async with self._lock:
            self._sites.clear()
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        self.stats.by_route[f"{method} {path}"] += 1
        endpoint = self.runtime.routes.get((method, path))
        if endpoint is None:
            if any(p == path for (_, p) in self.runtime.routes):
                return to_response(self.runtime.method_not_allowed())
            return to_response(self.runtime.not_found())
        if self.hostility is not None and (hostile := await misbehave(self.hostility, request, endpoint)):
            return hostile
        if self.load.loading:
            if self.runtime.closes_port_while_loading:
                # The real server has no listener yet; drop connections that linger.
                return to_response(Reply(503), close=True)
            if endpoint not in self.runtime.served_while_loading:
                return to_response(self.runtime.loading())
        if endpoint in GENERATION_ENDPOINTS:
            return to_response(await self._generate(request, endpoint))
        if endpoint == "health":
            reply = self.runtime.health(self.load)
        elif endpoint == "metrics":
            body, content_type = self.meters.render(
                Snapshot(
                    waiting=self.load.waiting,
                    running=self.load.running + self.stats.in_flight,
                    kv_cache_usage=self.load.kv_cache_usage,
                )
            )
            reply = Reply(200, body, content_type)
        elif endpoint == "models":
            reply = self.runtime.models(self.cfg)
        elif endpoint == "info":
            reply = self.runtime.info(self.cfg)
        else:
            reply = self.runtime.version()
        return to_response(reply)

    async def _generate(self, request: web.Request, endpoint: str) -> Reply:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self.stats.failures += 1
            return self.runtime.invalid_json(str(exc))
        self.meters.request_started()
        kind: GenKind = "chat" if endpoint == "chat" else "generate" if endpoint == "generate" else "compat"
        parsed = self.runtime.parse(kind, body, self.cfg)
        if isinstance(parsed, Reply):
            self.stats.failures += 1
            self.meters.request_failed("validation")
            return parsed
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.stats.in_flight += 1
        try:
            if self.load.latency_seconds > 0:
                await asyncio.sleep(self.load.latency_seconds)
        finally:
            self.stats.in_flight -= 1
        completion = generate(parsed.prompt, parsed.prompt_tokens, parsed.max_new_tokens)
        seconds = loop.time() - started
        self.meters.request_finished(
            Finished(
                seconds=seconds,
                queue_seconds=0.0,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                finish=completion.finish,
            )
        )
        self.stats.completions += 1
        self.stats.by_model[parsed.model or self.cfg.model_id] += 1
        return self.runtime.completed(parsed, self.cfg, completion, seconds)
