"""Typed shapes of the catalog's data files. Loading validates them, so a bad file names its field."""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gemma_operator.api import Family, Precision, Runtime, Target


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class LayerShape(Fact):
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)


class Attention(Fact):
    layers: int = Field(gt=0)
    global_every: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    sliding: LayerShape
    global_: LayerShape = Field(alias="global")
    sliding_window: int = Field(gt=0)
    global_k_equals_v: bool = Field(alias="globalKEqualsV")
    kv_shared_layers: int = Field(ge=0)
    last_layer_global: bool = False

    def _count(self, first: int, last: int) -> tuple[int, int]:
        """(sliding, global) counts among layers first..last (1-based)."""
        return _layer_counts(first, last, self.layers, self.global_every, self.last_layer_global)

    def cache_owning_layers(self) -> tuple[int, int]:
        """(sliding, global) counts of the layers that hold a KV cache of their own: all but the last
        kvSharedLayers, which reuse an earlier layer's cache."""
        return self._count(1, self.layers - self.kv_shared_layers)

    def is_global(self, layer: int) -> bool:
        """Whether layer `layer` (1-based) is a global-attention layer."""
        return _is_global(layer, self.layers, self.global_every, self.last_layer_global)

    def owns_cache(self, layer: int) -> bool:
        """Whether layer `layer` (1-based) has K/V of its own (the last kvSharedLayers reuse an earlier one's)."""
        return layer <= self.layers - self.kv_shared_layers

    def kv_shared_layer_counts(self) -> tuple[int, int]:
        """(sliding, global) counts of the last kvSharedLayers layers."""
        return self._count(self.layers - self.kv_shared_layers + 1, self.layers)

    def head_counts(self) -> tuple[int, ...]:
        """Every head count a tensor-parallel degree must divide."""
        return (self.attention_heads, self.sliding.kv_heads, self.global_.kv_heads)


# Cached: every size the planner tries asks again, and a count walks every layer.
@cache
def _layer_counts(first: int, last: int, layers: int, global_every: int, last_layer_global: bool) -> tuple[int, int]:
    """(sliding, global) counts among layers first..last (1-based)."""
    global_layers = sum(1 for i in range(first, last + 1) if _is_global(i, layers, global_every, last_layer_global))
    return last - first + 1 - global_layers, global_layers


def _is_global(layer: int, layers: int, global_every: int, last_layer_global: bool) -> bool:
    """Layer `layer` (1-based) is global when it is a multiple of globalEvery, or when it is the last layer of a
    model whose last layer is global."""
    return layer % global_every == 0 or (last_layer_global and layer == layers)


class Repositories(Fact):
    instruction_tuned: str
    base: str | None = None


class Experts(Fact):
    count: int = Field(gt=0)
    active: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)


class TensorGroup(StrEnum):
    """Tensors a runtime stores alike. models.yaml says what each holds; weight_storage.yaml how each is stored."""

    TOKEN_EMBEDDINGS = "tokenEmbeddings"
    PER_LAYER_EMBEDDINGS = "perLayerEmbeddings"
    LINEAR = "linear"
    EXPERTS = "experts"
    OTHER = "other"
    # The K/V projections the checkpoints ship for the KV-shared layers, which no forward pass reads.
    KV_SHARED_PROJECTIONS = "kvSharedProjections"
    # Not in the checkpoint: the V slot a runtime fills with a copy of K in K=V layers, and a second
    # copy of the tied token embeddings kept as the LM head.
    V_COPY = "vCopy"
    TIED_HEAD_COPY = "tiedHeadCopy"
    VISION_ATTENTION = "visionAttention"
    VISION_MLP = "visionMlp"
    VISION_OTHER = "visionOther"
    AUDIO_LINEAR = "audioLinear"
    AUDIO_OTHER = "audioOther"


class LanguageTensors(Fact):
    token_embeddings: int = Field(gt=0)
    per_layer_embeddings: int = Field(default=0, ge=0)
    linear: int = Field(gt=0)
    experts: int = Field(default=0, ge=0)
    other: int = Field(ge=0)


