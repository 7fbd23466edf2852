"""The demo's summary: each GemmaDeployment, its plan, its readiness and the nodes its pods landed on."""

from __future__ import annotations

import argparse
from typing import Any

from kubernetes import client, config

from gemma_operator.cli.tables import table

GROUP, VERSION, PLURAL = "serving.gemma.dev", "v1alpha1", "gemmadeployments"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="ml")
    namespace = parser.parse_args().namespace
    config.load_kube_config()  # type: ignore[no-untyped-call]
    custom: Any = client.CustomObjectsApi()
    core: Any = client.CoreV1Api()
    rows = []
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        name, spec, status = item["metadata"]["name"], item["spec"], item.get("status", {})
        plan = status.get("plan", {})
        placement = plan.get("placement", {})
        pods = core.list_namespaced_pod(namespace, label_selector=status.get("selector", "")).items
        nodes = sorted({pod.spec.node_name or "(pending)" for pod in pods})
        rows.append(
            [
                name,
                f"{spec['model'].get('family', 'gemma-4')} {spec['model']['variant']}",
                plan.get("runtime", {}).get("name", "-"),
                placement.get("target", "-"),
                placement.get("acceleratorClass") or "-",
                str(placement.get("gpusPerReplica", 0)),
                f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
                ", ".join(nodes),
            ]
        )
    header = ["NAME", "MODEL", "RUNTIME", "TARGET", "ACCELERATOR", "GPUS/REPLICA", "READY", "NODES"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
