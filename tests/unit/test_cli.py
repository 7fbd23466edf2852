"""The command line, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gemma_operator.api import Precision
from gemma_operator.catalog import default_accelerator_classes, variants
from gemma_operator.cli.commands import crd_text

from .test_render_unicode import AWKWARD, NON_BMP

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("gemma-4-*.yaml"))
CLI = [sys.executable, "-m", "gemma_operator.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False, cwd=ROOT)


def write(tmp_path: Path, name: str, documents: list[object]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents))
    return path


def gd(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "serving.gemma.dev/v1alpha1",
        "kind": "GemmaDeployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": spec,
    }


def test_plan_json_for_the_four_examples() -> None:
    assert len(EXAMPLES) == 4
    result = run("plan", *EXAMPLES, "-o", "json")
    assert result.returncode == 0, result.stderr
    plans = json.loads(result.stdout)
    assert [p["name"] for p in plans] == [yaml.safe_load(path.read_text())["metadata"]["name"] for path in EXAMPLES]
    for p in plans:
        assert set(p) >= {"name", "namespace", "fits", "problems", "runtime", "placement", "memory", "limits"}
        # API.md's memory keys, the LoRA slots' buffers, the towers and their profile, and the MTP assistant.
        contract = {"weightsGiB", "kvCacheGiB", "overheadGiB", "requiredGiB", "availableGiB"}
        assert set(p["memory"]) == contract | {"adaptersGiB", "multimodalGiB", "assistantGiB"}
        assert set(p["runtime"]) == {
            "name",
            "image",
            "args",
            "extraArgCount",
            "version",
            "prefillChunkTokens",
            "autoChoice",
            "decisions",
            "adapters",
        }
        assert set(p["concurrency"]) == {"guaranteed", "steadyDecode", "cacheTokens"}
        assert p["concurrency"]["guaranteed"] >= p["limits"]["maxConcurrentSequences"]
        assert p["fits"] is True
        assert p["problems"] == []
    by_name = {p["name"]: p for p in plans}
    assert (
        by_name["gemma-31b"]["placement"] | {"target": "gpu", "acceleratorClass": "h100", "gpusPerReplica": 1}
        == by_name["gemma-31b"]["placement"]
    )
    assert by_name["gemma-26b-moe"]["runtime"]["name"] == "vllm"
    assert by_name["gemma-e2b"]["placement"]["target"] == "cpu"
    assert by_name["gemma-e4b-edge"]["placement"]["target"] == "edge"
    assert by_name["gemma-e4b-edge"]["runtime"]["name"] == "llamacpp"


def test_plan_table_for_people() -> None:
    result = run("plan", *EXAMPLES)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["GEMMADEPLOYMENT", "MODEL", "RUNTIME"]
    assert any(line.startswith("ml/gemma-31b") and line.rstrip().endswith("yes") for line in lines)


def test_invalid_document_names_the_field_without_a_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        [gd("ok", model={"variant": "31b"}), gd("bad", model={"family": "gemma-3", "variant": "e2b"})],
    )
    result = run("plan", path, "-o", "json")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"{path}[1] (bad): spec.model.variant: 'e2b' is not a gemma-3 variant (choose one of 1b, 4b, 12b, 27b)"
        in result.stderr
    )
    assert [p["name"] for p in json.loads(result.stdout)] == ["ok"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "not a Kubernetes object"),
        (
            yaml.safe_dump(gd("x", model={"variant": "31b"}, serving={"maxContextTokens": "long"})),
            "spec.serving.maxContextTokens: Input should be a valid integer",
        ),
    ],
)
def test_broken_files_get_a_message(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    result = run("plan", path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_reported(tmp_path: Path) -> None:
    result = run("plan", tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert "No such file or directory" in result.stderr


def test_does_not_fit_exits_one_with_the_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "big.yaml",
        [gd("huge", model={"variant": "31b"}, serving={"maxContextTokens": 262144, "maxConcurrentSequences": 64})],
    )
    result = run("plan", path, "-o", "json")
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["fits"] is False
    assert "does not fit 8 x h100" not in report["problems"][0]  # 8 does not divide the 4 global KV heads
    assert "does not fit 4 x h100" in report["problems"][0]


def test_nodes_file_checks_placement(tmp_path: Path) -> None:
    nodes = {
        "apiVersion": "v1",
        "kind": "NodeList",
        "items": [
            {
                "metadata": {"name": "l4-1", "labels": {"nvidia.com/gpu.product": "NVIDIA-L4"}},
                "status": {"allocatable": {"memory": "128Gi", "nvidia.com/gpu": "4"}},
            },
        ],
    }
    nodes_path = write(tmp_path, "nodes.yaml", [nodes])
    result = run("plan", EXAMPLES[1], "--nodes", nodes_path, "-o", "json")
    assert result.returncode == 1
    assert (
        "no node can host a replica: 0/0 h100 nodes have 1 allocatable nvidia.com/gpu"
        in json.loads(result.stdout)[0]["problems"]
    )
    broken = write(
        tmp_path,
        "broken-nodes.yaml",
        [{"kind": "NodeList", "items": [{"metadata": {"name": "n"}, "status": {"allocatable": {"memory": "many"}}}]}],
    )
    result = run("plan", EXAMPLES[1], "--nodes", broken)
    assert result.returncode == 2
    assert "node n: status.allocatable: 'many' is not a Kubernetes quantity" in result.stderr


def test_broken_accelerator_classes_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "classes.yaml", [{"defaultClass": "x", "classes": {"x": {"memoryMiB": 1}}, "nodeMemoryMiB": {}}]
    )
    result = run("plan", EXAMPLES[0], "--accelerator-classes", path)
    assert result.returncode == 2
    assert "classes.x.product: Field required" in result.stderr


def test_render_prints_the_children(tmp_path: Path) -> None:
    result = run("render", *EXAMPLES)
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
    assert sorted(deployments) == ["gemma-26b-moe", "gemma-31b", "gemma-e2b", "gemma-e4b-edge"]
    assert any(o["kind"] == "PodDisruptionBudget" for o in objects)  # the 26B example has two replicas
    refused = write(tmp_path, "refused.yaml", [gd("cpu31", model={"variant": "31b"}, placement={"target": "cpu"})])
    result = run("render", refused)
    assert result.returncode == 1
    assert "ml/cpu31: gemma-4 31b runs on GPUs only" in result.stderr
    assert list(yaml.safe_load_all(result.stdout)) in ([], [None])


def test_render_prints_valid_yaml_for_any_unicode(tmp_path: Path) -> None:
    spec = {
        "model": {"variant": "31b", "revision": f"refs/tags/{NON_BMP}"},
        "serving": {"extraArgs": ["--served-model-name", AWKWARD], "env": [{"name": "GREETING", "value": AWKWARD}]},
    }
    path = tmp_path / "unicode.yaml"
    path.write_text(yaml.safe_dump(gd("chat", **spec), allow_unicode=True), encoding="utf-8")
    assert NON_BMP in path.read_text(encoding="utf-8")  # the file holds the characters, not escapes
    result = run("render", path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (workload,) = [o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Deployment"]
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--served-model-name", AWKWARD]
    assert f"refs/tags/{NON_BMP}" in container["args"]
    assert {"name": "GREETING", "value": AWKWARD} in container["env"]


def test_crd_command_prints_the_generated_crd() -> None:
    result = run("crd")
    assert result.returncode == 0
    assert result.stdout == crd_text()


def test_capacity_json() -> None:
    result = run("capacity", "-o", "json")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    runtimes_per_family = {"gemma-4": 1, "gemma-3": 2}  # vLLM; TGI and vLLM
    assert len(rows) == sum(runtimes_per_family[family] for family, _ in variants()) * len(Precision) * len(
        default_accelerator_classes().classes
    )
    h100_31b = next(r for r in rows if (r["variant"], r["precision"], r["acceleratorClass"]) == ("31b", "bf16", "h100"))
    assert [c["contextTokens"] for c in h100_31b["contexts"]] == [8192, 32768, 131072, 262144]
    at_8k = h100_31b["contexts"][0]
    # One H100 holds two 8K sequences of 31B by vLLM 0.33.0's accounting, at its smallest chunk.
    assert (at_8k["gpusPerReplica"], at_8k["maxConcurrentSequences"], at_8k["prefillChunkTokens"]) == (1, 2, 2496)
    assert at_8k["steadyDecodeSequences"] > at_8k["maxConcurrentSequences"]
    tgi_27b = next(r for r in rows if (r["variant"], r["runtime"], r["acceleratorClass"]) == ("27b", "tgi", "h100"))
    vllm_27b = next(r for r in rows if (r["variant"], r["runtime"], r["acceleratorClass"]) == ("27b", "vllm", "h100"))
    # TGI caches every layer at full length: at 32K it needs more GPUs for one sequence or holds fewer.
    tgi_32k, vllm_32k = tgi_27b["contexts"][1], vllm_27b["contexts"][1]
    assert (tgi_32k["gpusPerReplica"], -tgi_32k["maxConcurrentSequences"]) > (
        vllm_32k["gpusPerReplica"],
        -vllm_32k["maxConcurrentSequences"],
    )


def test_capacity_reproduces_a_published_vllm_log_line() -> None:
    """vllm-project/vllm#39734: Gemma 4 31B bf16 on vLLM 0.19.1, max_model_len 262144, 34.2 GiB of KV cache memory,
    logged "GPU KV cache size: 37,392 tokens" and "Maximum concurrency for 262,144 tokens per request: 1.53x"."""
    result = run(
        "capacity",
        *("--runtime", "vllm", "--runtime-version", "0.19.1", "--variant", "31b", "--precision", "bf16"),
        *("--kv-pool-gib", "34.2", "--max-model-len", "262144", "--max-num-batched-tokens", "2048", "-o", "json"),
    )
    assert result.returncode == 0, result.stderr
    reproduced = json.loads(result.stdout)
    assert reproduced["kvCacheTokens"] == pytest.approx(37392, rel=0.01)
    assert round(reproduced["maxConcurrency"], 2) == 1.53
    assert reproduced["logLines"][1] == "Maximum concurrency for 262,144 tokens per request: 1.53x"


def test_capacity_for_a_runtime_needs_its_pool() -> None:
    result = run("capacity", "--runtime", "vllm", "--variant", "31b")
    assert result.returncode == 2
    assert "capacity --runtime needs --kv-pool-gib" in result.stderr
