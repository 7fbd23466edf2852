"""The desired state of a GemmaDeployment: `spec`, exactly as API.md fixes it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from gemma_operator.api.base import ApiModel
from gemma_operator.api.vocabulary import (
    ALLOWED_GPUS_PER_REPLICA,
    ALLOWED_LORA_RANKS,
    TOKENS_PER_IMAGE,
    Family,
    Precision,
    RuntimeChoice,
    SpeculativeMethod,
    TaintEffect,
    TargetChoice,
    TolerationOperator,
)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# A storage size: a positive Kubernetes quantity in bytes, e.g. 200Gi or 1.5T.
STORAGE_QUANTITY = r"^([0-9]+(\.[0-9]+)?)([KMGTPE]i|[kMGTPE])?$"
MAX_CONTEXT_TOKENS = 1 << 20
# A Hugging Face repository id, owner/name; HF caps each part at 96 characters.
_HF_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
HF_REPOSITORY = rf"^{_HF_PART}/{_HF_PART}$"
# A git branch, tag or commit: none of the characters git refuses in a ref name, no "..", and no
# leading "-" or "." (the runtime would read "--revision --x" as another option).
_REF_REFUSED = r"\x00-\x20\x7f~^:?*\[\\"
_REF_CHAR = rf"[^{_REF_REFUSED}.]"
GIT_REVISION = rf"^[^{_REF_REFUSED}.-]({_REF_CHAR}|\.{_REF_CHAR})*$"
# A Secret or ConfigMap key, as Kubernetes validates it.
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
# Label keys and values (nodeSelector, tolerations), as Kubernetes validates them: a key is an optional
# DNS-subdomain prefix (253) and "/" and a name (63).
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
MAX_QUALIFIED_NAME = 253 + 1 + 63
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_LABEL_VALUE = 63
# Container image references are printable ASCII without spaces; name (255), tag (128) and digest come to ~520.
IMAGE_REFERENCE = r"^[!-~]*$"
# The scale subresource's replica counts are int32.
INT32_MAX = 2**31 - 1
# Like the HPA's stabilization windows, which Kubernetes caps at an hour.
MAX_WINDOW_SECONDS = 3600
# Factors far past any real scaling policy, low enough that the arithmetic stays in range.
MAX_FACTOR = 100
# Together these keep the largest spec near 300 KiB: far below etcd's 1.5 MiB per object.
MAX_EXTRA_ARGS = 64
MAX_ARG_LENGTH = 2048
MAX_ENV = 32
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 4096
MAX_NODE_SELECTOR = 32
MAX_TOLERATIONS = 32

# Kubernetes checks label keys fully when it admits a Pod; a CRD cannot put a pattern on map keys, so
# the models bound their length only and the two agree.
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUALIFIED_NAME)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE, pattern=LABEL_VALUE)]


class SecretKeyRef(ApiModel):
    """A key in a Secret of the GemmaDeployment's namespace. The operator never reads it."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    key: str = Field(
        default="token",
        min_length=1,
        max_length=253,
        pattern=CONFIG_KEY,
        description="Key in the Secret that holds the token.",
    )


class ModelSpec(ApiModel):
    """Which Gemma model to serve."""

    family: Family = Field(default=Family.GEMMA_4, description="Model family: gemma-4 or gemma-3.")
    variant: str = Field(
        min_length=1,
        max_length=32,
        description="Variant within the family. gemma-4: e2b, e4b, 26b-a4b, 31b, 12b. gemma-3: 1b, 4b, 12b, 27b.",
    )
    instruction_tuned: bool = Field(
        default=True, description="Serve the instruction-tuned (-it) repository rather than the base model."
    )
    repository: str = Field(
        default="",
        max_length=2 * 96 + 1,
        pattern=r"^$|" + HF_REPOSITORY,
        description=(
            "Another Hugging Face repository with the same architecture, e.g. a fine-tune "
            "(a GGUF repository for llamacpp). Empty: the catalog's."
        ),
    )
    revision: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|" + GIT_REVISION,
        description="Repository revision (branch, tag or commit). Empty: the default branch.",
    )
    precision: Precision = Field(default=Precision.BF16, description="Weight precision: bf16, fp8 or int4.")
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding a Hugging Face token, passed to the runtime by reference only."
    )


