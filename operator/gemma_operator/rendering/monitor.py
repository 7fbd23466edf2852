"""The Prometheus Operator's ServiceMonitor for the serving pods' metrics, when spec.monitoring asks for it."""

from __future__ import annotations

from gemma_operator.rendering.container import PORT_NAME
from gemma_operator.rendering.identity import Identity, Manifest


def service_monitor(identity: Identity) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": identity.metadata(),
        "spec": {
            "selector": identity.label_selector(),
            "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "30s"}],
        },
    }
