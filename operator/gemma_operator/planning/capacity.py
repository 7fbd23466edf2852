"""The capacity frontier: for each variant, precision and accelerator class, how many sequences fit at which context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gemma_operator.api import GemmaDeployment, Precision
from gemma_operator.catalog import AcceleratorClasses, variants
from gemma_operator.planning.planner import plan
from gemma_operator.planning.result import Plan

FRONTIER_CONTEXTS = (8192, 32768, 131072, 262144)


@dataclass(frozen=True)
class Cell:
    """At one context: the most concurrent sequences, on the fewest GPUs per replica that hold one. None: no fit."""

    context_tokens: int
    sequences: int | None
    gpus: int | None


@dataclass(frozen=True)
class Row:
    family: str
    variant: str
    precision: Precision
    accelerator: str
    cells: tuple[Cell, ...]


def _cell(
    family: str, variant: str, precision: Precision, accelerator: str, context: int, classes: AcceleratorClasses
) -> Cell:
    deployment = GemmaDeployment.model_validate(
        {
            "metadata": {"name": "capacity"},
            "spec": {
                "model": {"family": family, "variant": variant, "precision": precision.value},
                "serving": {"maxContextTokens": context, "maxConcurrentSequences": 1},
                "placement": {"target": "gpu", "acceleratorClass": accelerator},
            },
        }
    )
    result = plan(deployment, classes)
    if not isinstance(result, Plan):
        return Cell(context, None, None)
    return Cell(context, result.fits_up_to.concurrent_sequences, result.placement.gpus_per_replica)


def frontier(classes: AcceleratorClasses) -> Iterator[Row]:
    """Every variant x precision x accelerator class, on GPUs, with the runtime auto would pick."""
    for (family, name), facts in variants().items():
        for precision in Precision:
            for accelerator in classes.classes:
                cells = tuple(
                    _cell(family.value, name, precision, accelerator, context, classes)
                    if context <= facts.max_context_tokens
                    else Cell(context, None, None)
                    for context in FRONTIER_CONTEXTS
                )
                yield Row(family.value, name, precision, accelerator, cells)
