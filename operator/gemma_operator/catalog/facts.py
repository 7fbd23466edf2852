"""Typed shapes of the catalog's data files. Loading validates them, so a bad file names its field."""

from __future__ import annotations

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

    def cache_owning_layers(self) -> tuple[int, int]:
        """(sliding, global) counts of the layers that hold a KV cache of their own.

        Layer i (1-based) is global when i is a multiple of globalEvery, or when it is the
        last layer of a model whose last layer is global. The last kvSharedLayers layers
        reuse an earlier layer's cache.
        """
        owners = range(1, self.layers - self.kv_shared_layers + 1)
        last = self.layers if self.last_layer_global else None
        global_layers = sum(1 for i in owners if i % self.global_every == 0 or i == last)
        return len(owners) - global_layers, global_layers

    def head_counts(self) -> tuple[int, ...]:
        """Every head count a tensor-parallel degree must divide."""
        return (self.attention_heads, self.sliding.kv_heads, self.global_.kv_heads)


class Repositories(Fact):
    instruction_tuned: str
    base: str | None = None


class Experts(Fact):
    count: int = Field(gt=0)
    active: int = Field(gt=0)


class Variant(Fact):
    family: Family
    name: str
    repositories: Repositories
    gguf: Repositories
    parameters: float = Field(gt=0)
    active_parameters: float | None = None
    encoders: dict[str, float] = Field(default_factory=dict)
    hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_context_tokens: int = Field(gt=0)
    default_target: Target
    gpu_only: bool = False
    experts: Experts | None = None
    attention: Attention

    @property
    def label(self) -> str:
        """e.g. gemma-4 31b"""
        return f"{self.family.value} {self.name}"

    @property
    def loaded_parameters(self) -> float:
        """Everything a runtime loads: the language model and its encoders."""
        return self.parameters + sum(self.encoders.values())


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
    allocates_shared_kv_twice: bool = Field(default=True, alias="allocatesSharedKVTwice")
    prefill_chunk_tokens: int | None = Field(default=None, gt=0)
    gguf_quant: dict[Precision, str] = Field(default_factory=dict)
    weight_bits: dict[Precision, float] = Field(default_factory=dict)
    serves: dict[Family, tuple[Serves, ...]]
    unsupported_reason: dict[Family, str] = Field(default_factory=dict)
    metrics: MetricNames

    def prefill_tokens(self, context_tokens: int) -> int:
        """Tokens one forward pass holds activations for: a chunk, or the whole prompt."""
        return min(context_tokens, self.prefill_chunk_tokens or context_tokens)

    def can_serve(self, family: Family, hardware: Target) -> bool:
        return any(entry.hardware == hardware for entry in self.serves.get(family, ()))

    def auto_serves(self, family: Family, hardware: Target) -> bool:
        return any(entry.hardware == hardware and entry.auto for entry in self.serves.get(family, ()))


class AcceleratorClass(Fact):
    name: str
    product: str = Field(min_length=1)
    memory_mi_b: int = Field(gt=0, alias="memoryMiB")
    memory_utilization: float | None = Field(default=None, gt=0, le=1)

    @property
    def memory_gib(self) -> float:
        return self.memory_mi_b / 1024


class AcceleratorClasses(Fact):
    """The operator's hardware configuration: GPU classes and nominal CPU/edge node memory."""

    default_class: str
    classes: dict[str, AcceleratorClass]
    node_memory_mi_b: dict[Target, int] = Field(alias="nodeMemoryMiB")
