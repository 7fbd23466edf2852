"""The PodDisruptionBudget of a GemmaDeployment with more than one replica."""

from __future__ import annotations

from gemma_operator.rendering.identity import Identity, Manifest


def pod_disruption_budget(identity: Identity) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": identity.metadata(),
        # One replica at a time: drains proceed, and the service keeps answering.
        "spec": {"maxUnavailable": 1, "selector": identity.label_selector()},
    }
