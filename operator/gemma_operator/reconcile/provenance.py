"""What the serving Deployment says of where its template came from: the operator version that rendered it and the
GemmaDeployment generation it was rendered for (annotations on the Deployment's own metadata, so that recording them
restarts no pod), and what its pods run, as status.runtime reports it."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any, Final

from gemma_operator.rendering import CONTAINER_NAME

OPERATOR_VERSION: Final = version("gemma-operator")
OPERATOR_VERSION_ANNOTATION: Final = "serving.gemma.dev/operator-version"
GENERATION_ANNOTATION: Final = "serving.gemma.dev/rendered-for-generation"


def stamp(deployment: dict[str, Any], generation: int) -> None:
    """Record on a rendered Deployment this operator's version and the generation it was rendered for."""
    annotations = deployment["metadata"].setdefault("annotations", {})
    annotations[OPERATOR_VERSION_ANNOTATION] = OPERATOR_VERSION
    annotations[GENERATION_ANNOTATION] = str(generation)


def _annotations(live: Mapping[str, Any]) -> Mapping[str, str]:
    return (live.get("metadata") or {}).get("annotations") or {}


def rendered_for(live: Mapping[str, Any]) -> int | None:
    """The generation a live Deployment's template was rendered for; None when an operator that did not record it
    rendered it."""
    recorded = _annotations(live).get(GENERATION_ANNOTATION)
    return int(recorded) if recorded is not None and recorded.isdigit() else None


def runtime_of(live: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """status.runtime from the live Deployment's template: the serving container's image and arguments, and the
    operator version that rendered it."""
    template = (((live or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    container = next((c for c in template.get("containers") or [] if c.get("name") == CONTAINER_NAME), None)
    if live is None or container is None:
        return None
    return {
        "image": str(container.get("image", "")),
        "args": [str(arg) for arg in container.get("args") or []],
        "operatorVersion": _annotations(live).get(OPERATOR_VERSION_ANNOTATION, ""),
    }
