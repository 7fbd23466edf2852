"""extraArgs cannot set what the operator sets, and status does not copy them (issue #14)."""

from __future__ import annotations

import json

import pytest

from gemma_operator.api import Reason
from gemma_operator.api.spec import MAX_ARG_LENGTH, MAX_EXTRA_ARGS
from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.planning import Plan, Refused, plan, plan_report
from gemma_operator.rendering import render

from .builders import deployment, fitted

VLLM = {"model": {"variant": "31b"}}
TGI = {"model": {"family": "gemma-3", "variant": "27b"}, "serving": {"runtime": "tgi"}}
LLAMACPP = {"model": {"variant": "e4b", "precision": "int4"}, "placement": {"target": "edge"}}


def refusal(spec: dict[str, object], extra_args: list[str]) -> Refused:
    serving = {**spec.get("serving", {}), "extraArgs": extra_args}  # type: ignore[dict-item]
    gd = deployment(**{**spec, "serving": serving})
    result = plan(gd, default_accelerator_classes())
    assert isinstance(result, Refused), extra_args
    return result


@pytest.mark.parametrize(
    ("spec", "extra_args", "flag", "field"),
    [
        (VLLM, ["--max-model-len", "4096"], "--max-model-len", "spec.serving.maxContextTokens"),
        (VLLM, ["--max-model-len=4096"], "--max-model-len", "spec.serving.maxContextTokens"),
        (VLLM, ["--max_model_len=4096"], "--max-model-len", "spec.serving.maxContextTokens"),
        (VLLM, ["--seed", "1", "--port", "9000"], "--port", "the operator"),
        (VLLM, ["--gpu-memory-utilization=0.99"], "--gpu-memory-utilization", "the operator"),
        (VLLM, ["-tp", "4"], "--tensor-parallel-size", "spec.placement.gpusPerReplica"),
        (TGI, ["--max-total-tokens", "99"], "--max-total-tokens", "spec.serving.maxContextTokens"),
        (TGI, ["--hostname=::"], "--hostname", "the operator"),
        (LLAMACPP, ["-c", "99"], "-c", "spec.serving.maxContextTokens"),
        (LLAMACPP, ["--ctx-size=99"], "-c", "spec.serving.maxContextTokens"),
        (LLAMACPP, ["-np", "64"], "-np", "spec.serving.maxConcurrentSequences"),
        (LLAMACPP, ["--parallel", "64"], "-np", "spec.serving.maxConcurrentSequences"),
        (LLAMACPP, ["--port", "1"], "--port", "the operator"),
    ],
)
def test_an_owned_flag_in_extra_args_is_refused(
    spec: dict[str, object], extra_args: list[str], flag: str, field: str
) -> None:
    refused = refusal(spec, extra_args)
    assert refused.reason is Reason.OWNED_FLAG
    assert refused.closest is None  # nothing is sized, rendered or applied
    given = next(arg for arg in extra_args if arg.startswith("-") and arg != "--seed").split("=")[0]
    assert f"serving.extraArgs {given} " in refused.message
    assert flag in refused.message
    assert field in refused.message


def test_flags_the_operator_does_not_set_are_passed_on() -> None:
    gd = deployment(**VLLM, serving={"extraArgs": ["--seed", "1", "--enforce-eager", "--max-model-length-x"]})
    assert isinstance(plan(gd, default_accelerator_classes()), Plan)
    # A value that looks like a flag of another runtime is not owned by this one.
    gd = deployment(**LLAMACPP, serving={"extraArgs": ["--max-model-len", "4096"]})
    assert isinstance(plan(gd, default_accelerator_classes()), Plan)


def test_the_container_gets_every_extra_arg_after_the_operators() -> None:
    gd = deployment(**VLLM, serving={"extraArgs": ["--seed", "1"]})
    (workload,) = [obj for obj in render(gd, fitted(gd)) if obj["kind"] == "Deployment"]
    args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["serve", "google/gemma-4-31B-it"]
    assert args[-2:] == ["--seed", "1"]


def test_status_holds_the_operators_args_and_only_a_count_of_the_extra_args() -> None:
    extra_args = [f"--x{i}=" + "v" * (MAX_ARG_LENGTH - 8) for i in range(MAX_EXTRA_ARGS)]
    gd = deployment(**VLLM, serving={"extraArgs": extra_args})
    report = plan_report(gd, plan(gd, default_accelerator_classes()))
    assert report.runtime is not None
    assert not set(report.runtime.args) & set(extra_args)
    assert report.runtime.extra_arg_count == MAX_EXTRA_ARGS
    assert len(json.dumps(report.to_wire())) < 4096


def test_an_env_var_that_sets_an_owned_flag_is_refused() -> None:
    gd = deployment(**LLAMACPP, serving={"env": [{"name": "LLAMA_ARG_CTX_SIZE", "value": "999999"}]})
    result = plan(gd, default_accelerator_classes())
    assert isinstance(result, Refused)
    assert result.reason is Reason.OWNED_FLAG
    assert result.message.startswith("serving.env LLAMA_ARG_CTX_SIZE sets llamacpp's -c")
    other = deployment(**LLAMACPP, serving={"env": [{"name": "LLAMA_ARG_CACHE_REUSE", "value": "256"}]})
    assert isinstance(plan(other, default_accelerator_classes()), Plan)
