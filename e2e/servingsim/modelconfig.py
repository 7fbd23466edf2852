"""What a serving container was told to serve, read from its command, args and env.

Each runtime reads its own flags (and, for TGI and llama.cpp, the environment
variables those flags map to).  Unknown or malformed numbers fall back to the
runtime's default, as a container that ignored them would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """The served model and the limits a runtime reports about it."""

    model_id: str
    served_names: tuple[str, ...]
    max_input_tokens: int
    max_total_tokens: int
    max_concurrent_requests: int
    parallel_slots: int
    # vLLM's LoRA adapters (--lora-modules): names a request may give as its model.
    adapters: tuple[str, ...] = ()


def flag_value(argv: Sequence[str], *names: str) -> str | None:
    """The value of the last ``--flag VALUE`` or ``--flag=VALUE`` among ``names``."""
    found: str | None = None
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif token.startswith(name + "="):
                found = token[len(name) + 1 :]
    return found


def _int(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        return default
    return value if value > 0 else default


def tgi_config(argv: Sequence[str], env: Mapping[str, str], fallback: str) -> ModelConfig:
    """TGI launcher flags; each flag is also an env var (upper case, '-' → '_')."""

    def opt(*flags: str) -> str | None:
        value = flag_value(argv, *flags)
        if value is not None:
            return value
        for flag in flags:
            env_name = flag.lstrip("-").upper().replace("-", "_")
            if env_name in env:
                return env[env_name]
        return None

    model = opt("--model-id") or fallback
    max_total = _int(opt("--max-total-tokens"), 4096)
    max_input = _int(opt("--max-input-tokens", "--max-input-length"), max_total - 1)
    return ModelConfig(
        model_id=model,
        served_names=(model,),
        max_input_tokens=max_input,
        max_total_tokens=max_total,
        max_concurrent_requests=_int(opt("--max-concurrent-requests"), 128),
        parallel_slots=_int(opt("--max-concurrent-requests"), 128),
    )


def _vllm_model(argv: Sequence[str], has_command: bool, args: Sequence[str]) -> str | None:
    explicit = flag_value(argv, "--model")
    if "serve" in argv:
        after = argv[argv.index("serve") + 1 :]
        if after and not after[0].startswith("-"):
            return after[0]
    if explicit:
        return explicit
    # The vllm/vllm-openai image's entrypoint is `vllm serve`: args may start with the model.
    if not has_command and args and not args[0].startswith("-"):
        return args[0]
    return None


def lora_module_names(argv: Sequence[str]) -> tuple[str, ...]:
    """The adapter names of the last ``--lora-modules`` (vLLM keeps only the last; each takes the values up to the
    next option): ``name=path`` items, or JSON objects with a ``name`` (entrypoints/common/cli_args.py
    LoRAParserAction). A malformed item names no adapter, as vLLM would refuse to start."""
    starts = [i for i, token in enumerate(argv) if token == "--lora-modules"]
    if not starts:
        return ()
    names = []
    for item in argv[starts[-1] + 1 :]:
        if item.startswith("-"):
            break
        if "=" in item and "," not in item:
            names.append(item.split("=", 1)[0])
            continue
        try:
            document = json.loads(item)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            names.append(document["name"])
    return tuple(names)


def vllm_config(command: Sequence[str], args: Sequence[str], env: Mapping[str, str], fallback: str) -> ModelConfig:
    """`vllm serve MODEL` / `--model MODEL`; --served-model-name renames it; with --enable-lora, --lora-modules
    adds adapters."""
    argv = [*command, *args]
    model = _vllm_model(argv, bool(command), args) or env.get("MODEL_ID") or fallback
    served = flag_value(argv, "--served-model-name")
    names = tuple(served.split()) if served else (model,)
    max_len = _int(flag_value(argv, "--max-model-len"), 8192)
    seqs = _int(flag_value(argv, "--max-num-seqs"), 256)
    return ModelConfig(
        model_id=names[0],
        served_names=names,
        max_input_tokens=max_len,
        max_total_tokens=max_len,
        max_concurrent_requests=seqs,
        parallel_slots=seqs,
        adapters=lora_module_names(argv) if "--enable-lora" in argv else (),
    )


def llamacpp_config(argv: Sequence[str], env: Mapping[str, str], fallback: str) -> ModelConfig:
    """llama-server flags (`-hf REPO[:QUANT]`, `-m FILE`, `--alias`) or LLAMA_ARG_* env."""

    def opt(flags: tuple[str, ...], env_name: str) -> str | None:
        return flag_value(argv, *flags) or env.get(env_name)

    model = (
        opt(("-a", "--alias"), "LLAMA_ARG_ALIAS")
        or opt(("-hf", "-hfr", "--hf-repo"), "LLAMA_ARG_HF_REPO")
        or opt(("-m", "--model"), "LLAMA_ARG_MODEL")
        or env.get("MODEL_ID")
        or fallback
    )
    ctx = _int(opt(("-c", "--ctx-size"), "LLAMA_ARG_CTX_SIZE"), 4096)
    slots = _int(opt(("-np", "--parallel"), "LLAMA_ARG_N_PARALLEL"), 1)
    # llama-server splits -c over its -np slots: one request gets n_ctx_slot = c / np ("load_model:
    # initializing, n_slots = 4, n_ctx_slot = 8192" for -c 32768 -np 4; e2e/test_real_llamacpp.py checks it).
    per_slot = ctx // slots
    return ModelConfig(
        model_id=model,
        served_names=(model,),
        max_input_tokens=per_slot,
        max_total_tokens=per_slot,
        max_concurrent_requests=slots,
        parallel_slots=slots,
    )
