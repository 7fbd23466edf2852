"""LoRA adapters: the API's bounds, the vLLM flags, the slots' buffers as vLLM 0.33.0 allocates them, the refusals
of the runtimes that cannot serve them, and the tool-calling and reasoning switches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Family, InvalidSpec, PlanReport
from gemma_operator.api.vocabulary import ALLOWED_LORA_RANKS
from gemma_operator.catalog import Variant, lookup, variants
from gemma_operator.planning.lora import LoraSlots, buffer_bytes, index_bytes

from .builders import deployment, plan_for

GB, GIB = 10**9, 1 << 30


def adapters(count: int) -> list[dict[str, str]]:
    return [{"name": f"adapter-{i}", "repository": f"example/gemma-lora-{i}"} for i in range(count)]


def flag_values(args: list[str], flag: str) -> list[str]:
    """The values after `flag`, up to the next option."""
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("-")), len(args))
    return args[start:end]


# --- the API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", ALLOWED_LORA_RANKS)
def test_every_rank_vllm_takes_is_accepted(rank: int) -> None:
    gd = deployment(adapters=adapters(1), serving={"lora": {"maxRank": rank}})
    assert gd.spec.serving.lora.max_rank == rank


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"adapters": adapters(1), "serving": {"lora": {"maxRank": 4}}}, "maxRank must be 1, 8, 16"),
        ({"adapters": adapters(1), "serving": {"lora": {"maxRank": 1024}}}, "less than or equal to 512"),
        ({"adapters": adapters(2), "serving": {"lora": {"maxLoaded": 3}}}, "must not exceed the number of adapters"),
        ({"adapters": adapters(1), "serving": {"lora": {"maxLoaded": 0}}}, "greater than or equal to 1"),
        ({"adapters": adapters(1) * 2}, "adapter names must be unique: adapter-0 repeated"),
        ({"adapters": adapters(33)}, "at most 32 items"),
        # What vLLM's --lora-modules would split (=, ",") or take for the base model's name ("/").
        ({"adapters": [{"name": "a=b", "repository": "o/r"}]}, "String should match pattern"),
        ({"adapters": [{"name": "a,b", "repository": "o/r"}]}, "String should match pattern"),
        ({"adapters": [{"name": "google/gemma", "repository": "o/r"}]}, "String should match pattern"),
        ({"adapters": [{"name": "-x", "repository": "o/r"}]}, "String should match pattern"),
        ({"adapters": [{"name": "x", "repository": "no-owner"}]}, "String should match pattern"),
        ({"adapters": [{"name": "x", "repository": "o/r", "revision": "--x"}]}, "String should match pattern"),
    ],
)
def test_adapter_bounds_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        deployment(**spec)


def test_slots_without_adapters_are_accepted_and_reserve_nothing() -> None:
    report = plan_for(serving={"lora": {"maxLoaded": 4}, "maxConcurrentSequences": 2})
    assert report.runtime is not None
    assert report.memory is not None
    assert "--enable-lora" not in report.runtime.args
    assert report.memory.adapters_gi_b == 0
    assert report.runtime.adapters == []


# --- rendering ------------------------------------------------------------------------------------


def test_adapters_are_rendered_as_one_lora_modules_option_with_their_slots() -> None:
    report = plan_for(adapters=adapters(3), serving={"lora": {"maxRank": 32, "maxLoaded": 2}})
    assert report.runtime is not None
    args = report.runtime.args
    assert "--enable-lora" in args
    # vLLM's LoRAParserAction keeps only the last --lora-modules: one option carries all three.
    assert args.count("--lora-modules") == 1
    assert flag_values(args, "--lora-modules") == [f"adapter-{i}=example/gemma-lora-{i}" for i in range(3)]
    assert flag_values(args, "--max-loras") == ["2"]
    assert flag_values(args, "--max-lora-rank") == ["32"]
    # Every adapter stays in host memory once loaded, so a slot refills without reading the disk.
    assert flag_values(args, "--max-cpu-loras") == ["3"]
    assert report.runtime.adapters == ["adapter-0", "adapter-1", "adapter-2"]


# --- memory ---------------------------------------------------------------------------------------


def peft_widths(variant: Variant) -> int:
    """Input plus output sizes of the modules a PEFT "all-linear" adapter of Gemma 4 31B targets, per layer, at
    tensor parallel 1, read off the checkpoint's shapes: q, k, v, o and the MLP's gate, up and down. The global
    layers keep K and V as one tensor, but vLLM gives them a V slot, so v counts there too."""
    attention, hidden = variant.attention, variant.hidden_size
    total = 0
    for layer in range(1, attention.layers + 1):
        shape = attention.global_ if attention.is_global(layer) else attention.sliding
        q, kv = attention.attention_heads * shape.head_dim, shape.kv_heads * shape.head_dim
        projections = [(hidden, q), (hidden, kv), (hidden, kv), (q, hidden)]
        mlp = [(hidden, variant.intermediate_size)] * 2 + [(variant.intermediate_size, hidden)]
        total += sum(inputs + outputs for inputs, outputs in projections + mlp)
    return total


def test_a_31b_slot_at_rank_16_is_the_issues_quarter_gigabyte() -> None:
    """Issue #17's estimate: about 0.24 GB per slot for 31B at rank 16."""
    variant = lookup(Family.GEMMA_4, "31b")
    one = buffer_bytes(variant, LoraSlots(rank=16, slots=1), tensor_parallel=1)
    assert one == peft_widths(variant) * 16 * 2
    assert one / GB == pytest.approx(0.247, abs=0.001)
    assert buffer_bytes(variant, LoraSlots(rank=16, slots=4), tensor_parallel=1) == 4 * one


