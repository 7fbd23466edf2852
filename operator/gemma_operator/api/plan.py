"""The plan as the world sees it: `gemma-operator plan -o json` and `status.plan` (API.md)."""

from __future__ import annotations

from pydantic import Field

from gemma_operator.api.base import ApiModel
from gemma_operator.api.spec import Toleration
from gemma_operator.api.vocabulary import Runtime, Target


class RuntimePlan(ApiModel):
    """The serving container the plan chose."""

    name: Runtime = Field(description="Serving runtime.")
    image: str = Field(description="Container image.")
    args: list[str] = Field(
        description="The operator's container arguments, derived from the plan; spec.serving.extraArgs follow them."
    )
    # A count, not a copy: status stays small however many extraArgs there are, and they are in the spec.
    extra_arg_count: int = Field(default=0, description="How many spec.serving.extraArgs follow args.")
    version: str = Field(default="", description="The runtime release whose allocator rules sized the plan.")
    prefill_chunk_tokens: int = Field(
        default=0,
        description="Tokens one forward pass takes, set on the runtime (vLLM --max-num-batched-tokens, "
        "TGI --max-batch-prefill-tokens, llama.cpp -ub).",
    )
    auto_choice: str = Field(
        default="", description="Why runtime auto chose this runtime; empty when spec.serving.runtime names it."
    )
    decisions: list[str] = Field(
        default_factory=list,
        description="Why the plan set what it did: the prefill chunk, and the rules' release where the image's "
        "is not catalogued.",
    )
    adapters: list[str] = Field(
        default_factory=list, description="Model names of the LoRA adapters served beside the model."
    )


class PlacementPlan(ApiModel):
    """Where replicas go; the kube-scheduler does the binding."""

    target: Target = Field(description="Kind of node: gpu, cpu or edge.")
    accelerator_class: str = Field(description="Accelerator class for GPU targets; empty otherwise.")
    gpus_per_replica: int = Field(description="GPUs (tensor-parallel degree) per replica; 0 off GPUs.")
    cpus_per_replica: int = Field(
        default=0, description="CPU cores a replica requests; llama.cpp's threads (-t, -tb) follow it."
    )
    node_selector: dict[str, str] = Field(description="Node labels a replica's node must carry.")
    excluded_node_labels: list[str] = Field(
        default_factory=list, description="Label keys a replica's node must not carry."
    )
    tolerations: list[Toleration] = Field(description="Tolerations of the replicas' pods.")


class MemoryPlan(ApiModel):
    """Memory per replica, in GiB: GPU memory on GPU targets, node RAM otherwise."""

    weights_gi_b: float = Field(alias="weightsGiB", description="Model weights at the chosen precision.")
    kv_cache_gi_b: float = Field(alias="kvCacheGiB", description="KV cache for the configured context and sequences.")
    overhead_gi_b: float = Field(
        alias="overheadGiB", description="Runtime overhead: CUDA context, graphs, activations."
    )
    adapters_gi_b: float = Field(
        default=0.0,
        alias="adaptersGiB",
        description="Buffers of the LoRA slots (serving.lora), which vLLM reserves at start, before the KV cache.",
    )
    required_gi_b: float = Field(
        alias="requiredGiB", description="Weights plus KV cache plus overhead plus the adapters' buffers."
    )
    available_gi_b: float = Field(
        alias="availableGiB",
        description="What the replica's GPUs or node offer after the runtime's utilisation fraction.",
    )
    multimodal_gi_b: float = Field(
        default=0.0,
        alias="multimodalGiB",
        description="Of weights and overhead: the encoder towers loaded and the encoder cache's profiling peak, "
        "what serving.modalities.textOnly would free.",
    )
    assistant_gi_b: float = Field(
        default=0.0, alias="assistantGiB", description="Of weights: the MTP assistant checkpoint (speculative mtp)."
    )


class LimitsPlan(ApiModel):
    """Request limits the runtime is configured with."""

    max_context_tokens: int = Field(description="Tokens per request, input plus output.")
    max_concurrent_sequences: int = Field(description="Sequences served at once at maxContextTokens.")


class FitsUpTo(ApiModel):
    """How far the chosen hardware stretches: the capacity frontier around the request."""

    concurrent_sequences: int = Field(description="Most sequences that fit at the configured context.")
    context_tokens: int = Field(
        description="Longest context that fits at the configured concurrency (capped at the model's maximum)."
    )


class ConcurrencyPlan(ApiModel):
    """Two concurrency figures at maxContextTokens, per replica, from the runtime's own accounting."""

    guaranteed: float = Field(
        description="Sequences of maxContextTokens the runtime admits at its worst-case charge, the figure it "
        "logs (vLLM: 'Maximum concurrency for N tokens per request'). The plan fits when this is at least "
        "maxConcurrentSequences."
    )
    steady_decode: int = Field(
        description="Sequences whose decode working set fits: sliding-window layers at their window, global "
        "layers at the whole context. Above guaranteed, a runtime preempts rather than fails."
    )
    cache_tokens: int = Field(
        description="The KV cache's size in tokens as the runtime logs it (per GPU for vLLM, its max batch "
        "total tokens for TGI, its cells for llama.cpp)."
    )


class PlanReport(ApiModel):
    """A plan for one GemmaDeployment."""

    name: str = Field(description="GemmaDeployment name.")
    namespace: str = Field(description="GemmaDeployment namespace.")
    fits: bool = Field(
        description="Whether a replica fits the chosen hardware (and, with a node inventory, some node)."
    )
    problems: list[str] = Field(description="Why it does not fit or cannot be served, with the numbers.")
    runtime: RuntimePlan | None = Field(
        default=None, description="The serving container; absent when no runtime can serve the request."
    )
    placement: PlacementPlan | None = Field(
        default=None, description="Placement; absent when no placement is possible."
    )
    memory: MemoryPlan | None = Field(default=None, description="Memory per replica; absent when it cannot be sized.")
    limits: LimitsPlan = Field(description="Configured request limits.")
    fits_up_to: FitsUpTo | None = Field(default=None, description="The most the hardware holds around the request.")
    concurrency: ConcurrencyPlan | None = Field(
        default=None, description="The runtime's own concurrency figures at maxContextTokens; absent when unsized."
    )
