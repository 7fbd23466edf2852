"""`gemma-operator fleet`: per class of nodes what is held and free, and how many more replicas of each variant fit
right now; per namespace what GemmaDeployments hold. It reads the nodes and pods of the cluster KUBECONFIG names."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from gemma_operator.cli.commands import OK, UsageError, accelerator_classes
from gemma_operator.cli.tables import table
from gemma_operator.fleet import FleetReport, PodClaim, Surveyor, pod_claim
from gemma_operator.planning import InventoryError, NodeInfo, node_from_object

# Objects per list call: a large cluster's pods come a page at a time.
PAGE_SIZE = 500
# The pods the scheduler counts (kubernetes pkg/scheduler/scheduler.go, newPodInformer).
NOT_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
GIB = 1 << 30


class ClusterUnreadable(Exception):
    """The cluster could not be read: no configuration, no connection, or no permission."""


def _items(list_call: Callable[..., Any], **query: Any) -> Iterator[dict[str, Any]]:
    """Every object a list call returns, as the API server sends it, a page at a time."""
    token = None
    while True:
        page = json.loads(list_call(limit=PAGE_SIZE, _continue=token, _preload_content=False, **query).data)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def read_cluster() -> tuple[tuple[NodeInfo, ...], tuple[PodClaim, ...]]:
    """The nodes, and the claims of the pods that hold or wait for resources, of the cluster KUBECONFIG names
    (else the in-cluster service account's)."""
    # Imported here: only this command needs a Kubernetes client.
    from kubernetes import client, config  # noqa: PLC0415
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
    from urllib3.exceptions import HTTPError  # noqa: PLC0415

    from gemma_operator.reconcile.kube import load_configuration  # noqa: PLC0415

    try:
        core = client.CoreV1Api(client.ApiClient(load_configuration()))
        nodes = tuple(node_from_object(node) for node in _items(core.list_node))
        pods = _items(core.list_pod_for_all_namespaces, field_selector=NOT_TERMINAL)
        claims = tuple(claim for pod in pods if (claim := pod_claim(pod)) is not None)
    except config.ConfigException as error:
        raise ClusterUnreadable(f"no cluster configuration: {error}") from None
    except ApiException as error:
        raise ClusterUnreadable(f"the API server answered {error.status} {error.reason}") from None
    except (HTTPError, InventoryError) as error:
        raise ClusterUnreadable(str(error)) from None
    return nodes, claims


def _gib(amount: int) -> str:
    return f"{amount / GIB:.0f}"


def fleet_text(report: FleetReport, output: str) -> str:
    if output == "json":
        return json.dumps(report.to_wire(), indent=2) + "\n"
    present = [report_class for report_class in report.classes if report_class.nodes]
    classes = table(
        ["CLASS", "TARGET", "NODES", "GPUS", "HELD BY GEMMA", "HELD BY OTHERS", "GPUS FREE", "CPUS FREE", "GIB FREE"],
        [
            [
                c.name + ("" if c.configured else " (no class)"),
                c.target.value,
                f"{c.schedulable_nodes}/{c.nodes}" if c.schedulable_nodes != c.nodes else str(c.nodes),
                str(c.gpus_allocatable),
                str(c.gpus_held_by_gemma_deployments),
                str(c.gpus_held_by_others),
                str(c.gpus_free),
                f"{c.cpus_free:g}/{c.cpus_allocatable:g}",
                f"{_gib(c.memory_free_bytes)}/{_gib(c.memory_allocatable_bytes)}",
            ]
            for c in present
        ],
    )
    headroom = table(
        ["CLASS", "MODEL", "PRECISION", "RUNTIME", "GPUS", "CPUS", "GIB", "FITS", "MORE REPLICAS"],
        [
            [
                c.name,
                f"{h.family.value} {h.variant}",
                h.precision.value,
                h.runtime.value if h.runtime else "-",
                str(h.gpus_per_replica),
                f"{h.cpus_per_replica:g}",
                _gib(h.memory_per_replica_bytes),
                "yes" if h.fits else h.refusal or "NO",
                str(h.replicas),
            ]
            for c in present
            for h in c.headroom
        ],
    )
    namespaces = table(
        ["NAMESPACE", "REPLICAS", "PENDING", "GPUS HELD", "GPUS HELD BY OTHERS"],
        [
            [
                n.namespace,
                str(n.replicas),
                str(n.pending_replicas),
                str(n.gpus_held_by_gemma_deployments),
                str(n.gpus_held_by_others),
            ]
            for n in report.namespaces
        ],
    )
    absent = [c.name for c in report.classes if not c.nodes]
    notes = f"No nodes of: {', '.join(absent)}.\n" if absent else ""
    return (
        f"{classes}\n\n{notes}\nHeadroom (per replica at the variant's default plan; -o json says why none fit):\n"
        f"{headroom}\n\n{namespaces}\n"
    )


def fleet_command(classes_file: Path | None, output: str, out: TextIO = sys.stdout) -> int:
    classes = accelerator_classes(classes_file)
    try:
        nodes, claims = read_cluster()
    except ClusterUnreadable as error:
        raise UsageError(f"cannot read the cluster: {error}") from None
    out.write(fleet_text(Surveyor(classes).survey(nodes, claims), output))
    return OK
