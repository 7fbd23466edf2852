"""The running pod servers, reconciled against the watcher's decisions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from .modelconfig import ModelConfig
from .podserver import PodServer
from .realllama import LlamaServer, RealPodServer, family_of
from .runtimes import RUNTIMES
from .state import Load, LoadUpdate, RequestStats
from .watcher import Decision, PodEvent, PodKey, Refusal, Snapshot, Target

log = logging.getLogger("servingsim.fleet")


class UnknownPod(KeyError):
    """No simulated pod has this namespace/name."""


class RealServerPod(ValueError):
    """The pod runs the real llama-server: its load and behaviour are its own, not the control API's."""


SIMULATED, REAL = "simulated", "real"


@dataclass
class Entry:
    target: Target
    cfg: ModelConfig
    server: PodServer | RealPodServer
    load: Load = field(default_factory=Load)
    stats: RequestStats = field(default_factory=RequestStats)

    def describe(self) -> dict[str, Any]:
        t, server = self.target, self.server
        simulated = isinstance(server, PodServer)
        return {
            "namespace": t.namespace,
            "name": t.name,
            "uid": t.uid,
            "ip": t.ip,
            "ports": list(server.ports),
            "listening": list(server.listening),
            "runtime": t.runtime,
            "container": t.container,
            "model": self.cfg.model_id,
            # A real server's load and requests are on its own /metrics and in its log, not known here.
            "load": self.load.to_json() if simulated else None,
            "requests": self.stats.to_json() if simulated else None,
            "errors": list(server.errors),
            "hostile": server.hostility.behaviour if isinstance(server, PodServer) and server.hostility else None,
            "real": None if isinstance(server, PodServer) else server.describe(),
        }


def _label(key: PodKey) -> str:
    return f"{key[0]}/{key[1]}"


