"""Cache lines the runtimes printed, as published or recorded, with the inputs each run had.

The one source for the calibration tests (tests/unit/test_allocator_vllm.py, test_allocator_tgi.py,
test_allocator_llamacpp.py) and for docs/capacity.md's "Published runtime log lines" table: each run's
figures are reproduced by the same allocator functions the planner sizes with.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import Attention, lookup, runtimes
from gemma_operator.catalog.versions import llamacpp as llamacpp_versions
from gemma_operator.catalog.versions import tgi as tgi_versions
from gemma_operator.catalog.versions import vllm as vllm_versions
from gemma_operator.catalog.versions.tgi import System, TgiRules
from gemma_operator.catalog.versions.vllm import VllmRules
from gemma_operator.planning import capacity
from gemma_operator.planning.allocators import Knobs, KvAccounting, llamacpp, tgi, vllm
from gemma_operator.planning.sizers import TgiSizer
from gemma_operator.planning.sizing import Request
from gemma_operator.planning.weights import weights

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class PublishedRun:
    """One run of vLLM or TGI whose cache lines were published, and what it ran with.

    pool_bytes: what the runtime divided into cache blocks on each device, None where it is the printed tokens'
    worth at the runtime's charge per token; pool_from says how it is known (no source below prints it).
    in_flight_batches: vLLM's batches in flight, where the run's scheduling is not its release's default.
    device_mib: the GPU's memory, where the source names it, so that the planner's own sizing can be shown.
    also_printed: lines of the run that fix its knobs and backend.
    """

    name: str
    url: str
    source: str
    runtime: Runtime
    release: str
    family: Family
    variant: str
    knobs: Knobs
    pool_bytes: int | None
    pool_from: str
    printed: tuple[str, ...]  # its lines about the cache, verbatim where the source quotes them
    cache_tokens: int
    concurrency: float | None = None
    also_printed: tuple[str, ...] = ()
    kv_cache_dtype: str = "auto"
    in_flight_batches: int | None = None
    device_mib: int | None = None

    @property
    def attention(self) -> Attention:
        return lookup(self.family, self.variant).attention


VLLM_ISSUE_39734 = PublishedRun(
    name="vllm-project/vllm#39734",
    url="https://github.com/vllm-project/vllm/issues/39734",
    source="vLLM 0.19.1rc1, google/gemma-4-31B-it bf16, one GPU",
    runtime=Runtime.VLLM,
    release="0.19.1",
    family=Family.GEMMA_4,
    variant="31b",
    knobs=Knobs(context_tokens=262144, sequences=1, prefill_chunk_tokens=2048),
    pool_bytes=int(34.2 * GIB),
    pool_from=(
        "34.2 GiB: 37,392 tokens are 2,337 blocks per group of the six groups, so the pool held 14,022 to 14,027 "
        "blocks of 2.5 MiB; 1.53x needs --max-num-batched-tokens 2048"
    ),
    printed=("GPU KV cache size: 37,392 tokens", "Maximum concurrency for 262,144 tokens per request: 1.53x"),
    cache_tokens=37392,
    concurrency=1.53,
)
GEMMA_FORGE_TWO_L4S = PublishedRun(
    name="gemma-forge, two L4s",
    url="https://kenrollins.github.io/gemma-forge/journal/gotchas/context-window-edge/",
    source="nvidia Gemma 4 31B NVFP4 on 2 x L4, tensor parallel 2, fp8 KV cache, max_model_len 4096",
    runtime=Runtime.VLLM,
    release="0.19.1",
    family=Family.GEMMA_4,
    variant="31b",
    # The chunk is vLLM's default on an L4.
    knobs=Knobs(context_tokens=4096, sequences=1, prefill_chunk_tokens=2048, tensor_parallel=2),
    pool_bytes=3912 * 640 * KIB,
    pool_from=(
        "2.39 GiB per GPU: 10,432 tokens are 652 blocks per group * 16, so 3,912 blocks of 640 KiB (the page's "
        '"~642 MiB per GPU" would give 2,736 tokens)'
    ),
    printed=("vLLM allocates 10,432 tokens of KV cache", "3.58x concurrent requests"),
    cache_tokens=10432,
    concurrency=3.58,
    kv_cache_dtype="fp8",
)
ROBOTMUNKI_ANNOTATED_LOG = PublishedRun(
    name="robotmunki, an annotated vLLM startup log",
    url="https://www.robotmunki.com/pages/vllm-startup-log-annotated.html",
    source="nvidia/Gemma-4-31B-IT-NVFP4, max_num_batched_tokens 4096, max_model_len 262144; the release is not named",
    runtime=Runtime.VLLM,
    release="0.33.0",
    family=Family.GEMMA_4,
    variant="31b",
    knobs=Knobs(context_tokens=262144, sequences=1, prefill_chunk_tokens=4096),
    pool_bytes=58441 * int(2.5 * MIB),
    pool_from=(
        "58,441 blocks of 2.5 MiB: 1,563,739 = int(X * 262,144) is 0.33.0's one-line formula, and X is a whole "
        "number of blocks over the per-request charge only with one batch in flight (async scheduling off)"
    ),
    printed=("KV cache 1,563,739 tokens", "Concurrency 5.97x"),
    cache_tokens=1563739,
    concurrency=5.97,
    in_flight_batches=1,
)
TGI_TWO_A6000S = PublishedRun(
    name="TGI on two RTX A6000s",
    # The deployment notes of a public repository, found in a code index that did not keep the repository's name.
    url="",
    source=(
        "ghcr.io/huggingface/text-generation-inference:latest on 2025-07-04 (3.3.4, whose accounting is 3.3.7's), "
        "google/gemma-3-27b-it, --num-shard 2, every other knob at its default"
    ),
    runtime=Runtime.TGI,
    release="3.3.4",
    family=Family.GEMMA_3,
    variant="27b",
    # Without chunking (a vision checkpoint) TGI defaults max_total_tokens to the warmup's prefill of 8000.
    knobs=Knobs(context_tokens=8000, sequences=1, prefill_chunk_tokens=8000, tensor_parallel=2),
    pool_bytes=None,
    pool_from=(
        "TGI prints no free-memory figure: the pool is the 52,125 tokens' worth at 248 KiB a token (62 layers, "
        "8 of 16 KV heads per shard), so the count is not an independent check"
    ),
    # Rank 0's block count (log_master), then the router's budget, the minimum over both shards.
    printed=("KV-cache blocks: 52719, size: 1", "Setting max batch total tokens to 52125"),
    cache_tokens=52125,
    also_printed=(
        "Using attention flashinfer - Prefix caching 0",
        "Default `max_batch_prefill_tokens` to 8000",
        "Maximum total tokens defaulted to 8000",
    ),
    device_mib=49140,
)

VLLM_RUNS = (VLLM_ISSUE_39734, GEMMA_FORGE_TWO_L4S, ROBOTMUNKI_ANNOTATED_LOG)
PUBLISHED_RUNS = (*VLLM_RUNS, TGI_TWO_A6000S)


def vllm_rules(run: PublishedRun) -> VllmRules:
    found = vllm_versions.rules(run.release)
    if found is None:
        raise ValueError(f"vLLM {run.release} is not catalogued")
    if run.in_flight_batches is None:
        return found
    charge = found.sliding_charge.model_copy(update={"concurrent_batches": run.in_flight_batches})
    return found.model_copy(update={"sliding_charge": charge})


def tgi_rules(run: PublishedRun) -> TgiRules:
    found = tgi_versions.rules(run.release)
    if found is None:
        raise ValueError(f"TGI {run.release} is not catalogued")
    return found


def pool_bytes(run: PublishedRun) -> int:
    """What the run's runtime divided into cache blocks on each device."""
    if run.pool_bytes is not None:
        return run.pool_bytes
    if run.runtime is not Runtime.TGI:
        raise ValueError(f"{run.name}: only TGI's pool is derived from its token count here")
    return run.cache_tokens * tgi.bytes_per_token(run.attention, run.knobs.tensor_parallel, tgi_rules(run))


