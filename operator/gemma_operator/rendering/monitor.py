"""The Prometheus Operator's ServiceMonitor for the serving pods' metrics, when spec.monitoring asks for it."""

from __future__ import annotations

from gemma_operator.rendering.container import PORT_NAME
from gemma_operator.rendering.identity import INSTANCE_LABEL, RUNTIME_LABEL, Identity, Manifest

# Pod labels Prometheus copies onto every series it scrapes, so that dashboards group by GemmaDeployment and
# runtime; the chart's PodMonitor copies the same ones.
POD_TARGET_LABELS = (INSTANCE_LABEL, RUNTIME_LABEL)


def service_monitor(identity: Identity) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": identity.metadata(),
        "spec": {
            "selector": identity.label_selector(),
            "podTargetLabels": list(POD_TARGET_LABELS),
            "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "30s"}],
        },
    }
