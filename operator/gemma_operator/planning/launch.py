"""Each runtime's command-line arguments, from the decisions of a plan, and the flags that makes the operator's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import RuntimeFacts
from gemma_operator.planning.sizers import PLANNED_CTX_CHECKPOINTS


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
    prefill_chunk_tokens: int
    # The runtime's, or the accelerator class's where it overrides it.
    memory_utilization: float
    # CPU cores the replica requests: llama.cpp's threads.
    cpus: int
    # An int4 model.repository: the checkpoint carries its quantisation, which vLLM reads itself.
    prequantized: bool = False


@dataclass(frozen=True)
class Flag:
    """An option the operator sets: the spelling it renders, the others the runtime also reads, and what decides it."""

    name: str
    set_by: str
    aliases: tuple[str, ...] = ()

    def __call__(self, *values: str) -> list[str]:
        return [self.name, *values]

    def spelled_by(self, arg: str) -> bool:
        """Whether `arg` sets this option: `--flag`, `--flag=value`, or (vLLM reads both) `--flag_name`."""
        return arg.split("=", 1)[0].replace("_", "-") in (self.name, *self.aliases)


MODEL = "spec.model (variant, instructionTuned, repository)"
REVISION = "spec.model.revision"
PRECISION = "spec.model.precision"
GPUS = "spec.placement.gpusPerReplica"
CONTEXT = "spec.serving.maxContextTokens"
SEQUENCES = "spec.serving.maxConcurrentSequences"
# What no spec field changes: the planner sizes memory by it, and probes, Service and scraping rely on the rest.
OPERATOR = "the operator"


class TgiFlags(NamedTuple):
    model_id: Flag = Flag("--model-id", MODEL)
    revision: Flag = Flag("--revision", REVISION)
    dtype: Flag = Flag("--dtype", PRECISION)
    quantize: Flag = Flag("--quantize", PRECISION)
    num_shard: Flag = Flag("--num-shard", GPUS)
    memory_fraction: Flag = Flag("--cuda-memory-fraction", OPERATOR)
    max_input_tokens: Flag = Flag("--max-input-tokens", CONTEXT, ("--max-input-length",))
    max_total_tokens: Flag = Flag("--max-total-tokens", CONTEXT)
    max_prefill_tokens: Flag = Flag("--max-batch-prefill-tokens", OPERATOR)
    max_concurrent_requests: Flag = Flag("--max-concurrent-requests", SEQUENCES)
    hostname: Flag = Flag("--hostname", OPERATOR)
    port: Flag = Flag("--port", OPERATOR, ("-p",))


class VllmFlags(NamedTuple):
    # The model is vLLM's positional argument; --model is its option form.
    model: Flag = Flag("--model", MODEL)
    revision: Flag = Flag("--revision", REVISION)
    host: Flag = Flag("--host", OPERATOR)
    port: Flag = Flag("--port", OPERATOR)
    tensor_parallel: Flag = Flag("--tensor-parallel-size", GPUS, ("-tp",))
    max_model_len: Flag = Flag("--max-model-len", CONTEXT)
    max_num_seqs: Flag = Flag("--max-num-seqs", SEQUENCES)
    # The prefill chunk the plan sized the sliding-window charge with (planning/sizing.py).
    max_num_batched_tokens: Flag = Flag("--max-num-batched-tokens", OPERATOR)
    memory_utilization: Flag = Flag("--gpu-memory-utilization", OPERATOR)
    dtype: Flag = Flag("--dtype", PRECISION)
    quantization: Flag = Flag("--quantization", PRECISION, ("-q",))
    reasoning_parser: Flag = Flag("--reasoning-parser", "spec.model.family")
    tool_call_parser: Flag = Flag("--tool-call-parser", "spec.model.family")
    auto_tool_choice: Flag = Flag("--enable-auto-tool-choice", "spec.model.family")


class LlamacppFlags(NamedTuple):
    hf_repo: Flag = Flag("-hf", f"{MODEL} and {PRECISION}", ("-hfr", "--hf-repo"))
    context: Flag = Flag("-c", f"{CONTEXT} x {SEQUENCES}", ("--ctx-size",))
    parallel: Flag = Flag("-np", SEQUENCES, ("--parallel",))
    batch: Flag = Flag("-b", OPERATOR, ("--batch-size",))
    ubatch: Flag = Flag("-ub", OPERATOR, ("--ubatch-size",))
    # Without -t llama-server takes the node's physical cores, whatever the container's CPU request.
    threads: Flag = Flag("-t", OPERATOR, ("--threads",))
    threads_batch: Flag = Flag("-tb", OPERATOR, ("--threads-batch",))
    # Host RAM the plan sizes: context checkpoints bounded, no prompt cache beyond the slots' own cells.
    ctx_checkpoints: Flag = Flag("--ctx-checkpoints", OPERATOR, ("--swa-checkpoints",))
    cache_ram: Flag = Flag("--cache-ram", OPERATOR, ("-cram",))
    metrics: Flag = Flag("--metrics", OPERATOR)
    host: Flag = Flag("--host", OPERATOR)
    port: Flag = Flag("--port", OPERATOR)


TGI, VLLM, LLAMACPP = TgiFlags(), VllmFlags(), LlamacppFlags()
# llama.cpp's logical batch (-b), its default (common/common.h n_batch); the micro-batch -ub is the plan's.
LLAMACPP_BATCH_TOKENS = 2048


def _tgi(launch: Launch) -> list[str]:
    args = TGI.model_id(launch.model_id)
    if launch.revision:
        args += TGI.revision(launch.revision)
    args += {
        Precision.BF16: TGI.dtype("bfloat16"),
        Precision.FP8: TGI.quantize("fp8"),
        Precision.INT4: TGI.quantize("bitsandbytes-nf4"),
    }[launch.precision]
    if launch.target is Target.GPU:
        args += TGI.num_shard(str(launch.tensor_parallel))
        args += TGI.memory_fraction(str(launch.memory_utilization))
    return [
        *args,
        *TGI.max_input_tokens(str(launch.context_tokens - 1)),
        *TGI.max_total_tokens(str(launch.context_tokens)),
        *TGI.max_prefill_tokens(str(launch.prefill_chunk_tokens)),
        # Requests beyond the batch wait in TGI's queue, which the autoscaler watches;
        # past this many TGI answers 429.
        *TGI.max_concurrent_requests(str(max(128, 32 * launch.sequences))),
        *TGI.hostname("0.0.0.0"),
        *TGI.port(str(launch.runtime.port)),
    ]


def _vllm(launch: Launch) -> list[str]:
    args = ["serve", launch.model_id]
    if launch.revision:
        args += VLLM.revision(launch.revision)
    args += [
        *VLLM.host("0.0.0.0"),
        *VLLM.port(str(launch.runtime.port)),
        *VLLM.tensor_parallel(str(launch.tensor_parallel)),
        *VLLM.max_model_len(str(launch.context_tokens)),
        *VLLM.max_num_seqs(str(launch.sequences)),
        *VLLM.max_num_batched_tokens(str(launch.prefill_chunk_tokens)),
        *VLLM.memory_utilization(str(launch.memory_utilization)),
    ]
    if not launch.prequantized:
        args += {
            Precision.BF16: VLLM.dtype("bfloat16"),
            Precision.FP8: VLLM.quantization("fp8"),
            Precision.INT4: VLLM.quantization("bitsandbytes"),
        }[launch.precision]
    if launch.family is Family.GEMMA_4:
        args += [*VLLM.reasoning_parser("gemma4"), *VLLM.tool_call_parser("gemma4"), *VLLM.auto_tool_choice()]
    return args


def _llamacpp(launch: Launch) -> list[str]:
    quant = launch.runtime.gguf_quant[launch.precision]
    return [
        *LLAMACPP.hf_repo(f"{launch.model_id}:{quant}"),
        # llama-server splits -c evenly over its -np slots.
        *LLAMACPP.context(str(launch.context_tokens * launch.sequences)),
        *LLAMACPP.parallel(str(launch.sequences)),
        *LLAMACPP.batch(str(max(launch.prefill_chunk_tokens, LLAMACPP_BATCH_TOKENS))),
        *LLAMACPP.ubatch(str(launch.prefill_chunk_tokens)),
        *LLAMACPP.threads(str(launch.cpus)),
        *LLAMACPP.threads_batch(str(launch.cpus)),
        *LLAMACPP.ctx_checkpoints(str(PLANNED_CTX_CHECKPOINTS)),
        *LLAMACPP.cache_ram("0"),
        *LLAMACPP.metrics(),
        *LLAMACPP.host("0.0.0.0"),
        *LLAMACPP.port(str(launch.runtime.port)),
    ]


# Per runtime: how its arguments are built, and every flag that building can set.
_RUNTIMES: dict[Runtime, tuple[Callable[[Launch], list[str]], tuple[Flag, ...]]] = {
    Runtime.TGI: (_tgi, tuple(TGI)),
    Runtime.VLLM: (_vllm, tuple(VLLM)),
    Runtime.LLAMACPP: (_llamacpp, tuple(LLAMACPP)),
}


def runtime_args(launch: Launch) -> list[str]:
    """The operator's own container arguments; the user's extraArgs follow them in the container."""
    build, _ = _RUNTIMES[launch.runtime.name]
    return build(launch)


def owned_flag(runtime: Runtime, extra_args: Sequence[str]) -> str | None:
    """Why `extra_args` may not be passed to `runtime`: the first one that sets a flag the operator sets."""
    _, flags = _RUNTIMES[runtime]
    for arg in extra_args:
        for flag in flags:
            if flag.spelled_by(arg):
                return (
                    f"serving.extraArgs {arg.split('=', 1)[0]} sets {runtime.value}'s {flag.name}, "
                    f"which {flag.set_by} decides" + ("" if flag.set_by == OPERATOR else "; set that instead")
                )
    return None