class Fleet:
    """Owns every PodServer; applies watcher output one item at a time."""

    def __init__(self, llama: LlamaServer | None = None) -> None:
        self.llama = llama
        # Namespaces whose llama.cpp pods the simulator serves even with a real llama-server at hand.
        self.simulated_namespaces: set[str] = set()
        self.entries: dict[PodKey, Entry] = {}
        self.refused: dict[PodKey, Refusal] = {}
        self.synced = False
        self.queue: asyncio.Queue[PodEvent | Snapshot] = asyncio.Queue()

    def submit(self, item: PodEvent | Snapshot) -> None:
        """Called on the event loop (the watcher thread uses call_soon_threadsafe)."""
        self.queue.put_nowait(item)

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self.handle(item)
            except Exception:  # one bad pod must not stop the others
                log.exception("failed to apply %r", item)

    async def retry_binds(self, interval: float = 2.0) -> None:
        """Retry ports that failed to bind (e.g. still held by a server being replaced)."""
        while True:
            await asyncio.sleep(interval)
            for entry in list(self.entries.values()):
                server = entry.server
                if server.wants_port_open() and set(server.listening) != set(server.ports):
                    await server.sync_listening()

    async def handle(self, item: PodEvent | Snapshot) -> None:
        if isinstance(item, Snapshot):
            for key in list(self.entries):
                if key not in item.decisions:
                    await self._remove(key, "pod is gone")
            for key in list(self.refused):
                if key not in item.decisions:
                    del self.refused[key]
            for key, decision in item.decisions.items():
                await self.apply(key, decision)
            if not self.synced:
                log.info("initial pod list applied: %d pod(s) simulated", len(self.entries))
            self.synced = True
        else:
            await self.apply(item.key, item.decision, deleted=item.deleted)

    async def apply(self, key: PodKey, decision: Decision, *, deleted: bool = False) -> None:
        if not isinstance(decision, Refusal):
            self.refused.pop(key, None)
        if decision is None or isinstance(decision, Refusal):
            if isinstance(decision, Refusal) and self.refused.get(key) != decision:
                self.refused[key] = decision
                log.warning("refusing %s: %s", _label(key), decision.reason)
            if key in self.entries:
                reason = (
                    "pod deleted"
                    if deleted
                    else (decision.reason if decision is not None else "pod is no longer Running with an IP")
                )
                await self._remove(key, reason)
            return
        current = self.entries.get(key)
        if current is not None and current.target == decision:
            if set(current.server.listening) != set(current.server.ports):
                await current.server.sync_listening()  # retry ports that failed to bind
            return
        load, stats = Load(), RequestStats()
        if current is not None:
            if current.target.uid == decision.uid:
                load, stats = current.load, current.stats
            await self._remove(key, "pod changed (ip, ports, runtime or spec)")
        await self._add(decision, load, stats)

    async def _add(self, target: Target, load: Load, stats: RequestStats) -> None:
        runtime = RUNTIMES[target.runtime]
        cfg = runtime.config(target.command, target.args, target.env_map, target.name)
        label = _label(target.key)
        server = self._real(target, label) or PodServer(label, target.ip, target.ports, runtime, cfg, load, stats)
        await server.start()
        self.entries[target.key] = Entry(target, cfg, server, load, stats)
        log.info(
            "serving %s runtime=%s model=%s at %s ports=%s listening=%s",
            label,
            target.runtime,
            cfg.model_id,
            target.ip,
            ",".join(str(p) for p in target.ports),
            ",".join(str(p) for p in server.listening) or "none",
        )

    def _real(self, target: Target, label: str) -> RealPodServer | None:
        """A real llama-server for a llama.cpp pod, unless there is none, the pod's namespace is simulated, or
        its model's family cannot be told."""
        if self.llama is None or target.runtime != "llamacpp" or target.namespace in self.simulated_namespaces:
            return None
        family = family_of([*target.command, *target.args])
        if family is None:
            log.warning("%s: no Gemma family in its -hf repository; simulating it", label)
            return None
        return RealPodServer(label, target.ip, target.ports, self.llama, family, target.args, target.env_map)

    def set_namespace_mode(self, namespace: str, mode: str) -> None:
        """Whether llama.cpp pods created in the namespace from now on are real (the default) or simulated."""
        if mode == SIMULATED:
            self.simulated_namespaces.add(namespace)
        else:
            self.simulated_namespaces.discard(namespace)
        log.info("llama.cpp pods in namespace %s: %s", namespace, mode)

    async def _remove(self, key: PodKey, reason: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return
        await entry.server.stop()
        log.info("stopped %s at %s: %s", _label(key), entry.target.ip, reason)

    def get(self, namespace: str, name: str) -> Entry:
        try:
            return self.entries[(namespace, name)]
        except KeyError:
            raise UnknownPod(f"{namespace}/{name}") from None

    def simulated(self, namespace: str, name: str) -> tuple[Entry, PodServer]:
        """The pod and its simulated server; RealServerPod when a real llama-server serves it."""
        entry = self.get(namespace, name)
        if not isinstance(entry.server, PodServer):
            raise RealServerPod(
                f"pod {namespace}/{name} runs the real llama-server: its load comes from the requests it is sent; "
                f'PUT /namespaces/{namespace} {{"llamaServer": "{SIMULATED}"}} before its pods start to simulate them'
            )
        return entry, entry.server

    def ready_pods(self, namespace: str, instance: str) -> dict[str, PodServer]:
        """The simulated pods of one GemmaDeployment that serve now (listening, not loading), by name."""
        return {
            key[1]: entry.server
            for key, entry in self.entries.items()
            if key[0] == namespace
            and entry.target.instance == instance
            and isinstance(entry.server, PodServer)
            and entry.server.listening
            and not entry.load.loading
        }

    async def update_load(self, namespace: str, name: str, update: LoadUpdate) -> Entry:
        entry, server = self.simulated(namespace, name)
        entry.load.apply(update)
        await server.sync_listening()
        log.info("load %s/%s: %s", namespace, name, entry.load.to_json())
        return entry

    async def close(self) -> None:
        for key in list(self.entries):
            await self._remove(key, "servingsim shutting down")
