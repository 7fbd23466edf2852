"""The PodDisruptionBudget of a GemmaDeployment with more than one replica."""

from __future__ import annotations

from gemma_operator.rendering.identity import Identity, Manifest

# One replica at a time: drains proceed, and the service keeps answering.
MAX_UNAVAILABLE = 1


def pod_disruption_budget(identity: Identity) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": identity.metadata(),
        "spec": {"maxUnavailable": MAX_UNAVAILABLE, "selector": identity.label_selector()},
    }