class EnvVar(ApiModel):
    """A container environment variable, as in a Pod spec."""

    name: str = Field(max_length=MAX_ENV_NAME, pattern=ENV_NAME, description="Variable name.")
    value: str | None = Field(default=None, max_length=MAX_ENV_VALUE, description="Literal value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        max_length=1,
        description="Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class CacheSpec(ApiModel):
    """A PersistentVolumeClaim for the runtime's weight cache, so a restarted pod does not download again."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                # has(): the rules must hold whether or not the API server has filled in the defaults yet.
                {
                    "rule": "(has(self.claimName) && self.claimName != '') != (has(self.size) && self.size != '')",
                    "message": "cache needs exactly one of claimName (an existing claim) or size (a claim to create)",
                },
                {
                    "rule": (
                        "!has(self.storageClassName) || self.storageClassName == ''"
                        " || (has(self.size) && self.size != '')"
                    ),
                    "message": "storageClassName applies only to a claim the operator creates (with size)",
                },
            ]
        }
    }

    claim_name: str = Field(
        default="",
        max_length=253,
        pattern=r"^$|" + DNS_SUBDOMAIN,
        description="An existing PersistentVolumeClaim in the namespace; ReadWriteMany lets replicas share it.",
    )
    size: str = Field(
        default="",
        max_length=32,
        pattern=r"^$|" + STORAGE_QUANTITY,
        description="Size of a ReadWriteOnce claim the operator creates, e.g. 200Gi.",
    )
    storage_class_name: str = Field(
        default="",
        max_length=253,
        pattern=r"^$|" + DNS_SUBDOMAIN,
        description="Storage class of the claim the operator creates. Empty: the cluster's default class.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> CacheSpec:
        if bool(self.claim_name) == bool(self.size):
            raise ValueError("cache needs exactly one of claimName (an existing claim) or size (a claim to create)")
        if self.storage_class_name and not self.size:
            raise ValueError("storageClassName applies only to a claim the operator creates (with size)")
        return self


# The serving pods' user. The runtimes' images run as root, which Pod Security "restricted" refuses; 1000 is
# the UID Hugging Face Spaces run these images as, so the runtimes are used to it.
SERVING_UID = 1000


class ServingSecurityContext(ApiModel):
    """The user and groups of the serving pods, for an image that needs its own."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    # has(): the API server also checks the rule before filling in the defaults.
                    "rule": (
                        "!has(self.runAsUser) || self.runAsUser != 0 || (has(self.runAsNonRoot) && !self.runAsNonRoot)"
                    ),
                    "message": "runAsUser 0 needs runAsNonRoot false",
                }
            ]
        }
    }

    run_as_user: int = Field(default=SERVING_UID, ge=0, le=INT32_MAX, description="UID the runtime runs as.")
    run_as_group: int = Field(default=SERVING_UID, ge=0, le=INT32_MAX, description="Primary GID of the runtime.")
    fs_group: int = Field(
        default=SERVING_UID,
        ge=0,
        le=INT32_MAX,
        description="GID that owns the cache volume, so the runtime can write it.",
    )
    run_as_non_root: bool = Field(
        default=True,
        description='Let the kubelet refuse UID 0. false (with runAsUser 0) breaks Pod Security "restricted".',
    )

    @model_validator(mode="after")
    def _root_only_when_said(self) -> ServingSecurityContext:
        if self.run_as_user == 0 and self.run_as_non_root:
            raise ValueError("runAsUser 0 needs runAsNonRoot false")
        return self


# --- spec.serving.modalities -------------------------------------------------------------------------
# vLLM's own default when a modality's limit is not given (vllm/config/multimodal.py
# MultiModalConfig.get_limit_per_prompt); more items than that in one prompt are never planned for.
MAX_ITEMS_PER_PROMPT = 999


def _items_per_prompt(what: str) -> Any:
    return Field(
        default=None,
        ge=0,
        le=MAX_ITEMS_PER_PROMPT,
        description=f"Most {what} one request may carry; 0 turns them off. Empty: the runtime's default "
        f"(vLLM: {MAX_ITEMS_PER_PROMPT}).",
    )


