"""The wire format of each serving runtime, as a table of adapters.

Shapes follow the upstream servers:
- TGI 3.3.x router (router/src/server.rs, router/src/lib.rs): /health is an empty 200
  or 503 {"error","error_type":"healthcheck"}; /info; /generate; POST / returns a
  one-element list; chat ids are "" and system_fingerprint is "<version>-<label>".
- vLLM OpenAI server: /health empty 200/503; errors {"error": {message, type, param, code}};
  chat ids "chatcmpl-<hex>"; metrics labelled model_name and engine.
- llama.cpp server: /health {"status":"ok"}; while loading every route but the model
  list answers 503 {"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from gemma_operator.catalog.versions import llamacpp as llamacpp_versions
from gemma_operator.catalog.versions import tgi as tgi_versions
from gemma_operator.catalog.versions import vllm as vllm_versions

from .generation import Completion, count_tokens, token_id
from .metrics import LlamacppMeters, Meters, TgiMeters, VllmMeters
from .modelconfig import ModelConfig, llamacpp_config, tgi_config, vllm_config
from .state import Load

# The releases the catalog pins. vLLM answers GET /version with {"version": vllm.version.__version__}
# (vllm 0.33.0: entrypoints/serve/instrumentator/basic.py, show_version; vllm/_version.py: '0.33.0').
TGI_VERSION = tgi_versions.PINNED
VLLM_VERSION = vllm_versions.PINNED
# llama-server's system_fingerprint is "b<build>-<commit>" (Debian's build 11669 says "b11669-Debian").
LLAMACPP_BUILD = f"{llamacpp_versions.PINNED}-servingsim"

JSON = "application/json"

Endpoint = Literal["health", "metrics", "models", "chat", "info", "generate", "compat", "version"]
GenKind = Literal["chat", "generate", "compat"]


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, independent of the HTTP server library."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return json.loads(self.body)


def json_reply(status: int, document: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(document).encode("utf-8"), JSON, headers)


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8")


@dataclass(frozen=True)
class GenRequest:
    """A generation request, already validated by its runtime."""

    kind: GenKind
    prompt: str
    prompt_tokens: int
    max_new_tokens: int | None
    model: str | None = None
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool = False
    seed: int | None = None


class InvalidRequest(Exception):
    """A generation request the runtime would reject; the message names the field."""


def _int_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"`{name}` must be an integer")
    if value <= 0:
        raise InvalidRequest(f"`{name}` must be strictly positive")
    return value


def _chat_prompt(body: Mapping[str, Any]) -> str:
    """Concatenated message text; raises ValueError naming what is wrong."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("`messages` must be a non-empty list")
    parts: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"`messages[{i}].role` must be a string")
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(chunk.get("text", "")) for chunk in content if isinstance(chunk, dict))
        elif content is not None:
            raise InvalidRequest(f"`messages[{i}].content` must be a string or a list of parts")
    return "\n".join(parts)


def finish_for_chat(completion: Completion) -> str:
    return "length" if completion.finish == "length" else "stop"


