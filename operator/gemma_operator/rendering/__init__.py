"""rendering: the child manifests of a GemmaDeployment, built as data from its plan."""

from gemma_operator.rendering.claim import cache_claim_name
from gemma_operator.rendering.container import CONTAINER_NAME
from gemma_operator.rendering.identity import INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER, RUNTIME_LABEL, Identity
from gemma_operator.rendering.names import child_name, label_value
from gemma_operator.rendering.render import optional_children, render
from gemma_operator.rendering.routing import ChildRef
from gemma_operator.rendering.service import endpoint

__all__ = [
    "CONTAINER_NAME",
    "ChildRef",
    "INSTANCE_LABEL",
    "MANAGED_BY_LABEL",
    "MANAGER",
    "RUNTIME_LABEL",
    "Identity",
    "cache_claim_name",
    "child_name",
    "endpoint",
    "label_value",
    "optional_children",
    "render",
]
