"""Leader election, the I/O: the Lease's reads and writes, the standby's wait, the leader's renewals, the release.

Two operator replicas run; the one that holds the Lease runs kopf, the other stands by without starting kopf, so it
makes no write but its reads of the Lease, answers the liveness endpoint and exports gemma_operator_leader 0. The
decisions are reconcile.election's.
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from kubernetes.client import ApiClient

from gemma_operator.reconcile import metrics
from gemma_operator.reconcile.clock import Clock
from gemma_operator.reconcile.election import (
    Action,
    Decision,
    Holding,
    Observation,
    Timing,
    claim,
    decide,
    observe,
    release,
)
from gemma_operator.reconcile.kube import ApiError, KubeApi, ObjectRef

LOG = logging.getLogger("gemma_operator.leadership")
CONFLICT: Final = 409


def default_identity() -> str:
    """The pod's name (POD_ID, which the chart sets), else the host's name and this process's id."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}_{os.getpid()}"


class Conflict(Exception):
    """Another candidate wrote the Lease since it was read (409): this write lost."""


class LeaseStore(Protocol):
    def read(self) -> Holding | None: ...

    def create(self, spec: dict[str, Any]) -> Holding: ...

    def replace(self, version: str, spec: dict[str, Any]) -> Holding: ...


def holding(lease: dict[str, Any]) -> Holding:
    spec = lease.get("spec") or {}
    return Holding(
        holder=spec.get("holderIdentity") or "",
        lease_seconds=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        acquired=spec.get("acquireTime"),
        version=lease["metadata"]["resourceVersion"],
    )


@dataclass(frozen=True)
class KubeLease:
    """One Lease on the API server. A replace sends the resourceVersion read (optimistic concurrency), so a write
    based on a stale read fails with 409 instead of overwriting another candidate's."""

    api: KubeApi
    namespace: str
    name: str
    timeout_seconds: float

    def _manifest(self, spec: dict[str, Any] | None = None, version: str | None = None) -> dict[str, Any]:
        metadata = {"name": self.name, "namespace": self.namespace} | ({"resourceVersion": version} if version else {})
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec or {}}

    def read(self) -> Holding | None:
        lease = self.api.get(ObjectRef.of(self._manifest()), timeout=self.timeout_seconds)
        return holding(lease) if lease is not None else None

    def create(self, spec: dict[str, Any]) -> Holding:
        return self._written(lambda: self.api.create(self._manifest(spec), timeout=self.timeout_seconds))

    def replace(self, version: str, spec: dict[str, Any]) -> Holding:
        return self._written(lambda: self.api.replace(self._manifest(spec, version), timeout=self.timeout_seconds))

    def _written(self, write: Callable[[], dict[str, Any]]) -> Holding:
        try:
            return holding(write())
        except ApiError as error:
            if error.status == CONFLICT:  # a create's AlreadyExists is 409 too: another created it first
                raise Conflict(error.message) from error
            raise


def kube_lease(api_client: ApiClient, namespace: str, name: str, timing: Timing) -> KubeLease:
    return KubeLease(KubeApi(api_client), namespace, name, timing.retry_seconds)


class Elector:
    """One candidate: ``step`` reads the Lease, decides, and writes when the decision says so."""

    def __init__(self, store: LeaseStore, identity: str, clock: Clock, timing: Timing) -> None:
        self.store = store
        self.identity = identity
        self.clock = clock
        self.timing = timing
        self.seen = Observation(None, clock.monotonic())
        # Whether a write of this candidate's succeeded: a Lease that names it from before (a restarted container
        # keeps its pod's name) is not held until renewed.
        self.wrote = False
        self._stop = threading.Event()
        self._renewing: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self.wrote and self.seen.lease is not None and self.seen.lease.holder == self.identity

    def step(self) -> Decision:
        """One round: a read, a decision, and the write it calls for. A failed read or write changes nothing but
        the decision, which the deadline (for a leader) turns into LOST in time."""
        try:
            self.seen = observe(self.seen, self.store.read(), self.identity, self.clock.monotonic())
        except Exception as error:  # the API server away, a timeout: the next round reads again
            LOG.warning("reading the Lease failed: %s", error)
        decision = decide(self.seen, self.identity, self.clock.monotonic(), self.timing)
        if decision.action in (Action.STAND_BY, Action.LOST):
            return decision
        sent = self.clock.monotonic()
        spec = claim(self.seen.lease, self.identity, self.clock.now(), self.timing)
        try:
            lease = self.store.create(spec) if self.seen.lease is None else self.store.replace(
                self.seen.lease.version, spec
            )  # fmt: skip
        except Conflict:
            LOG.info("another candidate wrote the Lease first")
        except Exception as error:
            LOG.warning("writing the Lease failed: %s", error)
        else:
            if decision.action is not Action.RENEW:
                LOG.info("leading: took the Lease as %s (transition %d)", self.identity, lease.transitions)
            self.seen = Observation(lease, sent)
            self.wrote = True
        return decide(self.seen, self.identity, self.clock.monotonic(), self.timing)

    def acquire(self, stop: threading.Event) -> bool:
        """Stand by until this candidate leads (True) or ``stop`` is set (False)."""
        metrics.LEADER.set(0)
        while True:
            decision = self.step()
            if decision.action is Action.RENEW and self.leading:
                metrics.LEADER.set(1)
                return True
            if stop.wait(decision.retry_in):
                return False

    def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew every retry period in a thread of its own; ``on_lost`` when the Lease is lost or the deadline
        passes without a renewal."""

        def renew() -> None:
            while not self._stop.is_set():
                decision = self.step()
                if decision.action is not Action.RENEW:
                    LOG.error("lost the Lease (%s, holder %r): stopping", decision.action, self.seen.lease)
                    metrics.LEADER.set(0)
                    on_lost()
                    return
                self._stop.wait(decision.retry_in)

        self._renewing = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        self._renewing.start()

    def release(self) -> None:
        """Stop renewing and give the Lease up, so that a standby takes it at its next read instead of waiting out the
        lease duration (client-go's ReleaseOnCancel). Only after the operator has stopped writing."""
        self._stop.set()
        if self._renewing is not None:
            self._renewing.join()
        if not self.leading or self.seen.lease is None:
            return
        try:
            self.store.replace(self.seen.lease.version, release(self.seen.lease, self.clock.now()))
            LOG.info("released the Lease")
        except Exception as error:  # someone else holds it already, or the API server is away: it expires
            LOG.warning("releasing the Lease failed: %s", error)
        metrics.LEADER.set(0)


class StandbyHealth:
    """The liveness endpoint while kopf (which serves it when running) is not started: 200 on its path, so that the
    kubelet does not restart a standby."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        path = parts.path or "/"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == path else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"standby": true}')

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per probe would be noise

        self.server = http.server.ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="standby-health", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Free the port for kopf's own liveness server."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