class Runtime(ABC):
    """One runtime's wire format."""

    name: ClassVar[str]
    image_markers: ClassVar[tuple[str, ...]]
    # TGI and vLLM open their port only once the model is loaded.
    closes_port_while_loading: ClassVar[bool] = True
    # Endpoints still answered while loading when the port stays open.
    served_while_loading: ClassVar[frozenset[Endpoint]] = frozenset()
    routes: ClassVar[Mapping[tuple[str, str], Endpoint]]

    @abstractmethod
    def config(
        self,
        command: Sequence[str],
        args: Sequence[str],
        env: Mapping[str, str],
        fallback: str,
    ) -> ModelConfig: ...

    @abstractmethod
    def meters(self, cfg: ModelConfig) -> Meters: ...

    @abstractmethod
    def health(self, load: Load) -> Reply: ...

    def loading(self) -> Reply:
        return text_reply(503, "loading")

    @abstractmethod
    def not_found(self) -> Reply: ...

    def method_not_allowed(self) -> Reply:
        return Reply(405)

    @abstractmethod
    def models(self, cfg: ModelConfig) -> Reply: ...

    def info(self, cfg: ModelConfig) -> Reply:
        return self.not_found()

    def version(self) -> Reply:
        return self.not_found()

    @abstractmethod
    def error(self, status: int, message: str, kind: str = "validation") -> Reply: ...

    def invalid_json(self, message: str) -> Reply:
        return self.error(400, message)

    def parse(self, kind: GenKind, body: object, cfg: ModelConfig) -> GenRequest | Reply:
        """Validate a generation request body; return the request or an error reply."""
        if not isinstance(body, dict):
            return self.error(400 if kind == "chat" else 422, "request body must be a JSON object")
        try:
            if body.get("stream"):
                return self.error(400, "servingsim does not simulate streaming responses")
            if kind == "chat":
                return self._parse_chat(body, cfg)
            return self._parse_generate(kind, body, cfg)
        except InvalidRequest as exc:
            return self.error(422 if self.name == "tgi" else 400, str(exc))

    def _parse_chat(self, body: Mapping[str, Any], cfg: ModelConfig) -> GenRequest | Reply:
        prompt = _chat_prompt(body)
        limit = _int_field(body, "max_completion_tokens") or _int_field(body, "max_tokens")
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("`model` must be a string")
        seed = body.get("seed")
        return GenRequest(
            kind="chat",
            prompt=prompt,
            prompt_tokens=count_tokens(prompt) + 4 * len(body["messages"]),
            max_new_tokens=limit,
            model=model,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        )

    def _parse_generate(self, kind: GenKind, body: Mapping[str, Any], cfg: ModelConfig) -> GenRequest | Reply:
        return self.not_found()

    @abstractmethod
    def completed(
        self,
        request: GenRequest,
        cfg: ModelConfig,
        completion: Completion,
        seconds: float,
    ) -> Reply: ...


