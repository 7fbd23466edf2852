"""Reading the catalog's YAML files, shipped in the package or given by the operator's configuration."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gemma_operator.api import Family, InvalidSpec, Runtime
from gemma_operator.catalog.facts import (
    AcceleratorClass,
    AcceleratorClasses,
    AcceleratorPerformance,
    EndpointPicker,
    RuntimeFacts,
    Variant,
    WeightStorage,
)


class CatalogError(ValueError):
    """A catalog or configuration file that does not hold what it must; the message names the field."""


def _packaged(name: str) -> Any:
    return yaml.safe_load(files("gemma_operator.catalog").joinpath(name).read_text(encoding="utf-8"))


def _field_path(error: ValidationError) -> str:
    first = error.errors()[0]
    return ".".join(str(part) for part in first["loc"]) + ": " + first["msg"]


@cache
def variants() -> Mapping[tuple[Family, str], Variant]:
    """Every catalogued variant, keyed by (family, variant name)."""
    data = _packaged("models.yaml")
    result: dict[tuple[Family, str], Variant] = {}
    for family, section in data["families"].items():
        for name, facts in section["variants"].items():
            variant = Variant.model_validate({"family": family, "name": name, **facts})
            result[(variant.family, name)] = variant
    return result


def variant_names() -> dict[str, list[str]]:
    """Variant names per family, in catalog order."""
    names: dict[str, list[str]] = {}
    for family, name in variants():
        names.setdefault(family.value, []).append(name)
    return names


def gpu_only_variant_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for (family, name), variant in variants().items():
        if variant.gpu_only:
            names.setdefault(family.value, []).append(name)
    return names


def lookup(family: Family, name: str) -> Variant:
    """The variant, or InvalidSpec naming spec.model.variant and the valid choices."""
    found = variants().get((family, name))
    if found is None:
        choices = ", ".join(variant_names().get(family.value, []))
        raise InvalidSpec("spec.model.variant", f"{name!r} is not a {family.value} variant (choose one of {choices})")
    return found


@cache
def runtimes() -> Mapping[Runtime, RuntimeFacts]:
    """Runtime facts, in auto-preference order."""
    data = _packaged("runtimes.yaml")
    return {
        Runtime(name): RuntimeFacts.model_validate({"name": name, **facts}) for name, facts in data["runtimes"].items()
    }


@cache
def endpoint_picker() -> EndpointPicker:
    """The InferencePool API and the endpoint picker the operator renders for spec.routing.inferencePool."""
    return EndpointPicker.model_validate(_packaged("endpoint_picker.yaml"))


@cache
def weight_storage() -> WeightStorage:
    """How each runtime version stores each tensor group (weight_storage.yaml; `fragments` only hold YAML anchors)."""
    data = _packaged("weight_storage.yaml")
    return WeightStorage.model_validate({key: data[key] for key in ("formats", "defaultVersions", "runtimes")})


@cache
def accelerator_performance() -> Mapping[str, AcceleratorPerformance]:
    """Datasheet peaks by GPU product label (accelerator_performance.yaml)."""
    data = _packaged("accelerator_performance.yaml")
    return {product: AcceleratorPerformance.model_validate(facts) for product, facts in data["products"].items()}


def parse_accelerator_classes(data: Any, source: str = "accelerator classes") -> AcceleratorClasses:
    """Validate an accelerator-class document (the format of accelerators.yaml)."""
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        raise CatalogError(f"{source}: classes: a mapping of class names is required")
    classes = {}
    for name, facts in data["classes"].items():
        try:
            classes[name] = AcceleratorClass.model_validate({"name": name, **(facts or {})})
        except ValidationError as error:
            raise CatalogError(f"{source}: classes.{name}.{_field_path(error)}") from None
    try:
        parsed = AcceleratorClasses.model_validate({**data, "classes": classes})
    except ValidationError as error:
        raise CatalogError(f"{source}: {_field_path(error)}") from None
    if parsed.default_class not in parsed.classes:
        raise CatalogError(f"{source}: defaultClass: {parsed.default_class!r} is not among the classes")
    return parsed


def default_accelerator_classes() -> AcceleratorClasses:
    return parse_accelerator_classes(_packaged("accelerators.yaml"), "accelerators.yaml")


def load_accelerator_classes(path: Path) -> AcceleratorClasses:
    """Accelerator classes from a YAML file, e.g. the operator's --accelerator-classes."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CatalogError(f"{path}: {error}") from None
    return parse_accelerator_classes(data, str(path))
