"""planning: placement, runtime choice, tensor parallelism, refusals, and the launch claim."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import default_accelerator_classes, lookup, runtimes
from gemma_operator.planning import InventoryError, NodeInfo, inventory_from_node_list
from gemma_operator.planning.choices import divides_heads
from gemma_operator.planning.memory import naive_kv_cache_gib, overhead_gib
from gemma_operator.planning.weights import weights

from .builders import plan_for


@pytest.mark.parametrize("variant", ["31b", "26b-a4b"])
def test_launch_claim_bf16_fits_one_h100_at_defaults(variant: str) -> None:
    report = plan_for(model={"variant": variant})
    assert report.fits, report.problems
    assert report.placement is not None
    assert report.memory is not None
    assert report.placement.gpus_per_replica == 1
    assert report.placement.accelerator_class == "h100"
    assert report.memory.required_gi_b <= report.memory.available_gi_b


def test_a_naive_kv_formula_would_need_two_h100s_for_31b() -> None:
    variant = lookup(Family.GEMMA_4, "31b")
    vllm = runtimes()[Runtime.VLLM]
    h100 = default_accelerator_classes().classes["h100"].memory_gib * vllm.memory_utilization
    naive = (
        weights(variant, Precision.BF16, Runtime.VLLM).total_gib
        + naive_kv_cache_gib(variant.attention, 8192, 4)
        + overhead_gib(variant, vllm, Target.GPU, 8192, 1)
    )
    assert naive > h100  # one GPU would not do under the naive formula ...
    report = plan_for(model={"variant": "31b"})
    assert report.placement is not None
    assert report.placement.gpus_per_replica == 1  # ... but it does under ours.


def test_api_md_example_numbers() -> None:
    report = plan_for(model={"variant": "31b"})
    assert report.memory is not None
    assert report.memory.weights_gi_b == pytest.approx(58.5, abs=0.1)
    assert report.memory.available_gi_b == pytest.approx(71.7, abs=0.1)
    assert report.runtime is not None
    assert report.runtime.name is Runtime.VLLM
    assert report.runtime.image == "vllm/vllm-openai:v0.19.1"


@pytest.mark.parametrize(
    ("spec", "target", "runtime", "accelerator"),
    [
        ({"model": {"variant": "31b"}}, Target.GPU, Runtime.VLLM, "h100"),
        ({"model": {"variant": "26b-a4b"}}, Target.GPU, Runtime.VLLM, "h100"),
        ({"model": {"variant": "e2b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        ({"model": {"variant": "e4b"}}, Target.CPU, Runtime.LLAMACPP, ""),
        ({"model": {"family": "gemma-3", "variant": "27b"}}, Target.GPU, Runtime.TGI, "h100"),
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
    assert "does not fit 1 x h100: it needs" in problem
    assert "weights 58.5 GiB" in problem
    assert "offers 71.7 GiB at 90% utilisation" in problem
    assert "at most" not in problem or "sequences fit" in problem
    larger = plan_for(model={"variant": "31b"}, serving={"maxContextTokens": 131072})
    assert larger.fits
    assert larger.placement is not None
    assert larger.placement.gpus_per_replica == 2


def test_weights_too_large_for_the_class_say_so() -> None:
    report = plan_for(model={"variant": "31b"}, placement={"acceleratorClass": "l4", "gpusPerReplica": 1})
    assert not report.fits
    assert "the weights alone need 58.5 GiB" in report.problems[0]
    assert "gpusPerReplica 4 would fit" in report.problems[0]


def test_context_and_concurrency_frontier() -> None:
    report = plan_for(model={"variant": "31b"})
    assert report.fits_up_to is not None
    assert report.fits_up_to.concurrent_sequences >= 4
    assert report.fits_up_to.context_tokens >= 8192
    over = plan_for(
        model={"variant": "31b"},
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