class Tgi(Runtime):
    name = "tgi"
    image_markers = ("text-generation-inference",)
    routes: ClassVar[Mapping[tuple[str, str], Endpoint]] = {
        ("GET", "/"): "health",
        ("GET", "/health"): "health",
        ("GET", "/ping"): "health",
        ("GET", "/info"): "info",
        ("GET", "/metrics"): "metrics",
        ("GET", "/v1/models"): "models",
        ("POST", "/"): "compat",
        ("POST", "/generate"): "generate",
        ("POST", "/v1/chat/completions"): "chat",
    }

    def config(
        self,
        command: Sequence[str],
        args: Sequence[str],
        env: Mapping[str, str],
        fallback: str,
    ) -> ModelConfig:
        return tgi_config([*command, *args], env, fallback)

    def meters(self, cfg: ModelConfig) -> Meters:
        return TgiMeters(cfg)

    def health(self, load: Load) -> Reply:
        if load.healthy:
            return Reply(200)
        return json_reply(503, {"error": "unhealthy", "error_type": "healthcheck"})

    def not_found(self) -> Reply:
        return Reply(404)

    def error(self, status: int, message: str, kind: str = "validation") -> Reply:
        return json_reply(status, {"error": message, "error_type": kind})

    def invalid_json(self, message: str) -> Reply:
        # axum's Json extractor rejects unparsable bodies with a plain-text 400.
        return text_reply(400, f"Failed to parse the request body as JSON: {message}")

    def info(self, cfg: ModelConfig) -> Reply:
        return json_reply(
            200,
            {
                "model_id": cfg.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": cfg.max_concurrent_requests,
                "max_best_of": 2,
                "max_stop_sequences": 4,
                "max_input_tokens": cfg.max_input_tokens,
                "max_total_tokens": cfg.max_total_tokens,
                "validation_workers": 2,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": TGI_VERSION,
                "sha": None,
                "docker_label": None,
            },
        )

    def models(self, cfg: ModelConfig) -> Reply:
        return json_reply(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": cfg.model_id,
                        "object": "model",
                        "created": 0,
                        "owned_by": cfg.model_id,
                    }
                ],
            },
        )

    def _parse_generate(self, kind: GenKind, body: Mapping[str, Any], cfg: ModelConfig) -> GenRequest | Reply:
        inputs = body.get("inputs")
        if not isinstance(inputs, str):
            return text_reply(
                422,
                "Failed to deserialize the JSON body into the target type: missing field `inputs`",
            )
        if not inputs:
            raise InvalidRequest("`inputs` cannot be empty")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidRequest("`parameters` must be an object")
        max_new = _int_field(params, "max_new_tokens")
        prompt_tokens = count_tokens(inputs)
        if prompt_tokens > cfg.max_input_tokens:
            raise InvalidRequest(
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                f"{cfg.max_total_tokens}. Given: {prompt_tokens} `inputs` tokens"
            )
        if max_new is not None and prompt_tokens + max_new > cfg.max_total_tokens:
            raise InvalidRequest(
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                f"{cfg.max_total_tokens}. Given: {prompt_tokens} `inputs` tokens and "
                f"{max_new} `max_new_tokens`"
            )
        seed = params.get("seed")
        return GenRequest(
            kind=kind,
            prompt=inputs,
            prompt_tokens=prompt_tokens,
            max_new_tokens=max_new,
            details=bool(params.get("details", False)),
            decoder_input_details=bool(params.get("decoder_input_details", False)),
            return_full_text=bool(params.get("return_full_text", False)),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        )

    def completed(
        self,
        request: GenRequest,
        cfg: ModelConfig,
        completion: Completion,
        seconds: float,
    ) -> Reply:
        headers = (
            ("x-compute-type", "gpu+optimized"),
            ("x-compute-time", f"{seconds:.6f}"),
            ("x-total-time", str(int(seconds * 1000))),
            ("x-prompt-tokens", str(completion.prompt_tokens)),
            ("x-generated-tokens", str(completion.completion_tokens)),
        )
        if request.kind == "chat":
            model = cfg.model_id if request.model in (None, "tgi") else request.model
            document: object = {
                "object": "chat.completion",
                "id": "",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": f"{TGI_VERSION}-native",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": completion.text},
                        "logprobs": None,
                        "finish_reason": finish_for_chat(completion),
                    }
                ],
                "usage": _usage(completion),
            }
            return json_reply(200, document, headers)
        text = completion.text
        if request.return_full_text:
            text = request.prompt + text
        generated: dict[str, Any] = {"generated_text": text}
        if request.details:
            prefill = []
            if request.decoder_input_details:
                prefill = [
                    {
                        "id": token_id(piece),
                        "text": piece,
                        "logprob": None if i == 0 else -0.5,
                    }
                    for i, piece in enumerate(completion.prompt_pieces)
                ]
            generated["details"] = {
                "finish_reason": completion.finish,
                "generated_tokens": completion.completion_tokens,
                "seed": request.seed,
                "prefill": prefill,
                "tokens": [
                    {"id": tid, "text": piece, "logprob": -0.25, "special": False}
                    for tid, piece in zip(completion.token_ids, completion.tokens, strict=True)
                ],
            }
        if request.kind == "compat":
            return json_reply(200, [generated], headers)
        return json_reply(200, generated, headers)


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


