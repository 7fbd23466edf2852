"""The benchmark's phases, in order, on one plane: raw floor, create, steady state, restart, spec change, delete."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import accounting
from bench.accounting import Client, Snapshot
from bench.kube import MERGE_PATCH, AsyncKube, load_kubeconfig
from bench.namespaces import delete_namespace, fresh_namespace
from bench.procstat import cpu_seconds, memory_mib
from bench.profile import Profiler, summarize
from bench.raw import raw_floor, raw_manifests
from bench.timeline import Timeline
from bench.workload import CHILDREN_PER_CR, GROUP, PLURAL, VERSION, gemma, name_of, variant_of
from harness.plane import Plane
from operator_process import OperatorProcess, operator_env

RAW_NAMESPACE, NAMESPACE = "bench-raw", "bench"


@dataclass(frozen=True)
class Settings:
    crs: int
    concurrency: int = 32
    steady_seconds: float = 300
    quiet_seconds: float = 15
    timeout: float = 1800
    profile: bool = False
    work_dir: Path = Path(".")
    skip: frozenset[str] = frozenset()
    # The spec change and the delete are measured on this many CRs (writes are per CR): a rollout of
    # all of them would take the controller-manager (20 requests/s) many minutes.
    sample: int = 100


@dataclass
class Results:
    """Every number the run measured; ``latest()`` picks the published ones."""

    settings: Settings
    values: dict[str, Any] = field(default_factory=dict)

    def latest(self) -> dict[str, Any]:
        v = self.values
        return {
            "crs": self.settings.crs,
            "operatorThroughputPerS": v.get("operatorThroughputPerS"),
            "rawThroughputPerS": v.get("rawThroughputPerS"),
            "throughputRatio": v.get("throughputRatio"),
            "createLatencyP50Ms": v.get("createLatencyP50Ms"),
            "createLatencyP99Ms": v.get("createLatencyP99Ms"),
            "rawCreateLatencyP50Ms": v.get("rawCreateLatencyP50Ms"),
            "writesPerCreate": v.get("writesPerCreate"),
            "writesPerNoopResync": v.get("writesPerNoopResync"),
            "steadyStateWritesPerMinute": v.get("steadyStateWritesPerMinute"),
            "operatorRssMiB": v.get("operatorRssMiB"),
            "operatorCpuIdlePercent": v.get("operatorCpuIdlePercent"),
        }


def log(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def status_changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How many statuses changed, and for the first few, which fields (to explain a write that should not be)."""
    changed = {name: status for name, status in after.items() if before.get(name) != status}
    sample = {
        name: {key: [before[name].get(key), status.get(key)] for key in set(before[name]) | set(status)
               if before[name].get(key) != status.get(key)}
        for name, status in list(changed.items())[:3] if name in before
    }  # fmt: skip
    return {"changed": len(changed), "sample": sample}


def plane_pids(plane: Plane) -> dict[str, int]:
    """The plane's components (as e2e/cluster/up recorded them) that are alive."""
    pids: dict[str, int] = {}
    for path in sorted((plane.state_dir / "pids").glob("*.pid")):
        text = path.read_text().strip()
        if text.isdigit() and Path(f"/proc/{text}").exists():
            pids[path.stem] = int(text)
    return pids


def reconciles(operator: OperatorProcess) -> float:
    for family in text_string_to_metric_families(operator.metrics()):
        if family.name == "gemma_operator_reconciles":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


