"""`gemma-operator run`: configure and start the kopf operator."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import kopf
from kubernetes import client
from prometheus_client import start_http_server

from gemma_operator.autoscaling.policy import SCRAPE_INTERVAL_SECONDS
from gemma_operator.catalog import default_accelerator_classes, load_accelerator_classes
from gemma_operator.planning import CATALOG_IMAGES, RuntimeImages
from gemma_operator.reconcile import handlers, metrics  # importing handlers registers the kopf handlers
from gemma_operator.reconcile.autoscaler import Autoscaler
from gemma_operator.reconcile.clock import SystemClock
from gemma_operator.reconcile.controller import Controller
from gemma_operator.reconcile.election import Timing
from gemma_operator.reconcile.kube import KubeApi, load_configuration
from gemma_operator.reconcile.leadership import Elector, StandbyHealth, default_identity, kube_lease
from gemma_operator.reconcile.loops import RECONCILE_WORKERS, Loops
from gemma_operator.reconcile.pacing import Budget, Pacer


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()
    # The Lease that elects the one replica that runs (None: no election, this process is the only operator).
    leader_election_lease: str | None = None
    # Where that Lease is: the chart sets POD_NAMESPACE to the release's namespace.
    leader_election_namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE", "default"))
    liveness: str | None = "http://0.0.0.0:8080/healthz"
    metrics_port: int | None = 9090
    metrics_address: str = "0.0.0.0"
    accelerator_classes: Path | None = None
    autoscaling_interval: float = SCRAPE_INTERVAL_SECONDS
    # The runtimes' default images, in place of the catalog's (--runtime-image).
    runtime_images: RuntimeImages = field(default_factory=lambda: CATALOG_IMAGES)
    # Rollouts the operator starts on its own (an upgrade's new template): at most this many at a time per pool,
    # each holding its slot until Ready or for at most the timeout.
    upgrade_rollouts_per_class: int = Budget.per_pool
    upgrade_rollout_timeout: float = Budget.timeout_seconds
    json_logs: bool = False
    verbose: bool = False


def _api_client() -> client.ApiClient:
    configuration = load_configuration()
    # One connection per handler thread: a smaller pool discards connections and handshakes TLS again.
    configuration.connection_pool_maxsize = RECONCILE_WORKERS + 4
    return client.ApiClient(configuration)


# The exit status of a leader that lost its Lease: it stops at once, skipping kopf's graceful shutdown, as
# controller-runtime's manager does ("leader election lost", pkg/manager/internal.go, OnStoppedLeading, v0.24.1).
LOST_LEASE_EXIT = 1


def _lose_lease() -> None:
    logging.shutdown()
    os._exit(LOST_LEASE_EXIT)


def _stand_by(elector: Elector, liveness: str | None) -> bool:
    """Wait until this replica leads (True), or a SIGTERM (False); the liveness endpoint answers meanwhile."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # kopf puts its own handler in place once it runs
    health = StandbyHealth(liveness) if liveness else None
    try:
        return elector.acquire(stop)
    finally:
        if health is not None:
            health.close()


def run_operator(options: Options) -> None:
    kopf.configure(
        verbose=options.verbose, log_format=kopf.LogFormat.JSON if options.json_logs else kopf.LogFormat.PLAIN
    )
    if not options.verbose:
        # kopf logs every handler success per object: at thousands of pod events, only noise.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    classes = (
        load_accelerator_classes(options.accelerator_classes)
        if options.accelerator_classes
        else default_accelerator_classes()
    )
    if options.metrics_port is not None:
        start_http_server(options.metrics_port, addr=options.metrics_address)
    clock = SystemClock()
    log = logging.getLogger("gemma_operator")
    elector = None
    if options.leader_election_lease is not None:
        timing = Timing()
        lease = kube_lease(_api_client(), options.leader_election_namespace, options.leader_election_lease, timing)
        elector = Elector(lease, default_identity(), clock, timing)
        log.info("standing by for Lease %s/%s as %s", lease.namespace, lease.name, elector.identity)
        if not _stand_by(elector, options.liveness):
            log.info("stopped while standing by")
            return
        elector.keep(on_lost=_lose_lease)
    metrics.LEADER.set(1)
    view = handlers.IndexView()
    budget = Budget(options.upgrade_rollouts_per_class, options.upgrade_rollout_timeout)
    controller = Controller(
        KubeApi(_api_client()), classes, clock, images=options.runtime_images, pacer=Pacer(budget, clock)
    )
    loops = Loops(
        controller,
        Autoscaler(classes, clock, options.runtime_images),
        view.lookup,
        clock,
        inventory=view.inventory,
        autoscaling_interval=options.autoscaling_interval,
    )
    memo = kopf.Memo(view=view, loops=loops)
    log.info("watching %s", ", ".join(options.namespaces) or "all namespaces")
    try:
        # standalone: no kopf peering; one replica runs kopf at a time, elected by the Lease.
        kopf.run(
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            standalone=True,
            liveness_endpoint=options.liveness,
            memo=memo,
        )
    finally:
        # kopf has stopped (a SIGTERM: its graceful shutdown is done), so nothing writes any more.
        if elector is not None:
            elector.release()