class VisionEncoder(Fact):
    # An encoder-free embedder (Gemma 4 12B) has no attention or MLP: its patch projection is `other`.
    attention: int = Field(ge=0)
    mlp: int = Field(ge=0)
    other: int = Field(ge=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(ge=0)
    # What one image costs: the soft tokens it becomes at the checkpoint's default, and the patches the tower
    # encodes for each of them (pooling kernel squared).
    tokens_per_image: int = Field(gt=0)
    patches_per_token: int = Field(gt=0)
    # Whether the processor takes another token budget (Gemma 4's max_soft_tokens; Gemma 3 is fixed at 256).
    tokens_configurable: bool
    # The position-embedding table size vLLM's Gemma 4 tower chunks its batches by; None: one batch.
    chunk_position_embeddings: int | None = None


class AudioEncoder(Fact):
    linear: int = Field(gt=0)
    other: int = Field(ge=0)
    hidden_size: int = Field(gt=0)
    # Soft tokens of the longest clip (the processor's audio_seq_length).
    tokens_per_item: int = Field(gt=0)


class Encoders(Fact):
    vision: VisionEncoder | None = None
    audio: AudioEncoder | None = None

    def tower_sizes(self, group: TensorGroup) -> tuple[int, ...]:
        """The hidden (and intermediate) sizes of the tower that holds `group`: what a runtime checks before
        quantising that tower."""
        if group in (TensorGroup.VISION_ATTENTION, TensorGroup.VISION_MLP, TensorGroup.VISION_OTHER) and self.vision:
            return (self.vision.hidden_size, self.vision.intermediate_size)
        if group in (TensorGroup.AUDIO_LINEAR, TensorGroup.AUDIO_OTHER) and self.audio:
            return (self.audio.hidden_size,)
        return ()


class Assistant(Fact):
    """A Gemma 4 MTP assistant checkpoint: a few Q-only decoder layers that read the target's KV cache.

    Its parameters follow the modules of vLLM 0.33.0's model_executor/models/gemma4_mtp.py (Gemma4MTP,
    Gemma4MultiTokenPredictor, Gemma4MTPDecoderLayer, Gemma4MTPAttention, Gemma4MTPMaskedEmbedder).
    """

    repository: str
    layers: int = Field(gt=0)
    # Every globalEvery-th layer is a full-attention layer; the last one is.
    global_every: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    global_head_dim: int = Field(gt=0)
    backbone_hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    # use_ordered_embeddings: a centroid projection over the vocabulary (0 without).
    centroids: int = Field(ge=0)

    @property
    def embedding_parameters(self) -> int:
        """embed_tokens, which the LM head is tied to."""
        return self.vocab_size * self.hidden_size

    @property
    def other_parameters(self) -> int:
        """Everything else: the decoder layers, the projections to and from the target's width, norms, centroids."""
        hidden = self.hidden_size
        full = sum(1 for i in range(1, self.layers + 1) if i % self.global_every == 0 or i == self.layers)
        sliding = self.layers - full
        # q_proj and o_proj (no K/V: the layers read the target's cache), the gated MLP, four norms and q_norm.
        per_layer = 3 * hidden * self.intermediate_size + 4 * hidden
        attention = sum(
            count * (2 * self.attention_heads * head_dim * hidden + head_dim)
            for count, head_dim in ((sliding, self.head_dim), (full, self.global_head_dim))
        )
        projections = 2 * self.backbone_hidden_size * hidden + hidden * self.backbone_hidden_size
        return self.layers * per_layer + attention + projections + hidden + hidden * self.centroids

    @property
    def parameters(self) -> int:
        return self.embedding_parameters + self.other_parameters


class Variant(Fact):
    family: Family
    name: str
    # The checkpoint's config.json architectures[0]: what a runtime must have a class for.
    architecture: str
    repositories: Repositories
    gguf: Repositories
    tensors: LanguageTensors
    encoders: Encoders = Field(default_factory=Encoders)
    active_parameters: float | None = None
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    per_layer_input_size: int = Field(default=0, ge=0)
    double_wide_kv_shared_mlp: bool = False
    vocab_size: int = Field(gt=0)
    max_context_tokens: int = Field(gt=0)
    default_target: Target
    gpu_only: bool = False
    experts: Experts | None = None
    attention: Attention
    # The MTP assistant checkpoint of the instruction-tuned model, where Google publishes one.
    assistant: Assistant | None = None

    @property
    def label(self) -> str:
        """e.g. gemma-4 31b"""
        return f"{self.family.value} {self.name}"

    def checkpoint_parameters(self) -> dict[TensorGroup, int]:
        """Parameters per tensor group of the published checkpoint: language model and encoders."""
        tensors, vision, audio = self.tensors, self.encoders.vision, self.encoders.audio
        groups = {
            TensorGroup.TOKEN_EMBEDDINGS: tensors.token_embeddings,
            TensorGroup.PER_LAYER_EMBEDDINGS: tensors.per_layer_embeddings,
            TensorGroup.LINEAR: tensors.linear,
            TensorGroup.EXPERTS: tensors.experts,
            TensorGroup.OTHER: tensors.other,
            TensorGroup.KV_SHARED_PROJECTIONS: self._kv_shared_projections(),
            TensorGroup.VISION_ATTENTION: vision.attention if vision else 0,
            TensorGroup.VISION_MLP: vision.mlp if vision else 0,
            TensorGroup.VISION_OTHER: vision.other if vision else 0,
            TensorGroup.AUDIO_LINEAR: audio.linear if audio else 0,
            TensorGroup.AUDIO_OTHER: audio.other if audio else 0,
        }
        return {group: count for group, count in groups.items() if count}

    def derived_parameters(self) -> dict[TensorGroup, int]:
        """Tensors some runtime builds beyond the checkpoint: the V copy of K=V layers, a second tied head."""
        attention = self.attention
        _, global_layers = attention.cache_owning_layers()
        v_copy = global_layers * attention.global_.kv_heads * attention.global_.head_dim * self.hidden_size
        groups = {
            TensorGroup.V_COPY: v_copy if attention.global_k_equals_v else 0,
            TensorGroup.TIED_HEAD_COPY: self.tensors.token_embeddings,
        }
        return {group: count for group, count in groups.items() if count}

    def _kv_shared_projections(self) -> int:
        attention = self.attention
        sliding, global_ = attention.kv_shared_layer_counts()
        global_projections = 1 if attention.global_k_equals_v else 2
        return self.hidden_size * (
            sliding * 2 * attention.sliding.kv_heads * attention.sliding.head_dim
            + global_ * global_projections * attention.global_.kv_heads * attention.global_.head_dim
        )

    def mlp_width(self, layer: int) -> int:
        """The gated MLP's width at layer `layer` (1-based): E2B doubles it in its KV-shared layers."""
        doubled = self.double_wide_kv_shared_mlp and not self.attention.owns_cache(layer)
        return self.intermediate_size * (2 if doubled else 1)

    @property
    def parameters(self) -> int:
        """Every parameter of the published checkpoint, encoders included."""
        return sum(self.checkpoint_parameters().values())


class RuntimeImage(Fact):
    image: str
    architectures: tuple[str, ...]


class Serves(Fact):
    hardware: Target
    auto: bool = True


class MetricNames(Fact):
    waiting: str
    running: str
    # The prefix every metric of the runtime's own page carries (tells its page from another server's).
    prefix: str
    # True where the runtime creates its load gauges on the first request, so that a page of only its own
    # metrics (even an empty one) without them means "no requests yet", not "unknown".
    created_on_first_request: bool = False


class RuntimeFacts(Fact):
    name: Runtime
    images: dict[Target, RuntimeImage]
    port: int
    health_path: str
    token_env: tuple[str, ...]
    cache_env: dict[str, str]
    memory_utilization: float = Field(gt=0, le=1)
    # Whether the runtime can load a model at a given revision (llama.cpp's -hf has no revision).
    pins_revision: bool = True
    # Activation memory of one forward pass, per token in flight and unit of hidden size (planning/memory.py).
    activation_bytes_per_hidden_unit: int = Field(gt=0)
    gguf_quant: dict[Precision, str] = Field(default_factory=dict)
    serves: dict[Family, tuple[Serves, ...]]
    unsupported_reason: dict[Family, str] = Field(default_factory=dict)
    metrics: MetricNames

    def can_serve(self, family: Family, hardware: Target) -> bool:
        return any(entry.hardware == hardware for entry in self.serves.get(family, ()))

    def auto_serves(self, family: Family, hardware: Target) -> bool:
        return any(entry.hardware == hardware and entry.auto for entry in self.serves.get(family, ()))


class PickerPorts(Fact):
    grpc: int = Field(gt=0, lt=65536)
    grpc_health: int = Field(gt=0, lt=65536)
    metrics: int = Field(gt=0, lt=65536)


class EndpointPicker(Fact):
    """The Gateway API Inference Extension's InferencePool API and endpoint picker (endpoint_picker.yaml)."""

    pool_api_version: str
    pool_crd_module: str
    pool_crd_version: str
    picker_module: str
    picker_version: str
    image: str
    ports: PickerPorts
    resources: dict[str, dict[str, str]]
    verbosity: int = Field(ge=0)
    run_as_user: int = Field(gt=0)
    # Runtime -> the picker's name for the engine whose metrics it reads.
    engines: dict[Runtime, str]


class AcceleratorClass(Fact):
    name: str
    product: str = Field(min_length=1)
    memory_mi_b: int = Field(gt=0, alias="memoryMiB")
    memory_utilization: float | None = Field(default=None, gt=0, le=1)

    @property
    def memory_gib(self) -> float:
        return self.memory_mi_b / 1024


class AcceleratorPerformance(Fact):
    """A GPU product's datasheet peaks: what a roofline of one serving step needs."""

    memory_bandwidth_g_bps: float = Field(gt=0, alias="memoryBandwidthGBps")
    bf16_dense_tflops: float = Field(gt=0)

    @property
    def bytes_per_second(self) -> float:
        return self.memory_bandwidth_g_bps * 1e9

    @property
    def flops_per_second(self) -> float:
        return self.bf16_dense_tflops * 1e12


class AcceleratorClasses(Fact):
    """The operator's hardware configuration: GPU classes and nominal CPU/edge node memory."""

    default_class: str
    classes: dict[str, AcceleratorClass]
    node_memory_mi_b: dict[Target, int] = Field(alias="nodeMemoryMiB")


class ConditionalFormat(Fact):
    """A tower's tensors stored in `format` only when all the tower's sizes are multiples of a number."""

    format: str
    when_tower_sizes_multiple_of: int = Field(gt=0)
    otherwise: str

    def resolve(self, tower_sizes: tuple[int, ...]) -> str:
        divisible = all(size % self.when_tower_sizes_multiple_of == 0 for size in tower_sizes)
        return self.format if divisible else self.otherwise


class WeightStorage(Fact):
    """weight_storage.yaml: per runtime, version, family and precision, the format of each group it holds."""

    formats: dict[str, float]
    default_versions: dict[Runtime, str]
    runtimes: dict[Runtime, dict[str, dict[Family, dict[Precision, dict[TensorGroup, str | ConditionalFormat]]]]]