class Bench:
    def __init__(self, plane: Plane, settings: Settings) -> None:
        self.plane = plane
        self.settings = settings
        self.results = Results(settings)
        self.names = [name_of(i) for i in range(settings.crs)]
        self.sample = self.names[:: max(1, settings.crs // settings.sample)][: settings.sample]

    def record(self, **values: Any) -> None:
        for key, value in values.items():
            self.results.values[key] = round(value, 3) if isinstance(value, float) else value
            log(f"{key} = {self.results.values[key]}")

    async def run(self) -> Results:
        s = self.settings
        async with accounting.admin_kube(self.plane.kubeconfig, limit=s.concurrency + 8) as admin:
            operator_client = await accounting.counted_client(admin, "operator", s.work_dir)
            raw_client = await accounting.counted_client(admin, "raw", s.work_dir)
            await self.raw_phase(admin, raw_client)
            await fresh_namespace(admin, NAMESPACE)
            env = operator_env(self.plane.env) | {"KUBECONFIG": str(operator_client.kubeconfig)}
            operator = OperatorProcess(env, s.work_dir / "operator.log")
            await asyncio.to_thread(operator.start)
            timeline = Timeline(admin, NAMESPACE)
            await timeline.start()
            try:
                await self.create_phase(admin, timeline, operator, operator_client)
                if "steady" not in s.skip:
                    await self.steady_phase(admin, operator, operator_client)
                if "resync" not in s.skip:
                    await self.resync_phase(admin, operator, operator_client)
                if "spec" not in s.skip:
                    await self.spec_change_phase(admin, timeline, operator, operator_client)
                if "delete" not in s.skip:
                    await self.delete_phase(admin, timeline, operator, operator_client)
            finally:
                await timeline.stop()
                operator.stop()
        return self.results

    # ---- phases -------------------------------------------------------------------------------

    def cpu(self, operator: OperatorProcess | None = None) -> dict[str, float]:
        """CPU seconds used so far by the operator and the plane's components."""
        used = {name: cpu_seconds(pid) for name, pid in plane_pids(self.plane).items()}
        used["bench client"] = cpu_seconds(os.getpid())
        if operator is not None and operator.process is not None:
            used["operator"] = cpu_seconds(operator.process.pid)
        return used

    def record_cpu(self, phase: str, before: dict[str, float], after: dict[str, float], seconds: float) -> None:
        """CPU per component over a phase, as % of one core."""
        used = {name: after[name] - before.get(name, 0.0) for name in after}
        crs = self.settings.crs
        self.record(
            **{
                f"{phase}CpuPercent": {name: round(100 * cpu / seconds, 1) for name, cpu in sorted(used.items())},
                f"{phase}CpuMsPerCr": {name: round(1000 * cpu / crs, 2) for name, cpu in sorted(used.items())},
            }
        )

    async def raw_phase(self, admin: AsyncKube, client: Client) -> None:
        s = self.settings
        await fresh_namespace(admin, RAW_NAMESPACE)
        timeline = Timeline(admin, RAW_NAMESPACE)
        await timeline.start()
        log(f"raw floor: {s.crs} x (Deployment, Service), {s.concurrency} names in flight")
        manifests = raw_manifests(s.crs, RAW_NAMESPACE)
        before, cpu_before = await accounting.snapshot(admin), self.cpu()
        async with AsyncKube(load_kubeconfig(client.kubeconfig), limit=s.concurrency) as raw_kube:
            raw = await raw_floor(raw_kube, timeline, manifests, s.concurrency)
        self.record_cpu("raw", cpu_before, self.cpu(), raw.seconds)
        counted = (await accounting.snapshot(admin) - before).writes(client)
        await timeline.stop()
        self.record(
            rawSeconds=raw.seconds,
            rawThroughputPerS=raw.throughput_per_s,
            rawCreateLatencyP50Ms=percentile(raw.latencies_ms, 50),
            rawCreateLatencyP99Ms=percentile(raw.latencies_ms, 99),
            rawWritesCounted=counted,
            rawWritesMade=raw.writes,
        )
        log("deleting the raw floor's namespace (and waiting for its pods to go)")
        self.record(rawCleanupSeconds=await delete_namespace(admin, RAW_NAMESPACE))

    async def create_phase(
        self, admin: AsyncKube, timeline: Timeline, operator: OperatorProcess, client: Client
    ) -> None:
        s = self.settings
        profiler = None
        if s.profile and operator.process is not None:
            profiler = Profiler(operator.process.pid, s.work_dir / "profile-create.txt")
            profiler.start()
        before = await accounting.snapshot(admin)
        reads_before = before.reads(client)
        gate = asyncio.Semaphore(s.concurrency)
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"

        async def create(index: int) -> None:
            async with gate:
                await admin.create(path, gemma(name_of(index), variant_of(index), NAMESPACE))

        log(f"creating {s.crs} GemmaDeployments, {s.concurrency} in flight")
        cpu_before = self.cpu(operator)
        started = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(s.crs)))
        created = time.monotonic()
        converged = await timeline.until(
            lambda: timeline.converged(self.names), s.timeout, "every CR's children and status"
        )
        self.record_cpu("create", cpu_before, self.cpu(operator), converged - started)
        ready = await timeline.until(lambda: timeline.all_ready(self.names), s.timeout, "every CR Ready")
        if profiler is not None:
            profiler.stop()
            self.record(profileCreate=summarize(profiler.output))
        after = await self.quiet(admin, client, operator)
        delta = after - before
        latencies = [(timeline.deployments.added[n] - timeline.gemmas.added[n]) * 1000 for n in self.names]
        last = max(timeline.converged_at(n) for n in self.names)
        operator_rate = s.crs / (last - started)
        self.record(
            createSeconds=created - started,
            convergedSeconds=converged - started,
            allReadySeconds=ready - started,
            operatorThroughputPerS=operator_rate,
            throughputRatio=operator_rate / self.results.values["rawThroughputPerS"],
            createLatencyP50Ms=percentile(latencies, 50),
            createLatencyP99Ms=percentile(latencies, 99),
            writesPerCreate=delta.writes(client) / s.crs,
            readsPerCreate=(after.reads(client) - reads_before) / s.crs,
            childrenPerCr=CHILDREN_PER_CR,
            createWritesByVerb=accounting.operator_write_breakdown(delta),
            rssAfterCreateMiB=memory_mib(self.pid(operator))["VmRSS"],
        )

    async def steady_phase(self, admin: AsyncKube, operator: OperatorProcess, client: Client) -> None:
        s = self.settings
        log(f"steady state: {s.steady_seconds:g} s idle")
        pid = self.pid(operator)
        before, cpu_before, started = await accounting.snapshot(admin), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(s.steady_seconds)
        after, cpu_after, elapsed = await accounting.snapshot(admin), cpu_seconds(pid), time.monotonic() - started
        memory = memory_mib(pid)
        delta = after - before
        self.record(
            steadyStateWritesPerMinute=delta.writes(client) / (elapsed / 60),
            steadyStateReadsPerMinute=delta.reads(client) / (elapsed / 60),
            operatorCpuIdlePercent=100 * (cpu_after - cpu_before) / elapsed,
            operatorRssMiB=memory["VmRSS"],
            operatorPeakRssMiB=memory["VmHWM"],
        )

    async def resync_phase(self, admin: AsyncKube, operator: OperatorProcess, client: Client) -> None:
        s = self.settings
        log("no-op resync: restarting the operator")
        statuses = await self.statuses(admin)
        before = await accounting.snapshot(admin)
        operator.stop()
        started = time.monotonic()
        await asyncio.to_thread(operator.start)
        await self.wait_for(lambda: reconciles(operator) >= s.crs, "a reconcile of every CR after the restart")
        resumed = time.monotonic()
        after = await self.quiet(admin, client, operator)
        delta = after - before
        self.record(
            resyncSeconds=resumed - started,
            writesPerNoopResync=delta.writes(client) / s.crs,
            readsPerNoopResync=delta.reads(client) / s.crs,
            resyncWritesByVerb=accounting.operator_write_breakdown(delta),
            resyncStatusChanges=status_changes(statuses, await self.statuses(admin)),
        )

    async def spec_change_phase(
        self, admin: AsyncKube, timeline: Timeline, operator: OperatorProcess, client: Client
    ) -> None:
        s = self.settings
        log(f"spec change: maxConcurrentSequences 4 -> 2 on {len(self.sample)} CRs (a new template, so a rollout)")
        before = await accounting.snapshot(admin)
        gate = asyncio.Semaphore(s.concurrency)
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"

        async def patch(name: str) -> None:
            async with gate:
                await admin.request(
                    "PATCH", f"{path}/{name}", {"spec": {"serving": {"maxConcurrentSequences": 2}}},
                    content_type=MERGE_PATCH,
                )  # fmt: skip

        started = time.monotonic()
        await asyncio.gather(*(patch(name) for name in self.sample))
        await timeline.until(lambda: timeline.all_ready(self.sample, 2), s.timeout, "the CRs Ready at generation 2")
        ready = time.monotonic()
        after = await self.quiet(admin, client, operator)
        delta = after - before
        self.record(
            specChangeSeconds=ready - started,
            specChangeCrs=len(self.sample),
            writesPerSpecChange=delta.writes(client) / len(self.sample),
            specChangeWritesByVerb=accounting.operator_write_breakdown(delta),
        )

    async def delete_phase(
        self, admin: AsyncKube, timeline: Timeline, operator: OperatorProcess, client: Client
    ) -> None:
        s = self.settings
        log(f"delete: {len(self.sample)} CRs; the garbage collector takes the children")
        before = await accounting.snapshot(admin)
        gate = asyncio.Semaphore(s.concurrency)
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"

        async def delete(name: str) -> None:
            async with gate:
                await admin.request("DELETE", f"{path}/{name}", missing_ok=True)

        started = time.monotonic()
        await asyncio.gather(*(delete(name) for name in self.sample))
        await timeline.until(
            lambda: (
                not any(
                    name in live
                    for name in self.sample
                    for live in (timeline.gemmas.live, timeline.deployments.live, timeline.services.live)
                )
            ),
            s.timeout,
            "the deleted CRs and their children gone",
        )
        gone = time.monotonic()
        after = await self.quiet(admin, client, operator)
        delta = after - before
        self.record(
            deleteSeconds=gone - started,
            writesPerDelete=delta.writes(client) / len(self.sample),
            deleteWritesByVerb=accounting.operator_write_breakdown(delta),
        )

    # ---- helpers ------------------------------------------------------------------------------

    async def statuses(self, admin: AsyncKube) -> dict[str, dict[str, Any]]:
        items, _ = await admin.list(f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}")
        return {item["metadata"]["name"]: dict(item.get("status") or {}) for item in items}

    @staticmethod
    def pid(operator: OperatorProcess) -> int:
        if operator.process is None:
            raise RuntimeError("the operator is not running")
        return operator.process.pid

    async def wait_for(self, predicate: Callable[[], bool], what: str, interval: float = 1.0) -> None:
        deadline = time.monotonic() + self.settings.timeout
        while not await asyncio.to_thread(predicate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(interval)

    async def quiet(self, admin: AsyncKube, client: Client, operator: OperatorProcess) -> Snapshot:
        """Wait until the operator has made no write and no reconcile for ``quiet_seconds``; the snapshot then."""
        s = self.settings
        deadline = time.monotonic() + s.timeout
        last = await accounting.snapshot(admin)
        last_reconciles = await asyncio.to_thread(reconciles, operator)
        still_since = time.monotonic()
        while time.monotonic() - still_since < s.quiet_seconds:
            if time.monotonic() > deadline:
                raise TimeoutError("the operator never went quiet")
            await asyncio.sleep(2.5)
            now = await accounting.snapshot(admin)
            now_reconciles = await asyncio.to_thread(reconciles, operator)
            if now.writes(client) != last.writes(client) or now_reconciles != last_reconciles:
                still_since = time.monotonic()
            last, last_reconciles = now, now_reconciles
        return last