@pytest.mark.parametrize(("slots", "adapters_gib"), [(1, 0.23), (4, 0.92)])
def test_the_slots_come_out_of_the_kv_cache_pool(slots: int, adapters_gib: float) -> None:
    """31B bf16 text-only on one H100 at two sequences of 8K: the slots' buffers (and the second set of CUDA graphs
    vLLM 0.33.0 captures for LoRA) take what the KV cache would have had."""
    asked: dict[str, Any] = {"maxConcurrentSequences": 2, "modalities": {"textOnly": True}}
    plain = plan_for(serving=asked, placement={"gpusPerReplica": 1})
    served = plan_for(
        adapters=adapters(4), serving={**asked, "lora": {"maxLoaded": slots}}, placement={"gpusPerReplica": 1}
    )
    assert plain.memory is not None
    assert served.memory is not None
    assert served.memory.adapters_gi_b == adapters_gib
    assert served.memory.overhead_gi_b == pytest.approx(plain.memory.overhead_gi_b + 0.5, abs=0.05)
    assert plain.concurrency is not None
    assert served.concurrency is not None
    assert served.concurrency.guaranteed < plain.concurrency.guaranteed
    assert served.fits
    # With the vision tower loaded as well (modalities unset), four slots no longer leave room for two sequences.
    towers = plan_for(
        adapters=adapters(4),
        serving={"maxConcurrentSequences": 2, "lora": {"maxLoaded": slots}},
        placement={"gpusPerReplica": 1},
    )
    assert not towers.fits
    assert f"LoRA slots {adapters_gib:.1f} GiB" in towers.problems[0]
    assert "gpusPerReplica 2 would fit" in towers.problems[0]


def test_mixture_of_experts_slots_hold_every_experts_adapter() -> None:
    """26B-A4B: 128 experts of 704 in each of 30 layers dwarf its dense layers' share."""
    variant = lookup(Family.GEMMA_4, "26b-a4b")
    assert variant.experts is not None
    experts = 30 * variant.experts.count * 16 * (3 * variant.hidden_size + 3 * variant.experts.intermediate_size) * 2
    total = buffer_bytes(variant, LoraSlots(16, 1), 1)
    assert experts < total < 1.05 * experts


GEMMA_4 = [variant for (family, _), variant in variants().items() if family is Family.GEMMA_4]


@given(
    variant=st.sampled_from(GEMMA_4),
    rank=st.sampled_from(ALLOWED_LORA_RANKS),
    slots=st.integers(1, 32),
    degree=st.sampled_from([1, 2]),
)
def test_buffers_grow_with_rank_and_slots_and_shrink_with_tensor_parallelism(
    variant: Variant, rank: int, slots: int, degree: int
) -> None:
    one = buffer_bytes(variant, LoraSlots(rank, slots), degree)
    assert buffer_bytes(variant, LoraSlots(rank, slots + 1), degree) > one
    assert buffer_bytes(variant, LoraSlots(rank * 2, slots), degree) == 2 * one
    assert buffer_bytes(variant, LoraSlots(rank, slots), degree * 2) < one
    # Replicated layers (hidden sizes) keep a share on every device: halving never goes below half.
    assert buffer_bytes(variant, LoraSlots(rank, slots), degree * 2) > one / 2


def test_the_punica_indices_are_a_few_hundred_kilobytes() -> None:
    assert 300_000 < index_bytes(LoraSlots(16, 4), batched_tokens=8192, sequences=4) < 500_000


