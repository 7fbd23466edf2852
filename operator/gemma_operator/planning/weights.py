"""The bytes of a model's weights as a runtime really stores them, per tensor group.

Quantisation touches only some tensors: vLLM's fp8 and bitsandbytes, and TGI's, quantise Linear
layers and MoE experts; embeddings (the E-models' per-layer tables too) and norms keep the
checkpoint's 16 bits, and whether a vision or audio tower is quantised depends on the runtime, its
version and the tower's shape. llama.cpp's GGUF quantisations keep other tensors at other types,
and its mmproj file holds the towers. Some runtimes hold tensors the checkpoint lacks (vLLM's V
copy in K=V layers, TGI's second copy of the tied embeddings) or drop ones it ships. Which group
each runtime version stores in which format, with the upstream file each rule comes from:
catalog/weight_storage.yaml; what each group holds: catalog/models.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import Precision, Runtime
from gemma_operator.catalog import TensorGroup, Variant, weight_storage

GIB = 1 << 30


class StorageUnknown(ValueError):
    """No storage rule: that runtime version cannot load that family at that precision."""


@dataclass(frozen=True)
class GroupWeights:
    group: TensorGroup
    parameters: int
    format: str
    bits_per_weight: float

    @property
    def bytes(self) -> float:
        return self.parameters * self.bits_per_weight / 8


@dataclass(frozen=True)
class WeightBreakdown:
    runtime: Runtime
    # The runtime version whose rules were applied, and whether that is the version asked for.
    version: str
    version_known: bool
    precision: Precision
    groups: tuple[GroupWeights, ...]

    @property
    def total_bytes(self) -> float:
        return sum(group.bytes for group in self.groups)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def bytes_of(self, group: TensorGroup) -> float:
        """Bytes of one group; 0 where the runtime does not hold it."""
        return sum(held.bytes for held in self.groups if held.group is group)


def weights(variant: Variant, precision: Precision, runtime: Runtime, version: str | None = None) -> WeightBreakdown:
    """Bytes per tensor group of `variant` at `precision` as `runtime` at `version` stores them.

    `version` None, or one without rules of its own, takes the rules of the version the catalog pins.
    """
    storage = weight_storage()
    by_version = storage.runtimes[runtime]
    applied = version if version in by_version else storage.default_versions[runtime]
    rule = by_version[applied].get(variant.family, {}).get(precision)
    if rule is None:
        raise StorageUnknown(f"{runtime.value} {applied} does not load {variant.family.value} at {precision.value}")
    parameters = variant.checkpoint_parameters() | variant.derived_parameters()
    groups = []
    for group, stored in rule.items():
        count = parameters.get(group, 0)
        if not count:
            continue
        fmt = stored if isinstance(stored, str) else stored.resolve(variant.encoders.tower_sizes(group))
        groups.append(GroupWeights(group, count, fmt, storage.formats[fmt]))
    return WeightBreakdown(runtime, applied, applied == version or version is None, precision, tuple(groups))