def reproduce(run: PublishedRun) -> KvAccounting:
    """The run's cache figures as the runtime's allocator model computes them from its pool and knobs."""
    if run.runtime is Runtime.VLLM:
        return vllm.account(run.attention, run.knobs, pool_bytes(run), vllm_rules(run), run.kv_cache_dtype)
    return tgi.account(run.attention, run.knobs, pool_bytes(run), tgi_rules(run))


def model_lines(run: PublishedRun) -> tuple[str, ...]:
    """The cache lines the runtime prints for the figures reproduce() computes, in its own words."""
    accounting = reproduce(run)
    if run.runtime is Runtime.VLLM:
        return capacity.log_lines(run.runtime, run.knobs, accounting)
    rules = tgi_rules(run)
    return tgi.log_lines(accounting, tgi.block_size(run.attention, rules), rules)


def planner_cache_tokens(run: PublishedRun) -> int | None:
    """The cache the planner's own sizing gives the run's GPUs (weights and its overhead model taken off), where
    the source names the GPU; None otherwise."""
    if run.device_mib is None or run.runtime is not Runtime.TGI:
        return None
    variant = lookup(run.family, run.variant)
    rules = tgi_rules(run)
    model_type = tgi_versions.model_type(variant)
    assert model_type is not None
    request = Request(
        variant=variant,
        sizer=TgiSizer(rules, System.CUDA, model_type),
        target=Target.GPU,
        accelerator=None,
        weight_bytes=weights(variant, Precision.BF16, Runtime.TGI, run.release).total_bytes,
        device_gib=run.device_mib / 1024,
        memory_utilization=rules.memory.default_cuda_memory_fraction,
        activation_bytes_per_hidden_unit=runtimes()[Runtime.TGI].activation_bytes_per_hidden_unit,
    )
    return request.size(run.knobs).accounting.cache_tokens