# --- refusals -------------------------------------------------------------------------------------


def refusal(report: PlanReport) -> str:
    assert not report.fits
    assert report.runtime is None  # refused before sizing: nothing is held
    return report.problems[0]


def test_vllm_0_19_1_cannot_serve_adapters_on_gemma_4() -> None:
    message = refusal(plan_for(adapters=adapters(1), serving={"image": "vllm/vllm-openai:v0.19.1"}))
    assert message.startswith("vLLM 0.19.1 cannot serve adapters on gemma-4 31b")
    assert "vllm-project/vllm#40693" in message
    assert "vLLM 0.33.0" in message


def test_vllm_0_19_1_serves_adapters_on_gemma_3() -> None:
    report = plan_for(
        model={"family": "gemma-3", "variant": "27b"},
        adapters=adapters(1),
        serving={"runtime": "vllm", "image": "vllm/vllm-openai:v0.19.1"},
    )
    assert report.fits
    assert report.memory is not None
    assert report.memory.adapters_gi_b > 0


def test_an_adapter_revision_is_refused_on_vllm() -> None:
    pinned = [{"name": "sql", "repository": "example/sql", "revision": "v2"}]
    message = refusal(plan_for(adapters=pinned))
    assert message.startswith("adapters sql: revision v2 cannot be honoured by vLLM 0.33.0")


def test_runtime_auto_moves_gemma_3_adapters_from_tgi_to_vllm() -> None:
    report = plan_for(model={"family": "gemma-3", "variant": "27b"}, adapters=adapters(2), serving={"lora": {}})
    assert report.runtime is not None
    assert report.runtime.name.value == "vllm"
    assert "tgi does not: the operator serves adapters on vLLM only" in report.runtime.auto_choice


def test_tgi_and_llamacpp_refuse_adapters_with_the_reason() -> None:
    tgi = refusal(
        plan_for(model={"family": "gemma-3", "variant": "27b"}, adapters=adapters(1), serving={"runtime": "tgi"})
    )
    assert "model.model.model.layers" in tgi
    assert "set serving.runtime vllm" in tgi
    llama = refusal(plan_for(model={"variant": "e2b"}, adapters=adapters(1)))
    assert llama.startswith("llama.cpp b11243 loads adapters only from local GGUF files (--lora FILE)")


# --- tool calling and reasoning -------------------------------------------------------------------

PARSERS = ["--reasoning-parser", "--tool-call-parser", "--enable-auto-tool-choice"]


def rendered(report: PlanReport) -> list[str]:
    assert report.runtime is not None
    return [flag for flag in PARSERS if flag in report.runtime.args]


@pytest.mark.parametrize(
    ("model", "serving", "flags"),
    [
        # On by default for an instruction-tuned Gemma 4 on vLLM, as the vLLM recipe serves it.
        ({"variant": "31b"}, {}, PARSERS),
        ({"variant": "31b", "instructionTuned": False}, {}, []),
        ({"variant": "31b"}, {"toolCalling": False}, ["--reasoning-parser"]),
        ({"variant": "31b"}, {"reasoning": False}, PARSERS[1:]),
        ({"variant": "31b", "instructionTuned": False}, {"toolCalling": True, "reasoning": True}, PARSERS),
        ({"family": "gemma-3", "variant": "27b"}, {"runtime": "vllm"}, []),
    ],
)
def test_parsers_follow_the_switches(model: dict[str, Any], serving: dict[str, Any], flags: list[str]) -> None:
    report = plan_for(model=model, serving={"maxConcurrentSequences": 2, **serving})
    assert rendered(report) == flags
    if flags:
        assert report.runtime is not None
        args = report.runtime.args
        assert all(args[args.index(flag) + 1] == "gemma4" for flag in flags if flag != "--enable-auto-tool-choice")


@pytest.mark.parametrize(
    ("model", "serving", "field"),
    [
        ({"family": "gemma-3", "variant": "27b"}, {"runtime": "vllm", "toolCalling": True}, "toolCalling"),
        ({"family": "gemma-3", "variant": "27b"}, {"reasoning": True}, "reasoning"),
        ({"variant": "e2b"}, {"toolCalling": True}, "toolCalling"),
    ],
)
def test_parsers_asked_for_where_none_exists_are_refused(
    model: dict[str, Any], serving: dict[str, Any], field: str
) -> None:
    message = refusal(plan_for(model=model, serving=serving))
    assert message.startswith(f"serving.{field} needs vLLM's gemma4 parsers, which serve Gemma 4 only")