class Vllm(Runtime):
    name = "vllm"
    image_markers = ("vllm",)
    routes: ClassVar[Mapping[tuple[str, str], Endpoint]] = {
        ("GET", "/health"): "health",
        ("GET", "/metrics"): "metrics",
        ("GET", "/v1/models"): "models",
        ("GET", "/version"): "version",
        ("POST", "/v1/chat/completions"): "chat",
    }

    def config(
        self,
        command: Sequence[str],
        args: Sequence[str],
        env: Mapping[str, str],
        fallback: str,
    ) -> ModelConfig:
        return vllm_config(command, args, env, fallback)

    def meters(self, cfg: ModelConfig) -> Meters:
        return VllmMeters(cfg)

    def health(self, load: Load) -> Reply:
        return Reply(200 if load.healthy else 503)

    def not_found(self) -> Reply:
        return json_reply(404, {"detail": "Not Found"})

    def method_not_allowed(self) -> Reply:
        return json_reply(405, {"detail": "Method Not Allowed"})

    def error(self, status: int, message: str, kind: str = "BadRequestError") -> Reply:
        if kind == "validation":
            kind = "BadRequestError"
        return json_reply(
            status,
            {
                "error": {
                    "message": message,
                    "type": kind,
                    "param": None,
                    "code": status,
                }
            },
        )

    def version(self) -> Reply:
        return json_reply(200, {"version": VLLM_VERSION})

    def models(self, cfg: ModelConfig) -> Reply:
        created = int(time.time())
        return json_reply(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": root,
                        "parent": parent,
                        "max_model_len": cfg.max_total_tokens,
                        "permission": [
                            {
                                "id": f"modelperm-{uuid.uuid4().hex}",
                                "object": "model_permission",
                                "created": created,
                                "allow_create_engine": False,
                                "allow_sampling": True,
                                "allow_logprobs": True,
                                "allow_search_indices": False,
                                "allow_view": True,
                                "allow_fine_tuning": False,
                                "organization": "*",
                                "group": None,
                                "is_blocking": False,
                            }
                        ],
                    }
                    for name, root, parent in [
                        *((name, cfg.model_id, None) for name in cfg.served_names),
                        # OpenAIServingModels.show_available_models: an adapter's card has the base as parent.
                        *((name, name, cfg.served_names[0]) for name in cfg.adapters),
                    ]
                ],
            },
        )

    def _parse_chat(self, body: Mapping[str, Any], cfg: ModelConfig) -> GenRequest | Reply:
        model = body.get("model")
        if isinstance(model, str) and model not in (*cfg.served_names, *cfg.adapters):
            return json_reply(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist.",
                        "type": "NotFoundError",
                        "param": "model",
                        "code": 404,
                    }
                },
            )
        return super()._parse_chat(body, cfg)

    def completed(
        self,
        request: GenRequest,
        cfg: ModelConfig,
        completion: Completion,
        seconds: float,
    ) -> Reply:
        document = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or cfg.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": completion.text,
                        "refusal": None,
                        "annotations": None,
                        "audio": None,
                        "function_call": None,
                        "tool_calls": [],
                        "reasoning_content": None,
                    },
                    "logprobs": None,
                    "finish_reason": finish_for_chat(completion),
                    "stop_reason": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {**_usage(completion), "prompt_tokens_details": None},
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }
        return json_reply(200, document)


