"""The base of every API model: frozen, camelCase on the wire, strict about unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A frozen pydantic model whose wire names are camelCase, as Kubernetes APIs are."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, object]:
        """The object as it appears in Kubernetes: camelCase keys, enums as strings, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
