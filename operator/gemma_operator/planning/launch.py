"""Each runtime's command-line arguments, from the decisions of a plan, and the flags that makes the operator's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gemma_operator.api import Family, Precision, Runtime, SpeculativeMethod, Target
from gemma_operator.catalog import RuntimeFacts
from gemma_operator.planning.lora import LoraSlots
from gemma_operator.planning.modalities import Modalities
from gemma_operator.planning.sizers import PLANNED_CTX_CHECKPOINTS
from gemma_operator.planning.speculative import NGRAM_LOOKUP_TOKENS


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
    # LoRA adapters (vLLM): (name, repository) of each, and the slots reserved for them.
    adapters: tuple[tuple[str, str], ...] = ()
    lora: LoraSlots | None = None
    # vLLM's Gemma 4 tool-call and reasoning parsers.
    tool_calling: bool = False
    reasoning: bool = False
    # --- modalities and speculative decoding ---
    # What the replica serves besides text; None: the runtime's defaults, nothing rendered.
    modalities: Modalities | None = None
    speculative: SpeculativeMethod = SpeculativeMethod.NONE
    speculative_tokens: int = 0
    # The MTP assistant checkpoint (speculative mtp).
    assistant: str = ""


@dataclass(frozen=True)
class Flag:
    """An option the operator sets: the spelling it renders, what decides it, every other spelling of it the runtime
    reads, and the environment variables the runtime also reads it from.

    tests/unit/test_runtime_flags.py holds aliases and env against the tables read from each runtime's parser
    (catalog/versions/flags/), so that none is missing.
    """

    name: str
    set_by: str
    aliases: tuple[str, ...] = ()
    env: tuple[str, ...] = ()

    def __call__(self, *values: str) -> list[str]:
        return [self.name, *values]

    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def spelled_by(self, arg: str) -> bool:
        """Whether `arg` sets this option: `--flag`, `--flag=value`, or (vLLM and llama.cpp read both) `--flag_name`."""
        return _option_of(arg) in self.spellings()

    def attached_to(self, arg: str) -> bool:
        """Whether `arg` is a one-letter spelling with its value attached (`-q8`), as argparse and clap read it."""
        return any(len(s) == 2 and s[1] != "-" and arg.startswith(s) and len(arg) > 2 for s in self.spellings())

    def abbreviated_by(self, arg: str) -> bool:
        """Whether `arg` is a shorter prefix of one of this option's spellings, which argparse reads as the option
        when no other option starts with it (and refuses as ambiguous when one does)."""
        option = _option_of(arg)
        return (
            len(option) >= 2 and option != "--" and any(s.startswith(option) and s != option for s in self.spellings())
        )


def _option_of(arg: str) -> str:
    return arg.split("=", 1)[0].replace("_", "-")


MODEL = "spec.model (variant, instructionTuned, repository)"
REVISION = "spec.model.revision"
PRECISION = "spec.model.precision"
GPUS = "spec.placement.gpusPerReplica"
CONTEXT = "spec.serving.maxContextTokens"
SEQUENCES = "spec.serving.maxConcurrentSequences"
ADAPTERS = "spec.adapters"
LORA = "spec.serving.lora"
TOOL_CALLING = "spec.serving.toolCalling"
REASONING = "spec.serving.reasoning"
MODALITIES = "spec.serving.modalities"
SPECULATIVE = "spec.serving.speculative"
# What no spec field changes: the planner sizes memory by it, and probes, Service and scraping rely on the rest.
OPERATOR = "the operator"


# TGI's launcher (clap) reads every option from the environment too, by its field's name in upper case.
class TgiFlags(NamedTuple):
    model_id: Flag = Flag("--model-id", MODEL, env=("MODEL_ID",))
    revision: Flag = Flag("--revision", REVISION, env=("REVISION",))
    dtype: Flag = Flag("--dtype", PRECISION, env=("DTYPE",))
    quantize: Flag = Flag("--quantize", PRECISION, env=("QUANTIZE",))
    num_shard: Flag = Flag("--num-shard", GPUS, env=("NUM_SHARD",))
    memory_fraction: Flag = Flag("--cuda-memory-fraction", OPERATOR, env=("CUDA_MEMORY_FRACTION",))
    # --max-input-length is the launcher's deprecated field for the same limit; it refuses both together.
    max_input_tokens: Flag = Flag(
        "--max-input-tokens", CONTEXT, ("--max-input-length",), env=("MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH")
    )
    max_total_tokens: Flag = Flag("--max-total-tokens", CONTEXT, env=("MAX_TOTAL_TOKENS",))
    max_prefill_tokens: Flag = Flag("--max-batch-prefill-tokens", OPERATOR, env=("MAX_BATCH_PREFILL_TOKENS",))
    max_concurrent_requests: Flag = Flag("--max-concurrent-requests", SEQUENCES, env=("MAX_CONCURRENT_REQUESTS",))
    hostname: Flag = Flag("--hostname", OPERATOR, env=("HOSTNAME",))
    port: Flag = Flag("--port", OPERATOR, ("-p",), env=("PORT",))
    # --- speculative decoding: n-gram speculation where the checkpoint has no Medusa heads (launcher/src/main.rs).
    speculate: Flag = Flag("--speculate", SPECULATIVE, env=("SPECULATE",))


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
    # vLLM 0.33 adds --device-memory-utilization.
    memory_utilization: Flag = Flag("--gpu-memory-utilization", OPERATOR, ("--device-memory-utilization",))
    dtype: Flag = Flag("--dtype", PRECISION)
    quantization: Flag = Flag("--quantization", PRECISION, ("-q",))
    # Tool calling and reasoning.
    reasoning_parser: Flag = Flag("--reasoning-parser", REASONING)
    tool_call_parser: Flag = Flag("--tool-call-parser", TOOL_CALLING)
    # A boolean field: argparse's BooleanOptionalAction also reads --no-enable-auto-tool-choice.
    auto_tool_choice: Flag = Flag("--enable-auto-tool-choice", TOOL_CALLING, ("--no-enable-auto-tool-choice",))
    # LoRA adapters.
    enable_lora: Flag = Flag("--enable-lora", ADAPTERS, ("--no-enable-lora",))
    lora_modules: Flag = Flag("--lora-modules", ADAPTERS)
    max_loras: Flag = Flag("--max-loras", LORA)
    max_lora_rank: Flag = Flag("--max-lora-rank", LORA)
    # The adapters the host keeps loaded: all of them, so a slot is refilled from RAM, not from disk.
    max_cpu_loras: Flag = Flag("--max-cpu-loras", ADAPTERS)
    # --- modalities and speculative decoding ---
    language_model_only: Flag = Flag("--language-model-only", MODALITIES, ("--no-language-model-only",))
    limit_mm_per_prompt: Flag = Flag("--limit-mm-per-prompt", MODALITIES)
    mm_processor_kwargs: Flag = Flag("--mm-processor-kwargs", MODALITIES)
    speculative_config: Flag = Flag("--speculative-config", SPECULATIVE, ("-sc",))


# llama-server reads an option from its LLAMA_ARG_ variable (common/arg.cpp set_env).
class LlamacppFlags(NamedTuple):
    hf_repo: Flag = Flag("-hf", f"{MODEL} and {PRECISION}", ("-hfr", "--hf-repo"), ("LLAMA_ARG_HF_REPO",))
    context: Flag = Flag("-c", f"{CONTEXT} x {SEQUENCES}", ("--ctx-size",), ("LLAMA_ARG_CTX_SIZE",))
    parallel: Flag = Flag("-np", SEQUENCES, ("--parallel",), ("LLAMA_ARG_N_PARALLEL",))
    batch: Flag = Flag("-b", OPERATOR, ("--batch-size",), ("LLAMA_ARG_BATCH",))
    ubatch: Flag = Flag("-ub", OPERATOR, ("--ubatch-size",), ("LLAMA_ARG_UBATCH",))
    # Without -t llama-server takes the node's physical cores, whatever the container's CPU request.
    threads: Flag = Flag("-t", OPERATOR, ("--threads",), ("LLAMA_ARG_THREADS",))
    threads_batch: Flag = Flag("-tb", OPERATOR, ("--threads-batch",))
    # Host RAM the plan sizes: context checkpoints bounded, no prompt cache beyond the slots' own cells.
    ctx_checkpoints: Flag = Flag(
        "--ctx-checkpoints", OPERATOR, ("-ctxcp", "--swa-checkpoints"), ("LLAMA_ARG_CTX_CHECKPOINTS",)
    )
    cache_ram: Flag = Flag("--cache-ram", OPERATOR, ("-cram",), ("LLAMA_ARG_CACHE_RAM",))
    metrics: Flag = Flag("--metrics", OPERATOR, env=("LLAMA_ARG_ENDPOINT_METRICS",))
    host: Flag = Flag("--host", OPERATOR, env=("LLAMA_ARG_HOST",))
    port: Flag = Flag("--port", OPERATOR, env=("LLAMA_ARG_PORT",))
    # --- modalities and speculative decoding ---
    no_mmproj: Flag = Flag(
        "--no-mmproj",
        MODALITIES,
        ("--mmproj-auto", "--no-mmproj-auto"),
        ("LLAMA_ARG_MMPROJ_AUTO", "LLAMA_ARG_NO_MMPROJ_AUTO"),
    )
    spec_type: Flag = Flag("--spec-type", SPECULATIVE, env=("LLAMA_ARG_SPEC_TYPE",))
    ngram_size_n: Flag = Flag("--spec-ngram-simple-size-n", SPECULATIVE)
    ngram_size_m: Flag = Flag("--spec-ngram-simple-size-m", SPECULATIVE)


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
        *(TGI.speculate(str(launch.speculative_tokens)) if launch.speculative is SpeculativeMethod.NGRAM else []),
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
    if launch.reasoning:
        args += VLLM.reasoning_parser("gemma4")
    if launch.tool_calling:
        args += [*VLLM.tool_call_parser("gemma4"), *VLLM.auto_tool_choice()]
    if launch.adapters and launch.lora is not None:
        args += [
            *VLLM.enable_lora(),
            # One option with every adapter: LoRAParserAction keeps only the last --lora-modules given.
            *VLLM.lora_modules(*(f"{name}={repository}" for name, repository in launch.adapters)),
            *VLLM.max_loras(str(launch.lora.slots)),
            *VLLM.max_lora_rank(str(launch.lora.rank)),
            *VLLM.max_cpu_loras(str(len(launch.adapters))),
        ]
    return args + _vllm_modalities(launch) + _vllm_speculative(launch)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _vllm_modalities(launch: Launch) -> list[str]:
    modalities = launch.modalities
    if modalities is None:
        return []
    if modalities.text_only:
        return VLLM.language_model_only()
    args = VLLM.limit_mm_per_prompt(_json(dict(modalities.limits))) if modalities.limits else []
    if modalities.tokens_per_image is not None:
        # vLLM 0.33.0 also profiles the encoder at this budget (catalog/versions/vllm.yaml multimodal).
        args += VLLM.mm_processor_kwargs(_json({"max_soft_tokens": modalities.tokens_per_image}))
    return args


def _vllm_speculative(launch: Launch) -> list[str]:
    if launch.speculative is SpeculativeMethod.MTP:
        config = {"method": "mtp", "model": launch.assistant, "num_speculative_tokens": launch.speculative_tokens}
        return VLLM.speculative_config(_json(config))
    if launch.speculative is SpeculativeMethod.NGRAM:
        config = {
            "method": "ngram",
            "num_speculative_tokens": launch.speculative_tokens,
            "prompt_lookup_max": NGRAM_LOOKUP_TOKENS,
        }
        return VLLM.speculative_config(_json(config))
    return []


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
        *(LLAMACPP.no_mmproj() if launch.modalities is not None and launch.modalities.text_only else []),
        *(
            [
                *LLAMACPP.spec_type("ngram-simple"),
                *LLAMACPP.ngram_size_n(str(NGRAM_LOOKUP_TOKENS)),
                *LLAMACPP.ngram_size_m(str(launch.speculative_tokens)),
            ]
            if launch.speculative is SpeculativeMethod.NGRAM
            else []
        ),
    ]


# Per runtime: how its arguments are built, and every flag that building can set.
_RUNTIMES: dict[Runtime, tuple[Callable[[Launch], list[str]], tuple[Flag, ...]]] = {
    Runtime.TGI: (_tgi, tuple(TGI)),
    Runtime.VLLM: (_vllm, tuple(VLLM)),
    Runtime.LLAMACPP: (_llamacpp, tuple(LLAMACPP)),
}
# How each parser reads an argument beyond its spellings (each table's `syntax`, which a test holds these to).
# A unique prefix of an option reads as that option: vLLM's argparse keeps allow_abbrev on; clap (TGI) and
# llama.cpp take whole names.
ABBREVIATING = frozenset({Runtime.VLLM})
# A one-letter option takes its value attached (`-q8`, `-p8080`): argparse and clap do; llama.cpp does not.
ATTACHING = frozenset({Runtime.VLLM, Runtime.TGI})


def runtime_args(launch: Launch) -> list[str]:
    """The operator's own container arguments; the user's extraArgs follow them in the container."""
    build, _ = _RUNTIMES[launch.runtime.name]
    return build(launch)


def runtime_flags(runtime: Runtime) -> tuple[Flag, ...]:
    """Every flag the operator may set for `runtime`."""
    return _RUNTIMES[runtime][1]


def _decides(flag: Flag) -> str:
    return f"which {flag.set_by} decides" + ("" if flag.set_by == OPERATOR else "; set that instead")


def owned_flag(runtime: Runtime, extra_args: Sequence[str]) -> str | None:
    """Why `extra_args` may not be passed to `runtime`: the first one that sets a flag the operator sets."""
    flags = runtime_flags(runtime)
    for arg in extra_args:
        for flag in flags:
            given = arg.split("=", 1)[0]
            if flag.spelled_by(arg) or (runtime in ATTACHING and flag.attached_to(arg)):
                return f"serving.extraArgs {given} sets {runtime.value}'s {flag.name}, {_decides(flag)}"
            if runtime in ABBREVIATING and flag.abbreviated_by(arg):
                return (
                    f"serving.extraArgs {given} abbreviates {runtime.value}'s {flag.name}, which its parser reads "
                    f"for a unique prefix; {_decides(flag)}"
                )
    return None


def owned_env(runtime: Runtime, env_names: Iterable[str]) -> str | None:
    """Why a container variable named in `env_names` may not be given to `runtime`: the first one the runtime reads
    as a flag the operator sets (TGI reads every flag from the environment, llama.cpp its LLAMA_ARG_ variables)."""
    flags = runtime_flags(runtime)
    for name in env_names:
        for flag in flags:
            if name in flag.env:
                return f"serving.env {name} sets {runtime.value}'s {flag.name}, {_decides(flag)}"
    return None