class ImageModality(ApiModel):
    """Image inputs."""

    max_per_prompt: int | None = _items_per_prompt("images")
    tokens_per_image: int | None = Field(
        default=None,
        ge=min(TOKENS_PER_IMAGE),
        le=max(TOKENS_PER_IMAGE),
        description="Gemma 4's image token budget (vLLM --mm-processor-kwargs max_soft_tokens): 70, 140, 280, 560 "
        "or 1120; more tokens, finer detail. Empty: the checkpoint's default (280).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self in {list(TOKENS_PER_IMAGE)}",
                    "message": "tokensPerImage must be one of " + ", ".join(map(str, TOKENS_PER_IMAGE)),
                }
            ]
        },
    )

    @field_validator("tokens_per_image")
    @classmethod
    def _a_budget_gemma_takes(cls, value: int | None) -> int | None:
        if value is not None and value not in TOKENS_PER_IMAGE:
            raise ValueError("tokensPerImage must be one of " + ", ".join(map(str, TOKENS_PER_IMAGE)))
        return value


class VideoModality(ApiModel):
    """Video inputs (Gemma 4 reads a video as up to 32 frames through its vision tower)."""

    max_per_prompt: int | None = _items_per_prompt("videos")


class AudioModality(ApiModel):
    """Audio inputs (Gemma 4 E2B and E4B, which have an audio tower, and 12B)."""

    max_per_prompt: int | None = _items_per_prompt("audio clips")


_TEXT_ONLY_ALONE = "textOnly excludes image, video and audio"


class ModalitiesSpec(ApiModel):
    """Which inputs besides text the runtime accepts, and so which encoder towers it loads and plans for.

    Unset: every modality the variant has, at the runtime's defaults. vLLM skips the vision tower only when
    both image and video are 0, and the audio tower when audio is 0; textOnly turns all three off.
    """

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.textOnly) || !self.textOnly"
                    " || (!has(self.image) && !has(self.video) && !has(self.audio))",
                    "message": _TEXT_ONLY_ALONE,
                }
            ]
        }
    }

    text_only: bool = Field(
        default=False, description="Text inputs only: no encoder tower is loaded (vLLM --language-model-only)."
    )
    image: ImageModality | None = Field(default=None, description="Image inputs. Empty: the runtime's defaults.")
    video: VideoModality | None = Field(default=None, description="Video inputs. Empty: the runtime's defaults.")
    audio: AudioModality | None = Field(
        default=None, description="Audio inputs (gemma-4 e2b, e4b, 12b). Empty: the runtime's defaults."
    )

    @model_validator(mode="after")
    def _text_only_alone(self) -> ModalitiesSpec:
        if self.text_only and (self.image or self.video or self.audio):
            raise ValueError(_TEXT_ONLY_ALONE)
        return self


# --- spec.serving.speculative ------------------------------------------------------------------------
# Past a handful of drafted tokens acceptance falls off; vLLM takes any positive count (vllm/config/speculative.py).
MAX_SPECULATIVE_TOKENS = 16
_TOKENS_NEED_A_METHOD = "speculative.tokens needs a method other than none"