class Llamacpp(Runtime):
    name = "llamacpp"
    image_markers = ("llama.cpp", "llama-cpp", "llamacpp")
    closes_port_while_loading = False
    routes: ClassVar[Mapping[tuple[str, str], Endpoint]] = {
        ("GET", "/health"): "health",
        ("GET", "/v1/health"): "health",
        ("GET", "/metrics"): "metrics",
        ("GET", "/models"): "models",
        ("GET", "/v1/models"): "models",
        ("POST", "/chat/completions"): "chat",
        ("POST", "/v1/chat/completions"): "chat",
    }
    # While loading, llama-server still lists its models; everything else is 503.
    served_while_loading: ClassVar[frozenset[Endpoint]] = frozenset({"models"})

    def config(
        self,
        command: Sequence[str],
        args: Sequence[str],
        env: Mapping[str, str],
        fallback: str,
    ) -> ModelConfig:
        return llamacpp_config([*command, *args], env, fallback)

    def meters(self, cfg: ModelConfig) -> Meters:
        return LlamacppMeters(cfg)

    def _error(self, status: int, message: str, kind: str) -> Reply:
        document = {"error": {"code": status, "message": message, "type": kind}}
        return Reply(
            status,
            json.dumps(document).encode("utf-8"),
            "application/json; charset=utf-8",
        )

    def health(self, load: Load) -> Reply:
        if load.loading:
            return self.loading()
        if not load.healthy:
            return self._error(503, "Server is unhealthy", "unavailable_error")
        return Reply(200, b'{"status":"ok"}', "application/json; charset=utf-8")

    def loading(self) -> Reply:
        return self._error(503, "Loading model", "unavailable_error")

    def not_found(self) -> Reply:
        return self._error(404, "File Not Found", "not_found_error")

    def error(self, status: int, message: str, kind: str = "invalid_request_error") -> Reply:
        if kind == "validation":
            kind = "invalid_request_error"
        return self._error(status, message, kind)

    def models(self, cfg: ModelConfig) -> Reply:
        created = int(time.time())
        document = {
            "models": [
                {
                    "name": cfg.model_id,
                    "model": cfg.model_id,
                    "modified_at": "",
                    "size": "",
                    "digest": "",
                    "type": "model",
                    "description": "",
                    "tags": [""],
                    "capabilities": ["completion"],
                    "parameters": "",
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "",
                        "families": [""],
                        "parameter_size": "",
                        "quantization_level": "",
                    },
                }
            ],
            "object": "list",
            # tools/server/server-context.cpp get_res_model_info; "architecture" as the real build 11669 answers
            # (e2e/test_simulator_fidelity.py compares the two).
            "data": [
                {
                    "id": cfg.model_id,
                    "aliases": [cfg.model_id],
                    "tags": [],
                    "object": "model",
                    "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
                    "created": created,
                    "owned_by": "llamacpp",
                    "meta": {
                        "vocab_type": 1,
                        "n_vocab": 262144,
                        "n_ctx": cfg.max_total_tokens,
                        "n_ctx_train": 131072,
                        "n_embd": 1536,
                        "n_params": 4_647_450_147,
                        "size": 9_294_900_294,
                        "ftype": "BF16",
                    },
                }
            ],
        }
        return Reply(200, json.dumps(document).encode("utf-8"), "application/json; charset=utf-8")

    def completed(
        self,
        request: GenRequest,
        cfg: ModelConfig,
        completion: Completion,
        seconds: float,
    ) -> Reply:
        ms = seconds * 1000.0
        prompt_ms, predicted_ms = ms * 0.1, ms * 0.9
        document = {
            "choices": [
                {
                    "finish_reason": finish_for_chat(completion),
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text},
                }
            ],
            "created": int(time.time()),
            "model": request.model or cfg.model_id,
            "system_fingerprint": LLAMACPP_BUILD,
            "object": "chat.completion",
            "usage": {
                "completion_tokens": completion.completion_tokens,
                "prompt_tokens": completion.prompt_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},  # server-task.cpp: no prompt cache is simulated
            },
            "id": f"chatcmpl-{uuid.uuid4().hex[:32]}",
            "timings": {  # server-common.cpp, result_timings::to_json
                "cache_n": 0,
                "prompt_n": completion.prompt_tokens,
                "prompt_ms": prompt_ms,
                "prompt_per_token_ms": prompt_ms / max(1, completion.prompt_tokens),
                "prompt_per_second": completion.prompt_tokens / (prompt_ms / 1000.0) if prompt_ms else 0.0,
                "predicted_n": completion.completion_tokens,
                "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_ms / max(1, completion.completion_tokens),
                "predicted_per_second": completion.completion_tokens / (predicted_ms / 1000.0) if predicted_ms else 0.0,
            },
        }
        return Reply(200, json.dumps(document).encode("utf-8"), "application/json; charset=utf-8")


RUNTIMES: Mapping[str, Runtime] = {r.name: r for r in (Tgi(), Vllm(), Llamacpp())}


def runtime_for_image(image: str) -> str | None:
    """tgi / vllm / llamacpp from a container image reference, else None."""
    repository = image.lower().split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:  # drop the tag, keep any registry port
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    for name in ("tgi", "llamacpp", "vllm"):
        if any(marker in repository for marker in RUNTIMES[name].image_markers):
            return name
    return None
