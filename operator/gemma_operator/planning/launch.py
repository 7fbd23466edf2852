"""Each runtime's command-line arguments, from the decisions of a plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import RuntimeFacts


@dataclass(frozen=True)
class Launch:
    """What a runtime's arguments are made from."""

    runtime: RuntimeFacts
    family: Family
    model_id: str
    revision: str
    precision: Precision
    target: Target
    tensor_parallel: int
    context_tokens: int
    sequences: int


def _tgi(launch: Launch) -> list[str]:
    args = ["--model-id", launch.model_id]
    if launch.revision:
        args += ["--revision", launch.revision]
    args += {
        Precision.BF16: ["--dtype", "bfloat16"],
        Precision.FP8: ["--quantize", "fp8"],
        Precision.INT4: ["--quantize", "bitsandbytes-nf4"],
    }[launch.precision]
    if launch.target is Target.GPU:
        args += [
            "--num-shard",
            str(launch.tensor_parallel),
            "--cuda-memory-fraction",
            str(launch.runtime.memory_utilization),
        ]
    args += [
        "--max-input-tokens",
        str(launch.context_tokens - 1),
        "--max-total-tokens",
        str(launch.context_tokens),
        "--max-batch-prefill-tokens",
        str(launch.context_tokens),
        # Requests beyond the batch wait in TGI's queue, which the autoscaler watches;
        # past this many TGI answers 429.
        "--max-concurrent-requests",
        str(max(128, 32 * launch.sequences)),
        "--hostname",
        "0.0.0.0",
        "--port",
        str(launch.runtime.port),
    ]
    return args


def _vllm(launch: Launch) -> list[str]:
    args = ["serve", launch.model_id]
    if launch.revision:
        args += ["--revision", launch.revision]
    args += [
        "--host",
        "0.0.0.0",
        "--port",
        str(launch.runtime.port),
        "--tensor-parallel-size",
        str(launch.tensor_parallel),
        "--max-model-len",
        str(launch.context_tokens),
        "--max-num-seqs",
        str(launch.sequences),
        "--gpu-memory-utilization",
        str(launch.runtime.memory_utilization),
    ]
    args += {
        Precision.BF16: ["--dtype", "bfloat16"],
        Precision.FP8: ["--quantization", "fp8"],
        Precision.INT4: ["--quantization", "bitsandbytes"],
    }[launch.precision]
    if launch.family is Family.GEMMA_4:
        args += ["--reasoning-parser", "gemma4", "--tool-call-parser", "gemma4", "--enable-auto-tool-choice"]
    return args


def _llamacpp(launch: Launch) -> list[str]:
    quant = launch.runtime.gguf_quant[launch.precision]
    return [
        "-hf",
        f"{launch.model_id}:{quant}",
        # llama-server splits -c evenly over its -np slots.
        "-c",
        str(launch.context_tokens * launch.sequences),
        "-np",
        str(launch.sequences),
        "--metrics",
        "--host",
        "0.0.0.0",
        "--port",
        str(launch.runtime.port),
    ]


_BUILDERS: dict[Runtime, Callable[[Launch], list[str]]] = {
    Runtime.TGI: _tgi,
    Runtime.VLLM: _vllm,
    Runtime.LLAMACPP: _llamacpp,
}


def runtime_args(launch: Launch, extra_args: list[str]) -> list[str]:
    """The container arguments: the runtime's own, then the user's extraArgs."""
    return _BUILDERS[launch.runtime.name](launch) + list(extra_args)