@dataclass(frozen=True)
class RecordedCache:
    """A KV cache line the real llama-server printed for a tiny GGUF with a Gemma model's attention shapes."""

    build: str
    family: Family
    variant: str
    layers: int
    knobs: Knobs
    printed: str

    @property
    def attention(self) -> Attention:
        return lookup(self.family, self.variant).attention.model_copy(update={"layers": self.layers})

    @property
    def args(self) -> str:
        """The llama-server options it ran with (-c is every slot's context together)."""
        knobs = self.knobs
        return f"-c {knobs.context_tokens * knobs.sequences} -np {knobs.sequences} -ub {knobs.prefill_chunk_tokens}"

    def model_line(self) -> str:
        """The SWA cache's line as the build prints it, for what planning/allocators/llamacpp.py computes."""
        rules = llamacpp_versions.rules(self.build)
        if rules is None:
            raise ValueError(f"llama.cpp {self.build} is not catalogued")
        cache = llamacpp.layout(self.attention, self.knobs, rules).sliding
        return rules.kv_cache_log_line.value % (
            cache.total_bytes / MIB,
            cache.cells,
            cache.layers,
            cache.streams,
            cache.streams,
            "f16",
            cache.k_bytes / MIB,
            "f16",
            cache.v_bytes / MIB,
        )


# llama-server build 11669 (Debian sid), started by e2e/test_real_llamacpp_kv.py on a tiny gemma4 GGUF with
# 26B-A4B's attention at 12 layers (10 sliding of 8 KV heads x 256, 2 global of 2 x 512, window 1024).
LLAMACPP_26B_A4B_SWA = RecordedCache(
    build="b11669",
    family=Family.GEMMA_4,
    variant="26b-a4b",
    layers=12,
    knobs=Knobs(context_tokens=2048, sequences=2, prefill_chunk_tokens=256),
    printed=(
        "llama_kv_cache: size =  200.00 MiB (  1280 cells,  10 layers,  2/2 seqs), "
        "K (f16):  100.00 MiB, V (f16):  100.00 MiB"
    ),
)
