"""The GemmaDeployment resource, and turning a document into one with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field, ValidationError

from gemma_operator.api.base import ApiModel
from gemma_operator.api.spec import GemmaDeploymentSpec

GROUP: Final = "serving.gemma.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "GemmaDeployment"
PLURAL: Final = "gemmadeployments"
SINGULAR: Final = "gemmadeployment"
SHORT_NAMES: Final = ("gd", "gemma")
DEFAULT_NAMESPACE: Final = "default"


class InvalidSpec(ValueError):
    """A document that is not a valid GemmaDeployment. `field` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ObjectMeta(ApiModel):
    """The part of metadata the operator reads."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    namespace: str = DEFAULT_NAMESPACE
    generation: int = 0
    uid: str = ""


class GemmaDeployment(ApiModel):
    """A GemmaDeployment as read from YAML or from the API server."""

    api_version: str = Field(default=API_VERSION, pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(default=KIND, pattern=f"^{KIND}$")
    metadata: ObjectMeta
    spec: GemmaDeploymentSpec


def _dotted(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_deployment(document: Mapping[str, Any]) -> GemmaDeployment:
    """Validate a GemmaDeployment document; InvalidSpec names the first offending field.

    `status` is the operator's to write, so it is not read back.
    """
    try:
        return GemmaDeployment.model_validate({k: v for k, v in document.items() if k != "status"})
    except ValidationError as error:
        first = error.errors()[0]
        # Pydantic prefixes the messages of our own validators; a person needs only the reason.
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidSpec(_dotted(first["loc"]) or "document", message) from None
