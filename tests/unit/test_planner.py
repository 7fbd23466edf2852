"""planning: placement, runtime choice, tensor parallelism, refusals, and the launch claim."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.api import Family, PlanReport, Precision, Runtime, Target
from gemma_operator.catalog import default_accelerator_classes, lookup, runtimes
from gemma_operator.planning import InventoryError, NodeInfo, inventory_from_node_list
from gemma_operator.planning.choices import divides_heads
from gemma_operator.planning.memory import naive_kv_cache_gib, overhead_gib
from gemma_operator.planning.weights import weights

from .builders import plan_for


def one_h100(report: PlanReport) -> bool:
    assert report.placement is not None
    assert report.memory is not None
    return report.fits and report.placement.gpus_per_replica == 1 and report.placement.accelerator_class == "h100"


def test_launch_claim_26b_bf16_fits_one_h100_at_defaults() -> None:
    assert one_h100(plan_for(model={"variant": "26b-a4b"}))


def test_launch_claim_31b_bf16_holds_on_one_h100_only_at_two_sequences_and_the_smallest_chunk() -> None:
    """vLLM 0.33.0 charges each 8K sequence of 31B ~5 GiB at its smallest chunk, 2496 (a whole video item for
    Gemma 4; sliding layers hold window + 2 chunks in flight): one H100 leaves ~11 GiB, two sequences, not four."""
    two = plan_for(model={"variant": "31b"}, serving={"maxConcurrentSequences": 2})
    assert one_h100(two)
    assert two.runtime is not None
    assert two.runtime.prefill_chunk_tokens == 2496
    assert two.concurrency is not None
    assert 2 <= two.concurrency.guaranteed < 3
    four = plan_for(model={"variant": "31b"})
    assert four.placement is not None
    assert four.placement.gpus_per_replica == 2


def test_the_chunk_below_the_default_is_chosen_and_explained() -> None:
    report = plan_for(model={"variant": "31b"}, serving={"maxConcurrentSequences": 2})
    assert report.runtime is not None
    args = report.runtime.args
    assert args[args.index("--max-num-batched-tokens") + 1] == "2496"
    (chunk, *_) = report.runtime.decisions
    assert chunk.startswith("--max-num-batched-tokens 2496, below vllm 0.33.0's default of 8192")
    assert "fewer than the 2 asked for" in chunk


def test_a_naive_kv_formula_would_need_more_h100s_than_the_runtimes_accounting() -> None:
    variant = lookup(Family.GEMMA_4, "31b")
    vllm = runtimes()[Runtime.VLLM]
    h100 = default_accelerator_classes().classes["h100"].memory_gib * vllm.memory_utilization
    naive = (
        weights(variant, Precision.BF16, Runtime.VLLM).total_gib
        + naive_kv_cache_gib(variant.attention, 32768, 1)
        + overhead_gib(variant, Target.GPU, 2496, 1, vllm.activation_bytes_per_hidden_unit)
    )
    assert naive > h100  # one GPU would not do under the naive formula ...
    long_one = plan_for(model={"variant": "31b"}, serving={"maxContextTokens": 32768, "maxConcurrentSequences": 1})
    assert one_h100(long_one)  # ... but it does under vLLM's own.


def test_an_older_image_is_planned_with_its_own_release_and_an_unknown_one_says_so() -> None:
    older = plan_for(model={"variant": "31b"}, serving={"image": "vllm/vllm-openai:v0.19.1"})
    assert older.runtime is not None
    assert older.runtime.version == "0.19.1"
    assert older.runtime.image == "vllm/vllm-openai:v0.19.1"
    unknown = plan_for(model={"variant": "31b"}, serving={"image": "registry.example/vllm:nightly"})
    assert unknown.runtime is not None
    assert unknown.runtime.version == "0.33.0"
    assert any("names no release the catalog knows" in decision for decision in unknown.runtime.decisions)


def test_int4_is_refused_where_the_pinned_vllm_cannot_load_it() -> None:
    bnb = plan_for(model={"variant": "26b-a4b", "precision": "int4"})
    assert not bnb.fits
    assert "vLLM 0.33.0 has no bitsandbytes quantisation" in bnb.problems[0]
    assert "use precision fp8, or set model.repository" in bnb.problems[0]
    moe = plan_for(model={"variant": "26b-a4b", "precision": "int4"}, serving={"image": "vllm/vllm-openai:v0.19.1"})
    assert "expert mapping" in moe.problems[0]
    dense = plan_for(model={"variant": "31b", "precision": "int4"}, serving={"image": "vllm/vllm-openai:v0.19.1"})
    assert dense.fits
    prequantised = plan_for(model={"variant": "26b-a4b", "precision": "int4", "repository": "org/gemma-4-26b-w4a16"})
    assert prequantised.fits
    assert prequantised.runtime is not None
    assert "--quantization" not in prequantised.runtime.args


def test_tgi_is_not_planned_onto_one_h100_for_gemma_3_27b_at_32k_by_4() -> None:
    """Issue 13: TGI caches every layer at full length, so four 32K sequences of 27B need 62 GiB of cache."""
    spec = {"model": {"family": "gemma-3", "variant": "27b"}, "serving": {"runtime": "tgi", "maxContextTokens": 32768}}
    one = plan_for(**spec, placement={"gpusPerReplica": 1})
    assert not one.fits
    assert "Not enough memory to handle `max_total_tokens=32768`" in one.problems[0]
    assert plan_for(**spec).placement.gpus_per_replica > 1  # type: ignore[union-attr]


def test_api_md_example_numbers() -> None:
    # API.md's example plan is 31B on one H100; by vLLM 0.33.0's own accounting it holds two sequences there.
    report = plan_for(model={"variant": "31b"}, serving={"maxConcurrentSequences": 2})
    assert report.memory is not None
    assert report.memory.weights_gi_b == pytest.approx(58.5, abs=0.1)
    assert report.memory.available_gi_b == pytest.approx(71.7, abs=0.1)
    assert report.runtime is not None
    assert report.runtime.name is Runtime.VLLM
    assert report.runtime.image == "vllm/vllm-openai:v0.33.0"


@pytest.mark.parametrize(
    ("spec", "target", "runtime", "accelerator"),
    [
        ({"model": {"variant": "31b"}}, Target.GPU, Runtime.VLLM, "h100"),
        ({"model": {"variant": "26b-a4b"}}, Target.GPU, Runtime.VLLM, "h100"),
        ({"model": {"variant": "e2b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        ({"model": {"variant": "e4b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        # Auto keeps TGI where it fits on as few GPUs as vLLM, takes vLLM where TGI needs more.
        ({"model": {"family": "gemma-3", "variant": "27b"}}, Target.GPU, Runtime.VLLM, "h100"),
        ({"model": {"family": "gemma-3", "variant": "12b"}}, Target.GPU, Runtime.TGI, "h100"),
        ({"model": {"family": "gemma-3", "variant": "1b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        ({"model": {"family": "gemma-3", "variant": "4b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        ({"model": {"variant": "e4b"}, "placement": {"target": "gpu"}}, Target.GPU, Runtime.VLLM, "h100"),
        (
            {"model": {"variant": "e4b", "precision": "int4"}, "placement": {"target": "edge"}},
            Target.EDGE,
            Runtime.LLAMACPP,
            "",
        ),
        (
            {
                "model": {"family": "gemma-3", "variant": "4b"},
                "serving": {"runtime": "tgi"},
                "placement": {"target": "cpu"},
            },
            Target.CPU,
            Runtime.TGI,
            "",
        ),
    ],
)
def test_auto_target_and_runtime(spec: dict[str, Any], target: Target, runtime: Runtime, accelerator: str) -> None:
    report = plan_for(**spec)
    assert report.fits, report.problems
    assert report.placement is not None
    assert report.runtime is not None
    assert (report.placement.target, report.runtime.name, report.placement.accelerator_class) == (
        target,
        runtime,
        accelerator,
    )


def test_placement_selects_and_tolerates_the_right_nodes() -> None:
    gpu = plan_for(model={"variant": "31b"}).placement
    assert gpu is not None
    assert gpu.node_selector["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert [t.key for t in gpu.tolerations] == ["nvidia.com/gpu"]
    cpu = plan_for(model={"variant": "e2b"}).placement
    assert cpu is not None
    assert set(cpu.excluded_node_labels) == {"nvidia.com/gpu.product", "node-role.kubernetes.io/edge"}
    assert cpu.tolerations == []
    edge = plan_for(model={"variant": "e2b"}, placement={"target": "edge", "nodeSelector": {"site": "a"}}).placement
    assert edge is not None
    assert edge.node_selector == {"node-role.kubernetes.io/edge": "", "site": "a"}
    assert [t.key for t in edge.tolerations] == ["node-role.kubernetes.io/edge"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"model": {"variant": "31b"}, "placement": {"target": "cpu"}},
            "gemma-4 31b runs on GPUs only; placement.target cpu cannot host it",
        ),
        (
            {"model": {"variant": "26b-a4b"}, "placement": {"target": "edge"}},
            "gemma-4 26b-a4b runs on GPUs only; placement.target edge",
        ),
        (
            {"model": {"variant": "31b"}, "placement": {"acceleratorClass": "h900"}},
            "placement.acceleratorClass h900 is not a configured accelerator class "
            "(known: a100-40gb, a100-80gb, b200, gb10, h100, h200, l4, rtx-pro-6000)",
        ),
        (
            {"model": {"variant": "31b"}, "serving": {"runtime": "tgi"}},
            "runtime tgi cannot serve gemma-4 31b on gpu nodes: TGI 3.3.7, its last release, "
            "has no Gemma 4 architecture code; use runtime vllm (or auto)",
        ),
        (
            {"model": {"variant": "e2b"}, "serving": {"runtime": "vllm"}},
            "runtime vllm cannot serve gemma-4 e2b on cpu nodes",
        ),
        (
            {"model": {"variant": "31b"}, "serving": {"maxContextTokens": 300000}},
            "serving.maxContextTokens 300000 exceeds gemma-4 31b's maximum of 262144",
        ),
        (
            {"model": {"variant": "e2b"}, "placement": {"target": "cpu", "acceleratorClass": "h100"}},
            "placement.acceleratorClass h100 applies to GPU targets only, not cpu",
        ),
        (
            {"model": {"variant": "31b"}, "placement": {"gpusPerReplica": 8}},
            "gpusPerReplica 8 does not divide gemma-4 31b's head counts (32 attention, 16 sliding KV, 4 global KV)",
        ),
        (
            {"model": {"variant": "e4b", "instructionTuned": False}},
            "no llamacpp build of the base gemma-4 e4b is catalogued; set spec.model.repository",
        ),
    ],
)
def test_refusals_say_what_is_wrong(spec: dict[str, Any], message: str) -> None:
    report = plan_for(**spec)
    assert not report.fits
    assert report.runtime is None
    assert any(message in problem for problem in report.problems), report.problems


def test_does_not_fit_carries_the_numbers_and_advice() -> None:
    report = plan_for(model={"variant": "31b"}, serving={"maxContextTokens": 131072}, placement={"gpusPerReplica": 1})
    assert not report.fits
    (problem,) = report.problems
    assert "does not fit 1 x h100: 4 sequences of 131072 tokens need" in problem
    assert "weights 58.5 GiB" in problem
    assert "offers 71.7 GiB" in problem
    assert "vllm admits 0.75 of them" in problem
    assert "at most" not in problem or "sequences fit" in problem
    larger = plan_for(model={"variant": "31b"}, serving={"maxContextTokens": 131072})
    assert larger.fits
    assert larger.placement is not None
    assert larger.placement.gpus_per_replica == 2


def test_weights_too_large_for_the_class_say_so() -> None:
    report = plan_for(
        model={"variant": "31b"},
        serving={"maxConcurrentSequences": 2},
        placement={"acceleratorClass": "l4", "gpusPerReplica": 1},
    )
    assert not report.fits
    assert "the weights alone need 58.5 GiB" in report.problems[0]
    assert "gpusPerReplica 4 would fit" in report.problems[0]


def test_context_and_concurrency_frontier() -> None:
    report = plan_for(model={"variant": "26b-a4b"})
    assert report.fits_up_to is not None
    assert report.fits_up_to.concurrent_sequences >= 4
    assert report.fits_up_to.context_tokens >= 8192
    at_most = plan_for(
        model={"variant": "26b-a4b"},
        serving={"maxConcurrentSequences": report.fits_up_to.concurrent_sequences},
        placement={"gpusPerReplica": 1},
    )
    assert at_most.fits
    over = plan_for(
        model={"variant": "26b-a4b"},
        serving={"maxConcurrentSequences": report.fits_up_to.concurrent_sequences + 1},
        placement={"gpusPerReplica": 1},
    )
    assert not over.fits


def test_runtime_args_follow_the_plan() -> None:
    report = plan_for(
        model={"variant": "31b", "revision": "abc"}, serving={"maxContextTokens": 131072, "extraArgs": ["--seed", "1"]}
    )
    assert report.runtime is not None
    args = report.runtime.args
    assert args[:2] == ["serve", "google/gemma-4-31B-it"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--max-model-len") + 1] == "131072"
    assert args[args.index("--revision") + 1] == "abc"
    assert "--reasoning-parser" in args
    assert "--seed" not in args  # status counts extraArgs; the container gets them (test_owned_flags)
    assert report.runtime.extra_arg_count == 2
    tgi = plan_for(model={"family": "gemma-3", "variant": "27b", "precision": "fp8"}).runtime
    assert tgi is not None
    assert tgi.args[:2] == ["--model-id", "google/gemma-3-27b-it"]
    assert tgi.args[tgi.args.index("--quantize") + 1] == "fp8"
    assert tgi.args[tgi.args.index("--max-total-tokens") + 1] == "8192"
    llama = plan_for(model={"variant": "e4b", "precision": "int4"}, placement={"target": "edge"}).runtime
    assert llama is not None
    assert llama.args[:2] == ["-hf", "unsloth/gemma-4-E4B-it-GGUF:Q4_0"]
    assert llama.args[llama.args.index("-c") + 1] == str(8192 * 4)


def node(
    name: str, labels: dict[str, str], memory: str = "256Gi", gpus: int = 0, taints: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    allocatable = {"cpu": "64", "memory": memory, "pods": "110"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints or []},
        "status": {"allocatable": allocatable},
    }


H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "kubernetes.io/arch": "amd64"}
EDGE = {"node-role.kubernetes.io/edge": "", "kubernetes.io/arch": "arm64"}
CPU = {"kubernetes.io/arch": "amd64"}


def inventory(*nodes: dict[str, Any]) -> list[NodeInfo]:
    return list(inventory_from_node_list({"kind": "NodeList", "items": list(nodes)}))


def test_inventory_with_room_fits() -> None:
    nodes = inventory(node("h1", H100, gpus=8), node("c1", CPU), node("e1", EDGE, memory="16Gi"))
    assert plan_for(nodes, model={"variant": "31b"}).fits
    assert plan_for(nodes, model={"variant": "e2b"}).fits
    assert plan_for(nodes, model={"variant": "e4b", "precision": "int4"}, placement={"target": "edge"}).fits


def test_inventory_without_enough_gpus_says_how_many() -> None:
    nodes = inventory(node("h1", H100, gpus=2), node("h2", H100, gpus=2))
    report = plan_for(
        nodes, model={"variant": "31b"}, serving={"maxContextTokens": 262144}, placement={"gpusPerReplica": 4}
    )
    assert report.fits is False
    assert "no node can host a replica: 0/2 h100 nodes have 4 allocatable nvidia.com/gpu (at most 2)" in report.problems


def test_cpu_target_is_sized_against_the_largest_cpu_node() -> None:
    nodes = inventory(node("c1", CPU, memory="8Gi"), node("h1", H100, memory="2Ti", gpus=8))
    report = plan_for(nodes, model={"variant": "e4b"})
    assert report.memory is not None
    assert report.memory.available_gi_b == pytest.approx(8 * 0.9, abs=0.05)
    assert not report.fits
    assert "does not fit a cpu node" in report.problems[0]


def test_edge_without_edge_nodes_is_refused() -> None:
    report = plan_for(
        inventory(node("c1", CPU)), model={"variant": "e2b", "precision": "int4"}, placement={"target": "edge"}
    )
    assert report.memory is not None
    needed = f"{report.memory.required_gi_b:.1f} GiB"
    assert report.problems == [
        f"no node can host a replica: 0/0 edge nodes (amd64/arm64) have {needed} of allocatable memory"
    ]


def test_broken_inventory_names_the_field() -> None:
    with pytest.raises(InventoryError, match=r"node bad: status\.allocatable: 'lots' is not a Kubernetes quantity"):
        inventory({"metadata": {"name": "bad"}, "status": {"allocatable": {"memory": "lots"}}})


variant_keys = st.sampled_from(
    [("gemma-4", v) for v in ("e2b", "e4b", "26b-a4b", "31b")] + [("gemma-3", v) for v in ("1b", "4b", "12b", "27b")]
)


@settings(max_examples=150, deadline=None)
@given(
    variant_keys,
    st.sampled_from(["bf16", "fp8", "int4"]),
    st.sampled_from(["h100", "h200", "a100-80gb", "a100-40gb", "l4"]),
    st.integers(min_value=128, max_value=262144),
    st.integers(min_value=1, max_value=64),
    st.sampled_from([0, 1, 2, 4, 8]),
)
def test_plans_never_claim_to_fit_over_memory_and_tp_divides_heads(
    key: tuple[str, str], precision: str, accelerator: str, context: int, sequences: int, gpus: int
) -> None:
    family, variant = key
    report = plan_for(
        model={"family": family, "variant": variant, "precision": precision},
        serving={"maxContextTokens": context, "maxConcurrentSequences": sequences},
        placement={"target": "gpu", "acceleratorClass": accelerator, "gpusPerReplica": gpus},
    )
    if report.fits:
        assert report.memory is not None
        assert report.placement is not None
        assert report.memory.required_gi_b <= report.memory.available_gi_b
        assert divides_heads(report.placement.gpus_per_replica, lookup(Family(family), variant))
    else:
        assert report.problems


def test_a_revision_llamacpp_cannot_pin_is_refused_not_dropped() -> None:
    report = plan_for(model={"variant": "e2b", "revision": "abc123"})
    assert not report.fits
    assert report.runtime is None
    assert "model.revision abc123" in report.problems[0]
    assert "llamacpp" in report.problems[0]


def test_the_gb10_class_plans_with_its_own_memory_fraction() -> None:
    gb10 = default_accelerator_classes().classes["gb10"]
    assert gb10.memory_utilization is not None
    report = plan_for(model={"variant": "26b-a4b"}, placement={"acceleratorClass": "gb10"})
    assert report.memory is not None
    assert report.runtime is not None
    assert report.memory.available_gi_b == pytest.approx(gb10.memory_gib * gb10.memory_utilization, abs=0.1)
    args = report.runtime.args
    assert args[args.index("--gpu-memory-utilization") + 1] == str(gb10.memory_utilization)


def test_gemma_3_on_vllm_takes_the_2048_floor_its_images_allow() -> None:
    # Gemma 3's largest multimodal item is an image of 256 tokens; only Gemma 4's 2496-token video lifts the floor.
    report = plan_for(model={"family": "gemma-3", "variant": "27b"}, serving={"maxConcurrentSequences": 5})
    assert report.runtime is not None
    assert report.runtime.name is Runtime.VLLM
    assert report.runtime.prefill_chunk_tokens == 2048


def test_a_prefill_that_leaves_no_cache_is_named_not_the_weights() -> None:
    """TGI prefills a whole prompt: Gemma 3 27B at 128K on one H100 has room for its weights, not for the prefill."""
    report = plan_for(
        model={"family": "gemma-3", "variant": "27b"},
        serving={"runtime": "tgi", "maxContextTokens": 131072, "maxConcurrentSequences": 1},
        placement={"gpusPerReplica": 1},
    )
    assert not report.fits
    assert "the weights alone" not in report.problems[0]
    assert "the activations of a 131072-token prefill) leave nothing for the KV cache" in report.problems[0]
