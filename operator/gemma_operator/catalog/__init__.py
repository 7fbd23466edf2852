"""catalog: facts about Gemma models, serving runtimes and accelerators, kept as data."""

from gemma_operator.catalog.facts import (
    AcceleratorClass,
    AcceleratorClasses,
    Attention,
    LayerShape,
    MetricNames,
    RuntimeFacts,
    RuntimeImage,
    Variant,
)
from gemma_operator.catalog.load import (
    CatalogError,
    default_accelerator_classes,
    gpu_only_variant_names,
    load_accelerator_classes,
    lookup,
    parse_accelerator_classes,
    precision_bits,
    runtimes,
    variant_names,
    variants,
)

__all__ = [
    "AcceleratorClass",
    "AcceleratorClasses",
    "Attention",
    "CatalogError",
    "LayerShape",
    "MetricNames",
    "RuntimeFacts",
    "RuntimeImage",
    "Variant",
    "default_accelerator_classes",
    "gpu_only_variant_names",
    "load_accelerator_classes",
    "lookup",
    "parse_accelerator_classes",
    "precision_bits",
    "runtimes",
    "variant_names",
    "variants",
]
