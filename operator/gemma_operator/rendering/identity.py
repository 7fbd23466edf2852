"""The names, labels and metadata every child of one GemmaDeployment shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gemma_operator.api import GemmaDeployment
from gemma_operator.rendering.names import child_name, label_value

Manifest = dict[str, Any]

MANAGER: Final = "gemma-operator"
APP_NAME: Final = "gemma"
COMPONENT: Final = "inference-server"
RUNTIME_LABEL: Final = "serving.gemma.dev/runtime"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Identity:
    """Names and labels shared by every child of one GemmaDeployment."""

    name: str
    namespace: str
    labels: dict[str, str]
    selector: dict[str, str]

    @classmethod
    def of(cls, deployment: GemmaDeployment) -> Identity:
        model = deployment.spec.model
        selector = {
            "app.kubernetes.io/name": APP_NAME,
            INSTANCE_LABEL: label_value(deployment.metadata.name),
        }
        labels = {
            **selector,
            "app.kubernetes.io/component": COMPONENT,
            MANAGED_BY_LABEL: MANAGER,
            "app.kubernetes.io/version": label_value(f"{model.family.value}-{model.variant}"),
        }
        return cls(child_name(deployment.metadata.name), deployment.metadata.namespace, labels, selector)

    @property
    def selector_string(self) -> str:
        """The selector as status.selector carries it, for the scale subresource."""
        return ",".join(f"{key}={value}" for key, value in self.selector.items())

    # The builders below return new dicts on every call: the reconciler adds ownerReferences to each child's
    # metadata, which must reach that child alone.

    def metadata(self, name: str = "") -> Manifest:
        """A child's metadata: `name` (by default the shared one), the namespace and the labels."""
        return {"name": name or self.name, "namespace": self.namespace, "labels": dict(self.labels)}

    def label_selector(self) -> Manifest:
        """The pods of this GemmaDeployment, as a LabelSelector."""
        return {"matchLabels": dict(self.selector)}
