"""Enumerations that the GemmaDeployment contract fixes (see API.md)."""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    GEMMA_4 = "gemma-4"
    GEMMA_3 = "gemma-3"


class Precision(StrEnum):
    BF16 = "bf16"
    FP8 = "fp8"
    INT4 = "int4"


class RuntimeChoice(StrEnum):
    """What the user may ask for: a runtime, or `auto` to let the planner pick."""

    AUTO = "auto"
    TGI = "tgi"
    VLLM = "vllm"
    LLAMACPP = "llamacpp"


class Runtime(StrEnum):
    """A concrete serving runtime, as a plan names it."""

    TGI = "tgi"
    VLLM = "vllm"
    LLAMACPP = "llamacpp"


class TargetChoice(StrEnum):
    AUTO = "auto"
    GPU = "gpu"
    CPU = "cpu"
    EDGE = "edge"


class Target(StrEnum):
    """The kind of node a plan places replicas on."""

    GPU = "gpu"
    CPU = "cpu"
    EDGE = "edge"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


ALLOWED_GPUS_PER_REPLICA: tuple[int, ...] = (0, 1, 2, 4, 8)
"""0 lets the planner decide; tensor parallelism only comes in powers of two."""

ALLOWED_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""vLLM's --max-lora-rank choices (vllm/config/lora.py MaxLoRARanks; the same in 0.19.1 and 0.33.0)."""
