"""rendering: the child manifests of a GemmaDeployment, from its plan."""

from gemma_operator.rendering.names import child_name, label_value
from gemma_operator.rendering.render import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGER,
    RUNTIME_LABEL,
    Identity,
    cache_claim_name,
    endpoint,
    render,
)

__all__ = [
    "INSTANCE_LABEL",
    "MANAGED_BY_LABEL",
    "MANAGER",
    "RUNTIME_LABEL",
    "Identity",
    "cache_claim_name",
    "child_name",
    "endpoint",
    "label_value",
    "render",
]
