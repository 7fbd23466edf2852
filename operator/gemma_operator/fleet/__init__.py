"""fleet: what the cluster's nodes hold and have free, and how many more replicas of each variant fit. Pure: nodes
and pods come in as plain objects, read at the edges (the CLI, the operator's indexes)."""

from gemma_operator.fleet.claims import PodClaim, Resources, pod_claim, pod_requests
from gemma_operator.fleet.report import (
    ClassReport,
    FleetReport,
    NamespaceReport,
    Surveyor,
    VariantHeadroom,
    fleet_report,
)
from gemma_operator.fleet.shapes import ReplicaShape, gpu_shapes, host_shapes

__all__ = [
    "ClassReport",
    "FleetReport",
    "NamespaceReport",
    "PodClaim",
    "ReplicaShape",
    "Resources",
    "Surveyor",
    "VariantHeadroom",
    "fleet_report",
    "gpu_shapes",
    "host_shapes",
    "pod_claim",
    "pod_requests",
]
