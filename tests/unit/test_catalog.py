"""catalog: the facts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gemma_operator.api import Family, InvalidSpec, Runtime, Target
from gemma_operator.catalog import (
    CatalogError,
    default_accelerator_classes,
    load_accelerator_classes,
    lookup,
    runtimes,
    variants,
)


def test_every_family_has_its_variants() -> None:
    names = {(family.value, name) for family, name in variants()}
    assert names == {
        ("gemma-4", "e2b"),
        ("gemma-4", "e4b"),
        ("gemma-4", "26b-a4b"),
        ("gemma-4", "31b"),
        ("gemma-4", "12b"),
        ("gemma-3", "1b"),
        ("gemma-3", "4b"),
        ("gemma-3", "12b"),
        ("gemma-3", "27b"),
    }


@pytest.mark.parametrize(
    ("family", "variant", "sliding", "global_"),
    [
        (Family.GEMMA_4, "31b", 50, 10),  # 60 layers, 5:1
        (Family.GEMMA_4, "26b-a4b", 25, 5),  # 30 layers, 5:1
        (Family.GEMMA_4, "e2b", 12, 3),  # 35 layers, 4:1; only the first 15 own a cache
        (Family.GEMMA_4, "e4b", 20, 4),  # 42 layers, 5:1; only the first 24 own a cache
        (Family.GEMMA_3, "27b", 52, 10),  # 62 layers, every 6th global
        (Family.GEMMA_3, "1b", 22, 4),
    ],
)
def test_layers_that_own_a_cache(family: Family, variant: str, sliding: int, global_: int) -> None:
    assert lookup(family, variant).attention.cache_owning_layers() == (sliding, global_)


@pytest.mark.parametrize(("family", "name"), list(variants()))
def test_the_mlp_widths_rebuild_the_linear_parameter_count(family: Family, name: str) -> None:
    """intermediateSize (and E2B's double-wide KV-shared MLPs, the E-models' per-layer width) and the attention
    shapes give back tensors.linear, counted independently from transformers' modules."""
    variant = lookup(family, name)
    attention, hidden = variant.attention, variant.hidden_size
    total = 0
    for layer in range(1, attention.layers + 1):
        shape = attention.global_ if attention.is_global(layer) else attention.sliding
        k_and_v = 1 if attention.is_global(layer) and attention.global_k_equals_v else 2
        own_kv = k_and_v * shape.kv_heads * shape.head_dim * hidden if attention.owns_cache(layer) else 0
        total += 2 * attention.attention_heads * shape.head_dim * hidden + own_kv
        total += 3 * hidden * variant.mlp_width(layer) + 2 * hidden * variant.per_layer_input_size
    assert total == variant.tensors.linear


def test_unknown_variant_names_the_field_and_the_choices() -> None:
    with pytest.raises(InvalidSpec) as caught:
        lookup(Family.GEMMA_3, "31b")
    assert caught.value.field == "spec.model.variant"
    assert "1b, 4b, 12b, 27b" in caught.value.message


def test_compatibility_matrix() -> None:
    tgi, vllm, llamacpp = runtimes()[Runtime.TGI], runtimes()[Runtime.VLLM], runtimes()[Runtime.LLAMACPP]
    assert not tgi.can_serve(Family.GEMMA_4, Target.GPU)
    assert tgi.auto_serves(Family.GEMMA_3, Target.GPU)
    assert tgi.can_serve(Family.GEMMA_3, Target.CPU)
    assert not tgi.auto_serves(Family.GEMMA_3, Target.CPU)
    assert vllm.can_serve(Family.GEMMA_4, Target.GPU)
    assert not vllm.can_serve(Family.GEMMA_4, Target.EDGE)
    assert llamacpp.can_serve(Family.GEMMA_4, Target.EDGE)
    assert "arm64" in llamacpp.images[Target.EDGE].architectures


def test_default_accelerator_classes() -> None:
    classes = default_accelerator_classes()
    assert classes.default_class == "h100"
    assert classes.classes["h100"].memory_mi_b == 81559
    assert classes.classes["h200"].memory_mi_b == 143771
    assert {"h100", "h200", "a100-80gb", "a100-40gb", "l4"} <= set(classes.classes)


def test_accelerator_classes_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaultClass": "mi300",
                "classes": {"mi300": {"product": "AMD-MI300X", "memoryMiB": 196608}},
                "nodeMemoryMiB": {"cpu": 1024, "edge": 512},
            }
        )
    )
    loaded = load_accelerator_classes(path)
    assert loaded.classes["mi300"].memory_gib == 192


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"defaultClass": "h100"}, "classes: a mapping of class names is required"),
        (
            {"defaultClass": "x", "classes": {"x": {"product": "P"}}, "nodeMemoryMiB": {}},
            "classes.x.memoryMiB: Field required",
        ),
        (
            {"defaultClass": "x", "classes": {"x": {"product": "P", "memoryMiB": -1}}, "nodeMemoryMiB": {}},
            "classes.x.memoryMiB: Input should be greater than 0",
        ),
        (
            {"defaultClass": "y", "classes": {"x": {"product": "P", "memoryMiB": 1}}, "nodeMemoryMiB": {}},
            "defaultClass: 'y' is not among the classes",
        ),
    ],
)
def test_broken_accelerator_classes_name_the_field(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(CatalogError, match=message):
        load_accelerator_classes(path)
