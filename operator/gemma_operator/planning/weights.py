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
VISION_GROUPS = frozenset({TensorGroup.VISION_ATTENTION, TensorGroup.VISION_MLP, TensorGroup.VISION_OTHER})
AUDIO_GROUPS = frozenset({TensorGroup.AUDIO_LINEAR, TensorGroup.AUDIO_OTHER})
TOWER_GROUPS = VISION_GROUPS | AUDIO_GROUPS
# A drafter's quantisation is its own checkpoint's (vLLM 0.33.0 model_executor/models/utils.py
# get_draft_quant_config reads the draft model's config), and the assistants ship in bf16.
ASSISTANT_BITS_PER_WEIGHT = 16


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

    @property
    def tower_bytes(self) -> float:
        """Bytes of the vision and audio towers held."""
        return sum(held.bytes for held in self.groups if held.group in TOWER_GROUPS)


def weights(
    variant: Variant,
    precision: Precision,
    runtime: Runtime,
    version: str | None = None,
    *,
    vision: bool = True,
    audio: bool = True,
) -> WeightBreakdown:
    """Bytes per tensor group of `variant` at `precision` as `runtime` at `version` stores them, with the vision
    and audio towers only where the runtime loads them.

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
    skipped = (frozenset() if vision else VISION_GROUPS) | (frozenset() if audio else AUDIO_GROUPS)
    for group, stored in rule.items():
        count = parameters.get(group, 0)
        if not count or group in skipped:
            continue
        fmt = stored if isinstance(stored, str) else stored.resolve(variant.encoders.tower_sizes(group))
        groups.append(GroupWeights(group, count, fmt, storage.formats[fmt]))
    return WeightBreakdown(runtime, applied, applied == version or version is None, precision, tuple(groups))


def assistant_bytes(variant: Variant) -> float:
    """Bytes of the variant's MTP assistant checkpoint as the runtime holds it; 0 where it has none."""
    assistant = variant.assistant
    return assistant.parameters * ASSISTANT_BITS_PER_WEIGHT / 8 if assistant else 0.0