class SpeculativeSpec(ApiModel):
    """Speculative decoding: a cheap drafter proposes tokens the model verifies in one pass."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.tokens) || (has(self.method) && self.method != 'none')",
                    "message": _TOKENS_NEED_A_METHOD,
                }
            ]
        }
    }

    method: SpeculativeMethod = Field(
        default=SpeculativeMethod.NONE,
        description="none; mtp: the variant's Gemma 4 assistant checkpoint, which shares the KV cache (vLLM "
        "with Gemma4MTPModel); ngram: drafts from the prompt's own n-grams, no extra weights.",
    )
    tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SPECULATIVE_TOKENS,
        description="Tokens drafted per step. Empty: 1 for mtp, 5 for ngram (the examples of vLLM's MTP and n-gram "
        "docs).",
    )

    @model_validator(mode="after")
    def _tokens_need_a_method(self) -> SpeculativeSpec:
        if self.tokens is not None and self.method is SpeculativeMethod.NONE:
            raise ValueError(_TOKENS_NEED_A_METHOD)
        return self


# LoRA adapters. An adapter's name is the model a request names to use it. vLLM reads --lora-modules items
# "name=path" by splitting at the first "=", and reads an item holding a "," as JSON
# (entrypoints/common/cli_args.py LoRAParserAction); a name without "/" never equals the base model's
# name (a repository id), which vLLM refuses for an adapter (entrypoints/openai/models/serving.py
# OpenAIServingModels._check_load_lora_adapter_request).
ADAPTER_NAME = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
MAX_ADAPTER_NAME = 63
MAX_ADAPTERS = 32


class AdapterSpec(ApiModel):
    """A LoRA adapter of the model, served beside it: a request that names it as its model gets it."""

    name: str = Field(
        min_length=1,
        max_length=MAX_ADAPTER_NAME,
        pattern=ADAPTER_NAME,
        description="The model name requests use for this adapter; unique among the adapters.",
    )
    repository: str = Field(
        max_length=2 * 96 + 1,
        pattern=HF_REPOSITORY,
        description="Hugging Face repository of the adapter (PEFT LoRA weights for this model).",
    )
    revision: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|" + GIT_REVISION,
        description="Repository revision. Empty: the default branch (the only one vLLM downloads).",
    )


class LoraSpec(ApiModel):
    """The LoRA slots the runtime reserves GPU memory for, whatever adapters are in use."""

    max_rank: int = Field(
        default=16,
        ge=min(ALLOWED_LORA_RANKS),
        le=max(ALLOWED_LORA_RANKS),
        description="Largest adapter rank served (vLLM --max-lora-rank): 1, 8, 16, 32, 64, 128, 256, 320 or 512. "
        "Every adapter's rank must be at most this.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self in {list(ALLOWED_LORA_RANKS)}",
                    "message": "maxRank must be 1, 8, 16, 32, 64, 128, 256, 320 or 512",
                }
            ]
        },
    )
    max_loaded: int = Field(
        default=1,
        ge=1,
        le=MAX_ADAPTERS,
        description="Adapters on the GPU at once (vLLM --max-loras): a batch mixes at most this many. Each slot "
        "reserves its buffers at start, before the KV cache is sized.",
    )

    @field_validator("max_rank")
    @classmethod
    def _a_rank_vllm_takes(cls, value: int) -> int:
        if value not in ALLOWED_LORA_RANKS:
            raise ValueError("maxRank must be 1, 8, 16, 32, 64, 128, 256, 320 or 512")
        return value


# vLLM's own default --max-num-seqs on the largest GPUs (vllm/engine/arg_utils.py get_batch_defaults).
MAX_CONCURRENT_SEQUENCES = 1024


class RolloutSpec(ApiModel):
    """How a new pod template replaces the running pods."""

    allow_downtime: bool = Field(
        default=False,
        description="With one replica and no free GPUs for a second pod beside it, stop the pod and start the new "
        "one (the model does not answer meanwhile). False: such a rollout waits, with Reconciling=True and reason "
        "WaitingForCapacity, until a node has the GPUs free.",
    )


class ServingSpec(ApiModel):
    """How the model is served."""

    runtime: RuntimeChoice = Field(
        default=RuntimeChoice.AUTO,
        description="Serving runtime: auto picks one that can serve the model on the target hardware.",
    )
    image: str = Field(
        default="",
        max_length=1024,
        pattern=IMAGE_REFERENCE,
        description="Override of the runtime's default container image.",
    )
    max_context_tokens: int = Field(
        default=8192,
        ge=128,
        le=MAX_CONTEXT_TOKENS,
        description="Tokens per request, input plus output.",
    )
    max_concurrent_sequences: int = Field(
        default=4, ge=1, le=MAX_CONCURRENT_SEQUENCES, description="Sequences the KV cache holds at maxContextTokens."
    )
    extra_args: list[Annotated[str, StringConstraints(max_length=MAX_ARG_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_EXTRA_ARGS, description="Arguments appended to the runtime's arguments."
    )
    env: list[EnvVar] = Field(
        default_factory=list, max_length=MAX_ENV, description="Extra container environment variables."
    )
    verify: bool = Field(
        default=True, description="Send one chat completion after a rollout and report condition Verified."
    )
    cache: CacheSpec | None = Field(
        default=None,
        description="Keep downloaded weights on a PersistentVolumeClaim at the runtime's cache dir. Unset: emptyDir.",
    )
    security_context: ServingSecurityContext = Field(
        default_factory=ServingSecurityContext,
        description="User and groups of the serving pods (default UID, GID and fsGroup 1000, non-root).",
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        description="How a new pod template rolls out: a surge pod beside the old ones when a node has its GPUs "
        "free, else one pod at a time.",
    )
    # --- modalities and speculative decoding ---
    modalities: ModalitiesSpec = Field(
        default_factory=ModalitiesSpec,
        description="Inputs besides text, and so the encoder towers loaded and planned for. Empty: every "
        "modality the variant has, at the runtime's defaults.",
    )
    speculative: SpeculativeSpec = Field(
        default_factory=SpeculativeSpec, description="Speculative decoding (default none)."
    )
    # LoRA adapters (spec.adapters) and tool calling / reasoning.
    lora: LoraSpec = Field(
        default_factory=LoraSpec, description="LoRA slots for spec.adapters; unused without adapters."
    )
    tool_calling: bool | None = Field(
        default=None,
        description="Parse tool calls out of chat completions (vLLM --tool-call-parser gemma4 "
        "--enable-auto-tool-choice). Empty: on for instruction-tuned Gemma 4 on vLLM, off elsewhere.",
    )
    reasoning: bool | None = Field(
        default=None,
        description="Return the model's thinking apart from its answer (vLLM --reasoning-parser gemma4). "
        "Empty: on for instruction-tuned Gemma 4 on vLLM, off elsewhere.",
    )


class Toleration(ApiModel):
    """A Pod toleration."""

    key: str = Field(
        default="",
        max_length=MAX_QUALIFIED_NAME,
        pattern=r"^$|" + QUALIFIED_NAME,
        description="Taint key; empty with operator Exists matches every taint.",
    )
    operator: TolerationOperator = Field(default=TolerationOperator.EQUAL, description="Exists or Equal.")
    value: str = Field(
        default="", max_length=MAX_LABEL_VALUE, pattern=LABEL_VALUE, description="Taint value, for operator Equal."
    )
    effect: TaintEffect | None = Field(default=None, description="Taint effect to match; empty matches all effects.")
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=INT32_MAX, description="How long a NoExecute taint is tolerated."
    )


class PlacementSpec(ApiModel):
    """Where replicas run."""

    target: TargetChoice = Field(
        default=TargetChoice.AUTO,
        description="Kind of node: auto (by model size), gpu, cpu (nodes without GPUs) or edge.",
    )
    accelerator_class: str = Field(
        default="",
        max_length=63,
        pattern=r"^$|" + DNS_LABEL,
        description="Accelerator class for GPU targets, e.g. h100. Empty: the operator's default class.",
    )
    gpus_per_replica: int = Field(
        default=0,
        ge=0,
        le=8,
        description="GPUs per replica: 0 lets the planner decide; else 1, 2, 4 or 8.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self in [0, 1, 2, 4, 8]", "message": "gpusPerReplica must be 0, 1, 2, 4 or 8"}
            ]
        },
    )
    node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_NODE_SELECTOR,
        description="Node labels merged into what the planner decides.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=MAX_TOLERATIONS, description="Tolerations added to what the planner decides."
    )

    @field_validator("gpus_per_replica")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value not in ALLOWED_GPUS_PER_REPLICA:
            raise ValueError("gpusPerReplica must be 0, 1, 2, 4 or 8")
        return value


class AutoscalingSpec(ApiModel):
    """The operator's own autoscaler."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    # has(): the API server also checks the rule against the empty default.
                    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                },
                {
                    "rule": (
                        "!has(self.panicWindowSeconds) || !has(self.stableWindowSeconds)"
                        " || self.panicWindowSeconds <= self.stableWindowSeconds"
                    ),
                    "message": "panicWindowSeconds must not exceed stableWindowSeconds",
                },
            ]
        }
    }

    enabled: bool = Field(default=False, description="When true, the operator's autoscaler sets the replica count.")
    min_replicas: int = Field(default=1, ge=1, le=INT32_MAX, description="Fewest replicas the autoscaler keeps.")
    max_replicas: int = Field(default=1, ge=1, le=INT32_MAX, description="Most replicas the autoscaler asks for.")
    target_in_flight_per_replica: float | None = Field(
        default=None,
        gt=0,
        # TGI queues at most 32 x 1024 requests; nothing carries more than a few times that.
        le=100_000,
        description="Requests in flight (waiting + running) one replica should carry. Empty: maxConcurrentSequences.",
    )
    target_utilization: float = Field(
        default=0.8, gt=0, le=1, description="Fraction of the target to aim for: the headroom for bursts."
    )
    stable_window_seconds: float = Field(
        default=60, ge=1, le=MAX_WINDOW_SECONDS, description="Window the load is averaged over."
    )
    panic_window_seconds: float = Field(
        default=6,
        gt=0,
        le=MAX_WINDOW_SECONDS,
        description="Short window; load at panicThreshold x capacity over it scales up at once.",
    )
    panic_threshold: float = Field(
        default=2.0, gt=1, le=MAX_FACTOR, description="Load over capacity that starts panic mode."
    )
    scale_down_delay_seconds: float = Field(
        default=300,
        ge=0,
        le=MAX_WINDOW_SECONDS,
        description="Scale-down stabilisation: the highest recommendation over this long wins.",
    )
    scale_down_tolerance: float = Field(
        default=0.05, ge=0, lt=1, description="Load this close to the current capacity does not scale down."
    )
    max_scale_up_rate: float = Field(
        default=2.0, gt=1, le=MAX_FACTOR, description="Scale up by at most this factor per decision ..."
    )
    max_scale_up_pods: int = Field(
        default=4, ge=1, le=INT32_MAX, description="... or by this many pods, whichever is more."
    )
    max_scale_down_rate: float = Field(
        default=2.0, gt=1, le=MAX_FACTOR, description="Scale down by at most this factor per decision."
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if self.panic_window_seconds > self.stable_window_seconds:
            raise ValueError("panicWindowSeconds must not exceed stableWindowSeconds")
        return self


class MonitoringSpec(ApiModel):
    """Prometheus integration of the serving pods."""

    service_monitor: bool = Field(
        default=False, description="Also create a Prometheus Operator ServiceMonitor for the serving pods."
    )


class RoutingSpec(ApiModel):
    """Model-aware routing through the Gateway API Inference Extension (docs/routing.md)."""

    inference_pool: bool = Field(
        default=False,
        description="Also create an InferencePool (inference.networking.k8s.io/v1) of the serving pods and its "
        "endpoint picker (Deployment, Service, ServiceAccount, Role, RoleBinding, ConfigMap), for a Gateway's "
        "HTTPRoute to send requests to. vLLM only: the picker reads vLLM's metrics. Needs the InferencePool CRD.",
    )


class GemmaDeploymentSpec(ApiModel):
    """Desired state of a GemmaDeployment."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    # has(): the API server also checks the rule before filling in the defaults.
                    "rule": (
                        "!has(self.adapters) || size(self.adapters) == 0 || !has(self.serving)"
                        " || !has(self.serving.lora) || !has(self.serving.lora.maxLoaded)"
                        " || self.serving.lora.maxLoaded <= size(self.adapters)"
                    ),
                    "message": "serving.lora.maxLoaded must not exceed the number of adapters",
                }
            ]
        }
    }

    model: ModelSpec = Field(description="The Gemma model to serve.")
    serving: ServingSpec = Field(default_factory=ServingSpec, description="Runtime and request limits.")
    placement: PlacementSpec = Field(default_factory=PlacementSpec, description="Where replicas run.")
    replicas: int = Field(
        default=1,
        ge=0,
        le=INT32_MAX,
        description="Replica count when autoscaling is off (the scale subresource drives it).",
    )
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="The built-in autoscaler.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Prometheus integration.")
    routing: RoutingSpec = Field(
        default_factory=RoutingSpec, description="Gateway API Inference Extension routing (default off)."
    )
    adapters: list[AdapterSpec] = Field(
        default_factory=list,
        max_length=MAX_ADAPTERS,
        description="LoRA adapters served beside the model (vLLM), each under its own model name.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _adapters_fit_their_slots(self) -> GemmaDeploymentSpec:
        names = [adapter.name for adapter in self.adapters]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"adapter names must be unique: {', '.join(repeated)} repeated")
        if self.adapters and self.serving.lora.max_loaded > len(self.adapters):
            raise ValueError("serving.lora.maxLoaded must not exceed the number of adapters")
        return self
