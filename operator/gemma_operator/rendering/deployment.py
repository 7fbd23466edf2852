"""The Deployment of the serving pods: rollout strategy, pod security, placement and volumes."""

from __future__ import annotations

from gemma_operator.api import GemmaDeployment, PlacementPlan, ServingSecurityContext
from gemma_operator.catalog import RuntimeFacts
from gemma_operator.planning import Plan
from gemma_operator.rendering.claim import mounted_claim
from gemma_operator.rendering.container import (
    CONTAINER_NAME,
    MODEL_CACHE_VOLUME,
    SHARED_MEMORY_VOLUME,
    is_sharded,
    server_container,
)
from gemma_operator.rendering.identity import RUNTIME_LABEL, Identity, Manifest
from gemma_operator.rendering.rollout import decide_rollout

SHARED_MEMORY = "16Gi"
TERMINATION_GRACE_SECONDS = 60


def deployment(identity: Identity, gd: GemmaDeployment, plan: Plan, facts: RuntimeFacts, replicas: int) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": identity.metadata(),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": identity.label_selector(),
            "strategy": decide_rollout(gd, plan.placement, replicas).strategy,
            "template": {
                "metadata": {
                    "labels": {**identity.labels, RUNTIME_LABEL: facts.name.value},
                    "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER_NAME},
                },
                "spec": _pod_spec(gd, plan, facts),
            },
        },
    }


def _pod_spec(gd: GemmaDeployment, plan: Plan, facts: RuntimeFacts) -> Manifest:
    return {
        # A Service named like the runtime (say "vllm") would otherwise inject VLLM_PORT,
        # which vLLM reads as its own setting.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        # The runtime has no use for the API server: no token in the pod.
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(gd.spec.serving.security_context),
        **_placement(plan.placement),
        "containers": [server_container(gd, plan, facts)],
        "volumes": _volumes(gd, plan.placement),
    }


def _pod_security(security: ServingSecurityContext) -> Manifest:
    """Pod Security "restricted": a numeric non-root user (the images' own user is root)."""
    return {
        "runAsNonRoot": security.run_as_non_root,
        "runAsUser": security.run_as_user,
        "runAsGroup": security.run_as_group,
        "fsGroup": security.fs_group,
        # A cache claim full of weights is chowned once, not at every start.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _placement(placement: PlacementPlan) -> Manifest:
    """The node selector, the labels a node must not carry, and the tolerations: each only when there are some."""
    fields: Manifest = {}
    if placement.node_selector:
        fields["nodeSelector"] = dict(placement.node_selector)
    if placement.excluded_node_labels:
        expressions = [{"key": key, "operator": "DoesNotExist"} for key in placement.excluded_node_labels]
        fields["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": expressions}]
                }
            }
        }
    if placement.tolerations:
        fields["tolerations"] = [toleration.to_wire() for toleration in placement.tolerations]
    return fields


def _volumes(gd: GemmaDeployment, placement: PlacementPlan) -> list[Manifest]:
    claim = mounted_claim(gd)
    cache: Manifest = {"persistentVolumeClaim": {"claimName": claim}} if claim else {"emptyDir": {}}
    volumes = [{"name": MODEL_CACHE_VOLUME, **cache}]
    if is_sharded(placement):
        volumes.append({"name": SHARED_MEMORY_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": SHARED_MEMORY}})
    return volumes
