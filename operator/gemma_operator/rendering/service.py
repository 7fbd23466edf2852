"""The Service in front of the serving pods, and its in-cluster URL."""

from __future__ import annotations

from gemma_operator.api import GemmaDeployment
from gemma_operator.catalog import runtimes
from gemma_operator.planning import Plan
from gemma_operator.rendering.container import PORT_NAME
from gemma_operator.rendering.identity import Identity, Manifest


def service(identity: Identity, port: int) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": identity.metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(identity.selector),
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def endpoint(gd: GemmaDeployment, plan: Plan) -> str:
    """In-cluster URL of the serving Service."""
    identity = Identity.of(gd)
    port = runtimes()[plan.runtime.name].port
    return f"http://{identity.name}.{identity.namespace}.svc:{port}"
