"""The real llama-server's own accounting of its KV cache equals the planner's llama.cpp model.

Each case is a tiny random-weight GGUF with a real Gemma model's attention (layer pattern, KV heads and head dims
per layer kind, window, shared-KV layers, K=V global layers) at a few layers and a small hidden size, started in
the real llama-server (Debian sid's build, see conftest.llama_root) with the case's -c/-np/-ub. The context and KV
cache lines it logs must be what planning/allocators/llamacpp.py computes for the same shapes, under the rules of
the build that ran. pytest -s prints each logged line beside the model's figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gemma_operator.api import Family
from gemma_operator.catalog import variants
from gemma_operator.catalog.facts import Attention
from gemma_operator.catalog.versions import llamacpp as versions
from gemma_operator.planning.allocators.base import Knobs
from gemma_operator.planning.allocators.llamacpp import checkpoint_bytes, layout
from operator_process import free_port
from realruntime import llamaserver
from realruntime.tinygguf import Shape, write_gemma3, write_gemma4

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    family: Family
    variant: str
    layers: int  # the tiny model's; the real model's pattern, heads and dims at this depth
    kv_shared_layers: int
    context: int  # per slot
    slots: int
    ubatch: int

    @property
    def id(self) -> str:
        return f"{self.family.value}-{self.variant}-c{self.context * self.slots}-np{self.slots}-ub{self.ubatch}"

    @property
    def attention(self) -> Attention:
        real = variants()[(self.family, self.variant)].attention
        return real.model_copy(update={"layers": self.layers, "kv_shared_layers": self.kv_shared_layers})

    @property
    def knobs(self) -> Knobs:
        return Knobs(context_tokens=self.context, sequences=self.slots, prefill_chunk_tokens=self.ubatch)

    @property
    def args(self) -> list[str]:
        return ["-c", str(self.context * self.slots), "-np", str(self.slots), "-ub", str(self.ubatch)]


CASES = [
    # Gemma 3 1B: 1 KV head x 256, window 512; -c 9000 is padded to 9216 and split into 3 x 3072.
    Case(Family.GEMMA_3, "1b", layers=12, kv_shared_layers=0, context=3000, slots=3, ubatch=512),
    # Gemma 3 27B: 16 KV heads x 128, window 1024.
    Case(Family.GEMMA_3, "27b", layers=12, kv_shared_layers=0, context=4096, slots=2, ubatch=256),
    # Gemma 4 26B-A4B: sliding 8 x 256, global 2 x 512 with K=V, window 1024.
    Case(Family.GEMMA_4, "26b-a4b", layers=12, kv_shared_layers=0, context=2048, slots=2, ubatch=256),
    # Gemma 4 31B: sliding 16 x 256, global 4 x 512 with K=V; one slot shorter than window + ubatch.
    Case(Family.GEMMA_4, "31b", layers=12, kv_shared_layers=0, context=1000, slots=1, ubatch=1024),
    # Gemma 4 E2B: 1 x 256 / 1 x 512, window 512, global every 5th; the last half of the layers share KV.
    Case(Family.GEMMA_4, "e2b", layers=10, kv_shared_layers=5, context=5000, slots=2, ubatch=512),
    # Gemma 4 E4B: 2 x 256 / 2 x 512, global every 6th, half the layers share KV; four slots.
    Case(Family.GEMMA_4, "e4b", layers=12, kv_shared_layers=6, context=1536, slots=4, ubatch=128),
]


def tiny_model(case: Case, directory: Path) -> Path:
    attention = case.attention
    shape = Shape(
        layers=attention.layers,
        heads=attention.attention_heads,
        kv_heads=attention.sliding.kv_heads,
        head_dim=attention.sliding.head_dim,
        sliding_window=attention.sliding_window,
        global_kv_heads=attention.global_.kv_heads,
        global_head_dim=attention.global_.head_dim,
        global_every=attention.global_every,
        last_layer_global=attention.last_layer_global,
        kv_shared_layers=attention.kv_shared_layers,
        global_k_equals_v=attention.global_k_equals_v,
    )
    path = directory / f"{case.family.value}-{case.variant}.gguf"
    # gemma3 files carry no layer pattern: llama.cpp's own rule (every sixth layer global) decides.
    return write_gemma3(path, shape) if case.family is Family.GEMMA_3 else write_gemma4(path, shape)


def printf_pattern(line_format: str) -> re.Pattern[str]:
    """A regex for the lines a printf format prints: numbers and %s fields captured, padding allowed."""
    fields = {"f": r"\s*([\d.]+)", "u": r"\s*(\d+)", "d": r"\s*(\d+)", "s": r"(\S+?)"}
    parts = re.split(r"(%[-\d.]*[fuds])", line_format)
    return re.compile("".join(fields[part[-1]] if part.startswith("%") else re.escape(part) for part in parts))


LoggedCache = tuple[str, tuple[int, int, int], tuple[str, str, str]]


def logged_caches(log: str, rules: versions.LlamaCppRules) -> list[LoggedCache]:
    """Each llama_kv_cache size line: the line, its (cells, layers, streams), and its total, K and V MiB as printed."""
    found: list[LoggedCache] = []
    for line in log.splitlines():
        match = printf_pattern(rules.kv_cache_log_line.value).search(line)
        if match:
            total, cells, layers, seqs, streams, k_type, k_mib, v_type, v_mib = match.groups()
            assert (k_type, v_type, seqs) == ("f16", "f16", streams), line
            found.append(
                (line[line.index("llama_kv_cache") :], (int(cells), int(layers), int(streams)), (total, k_mib, v_mib))
            )
    return found


def logged_number(log: str, name: str) -> int:
    found = re.search(rf"llama_context: {name}\s+= (\d+)", log)
    assert found, f"no llama_context {name} line in the llama-server log:\n{log}"
    return int(found[1])


def mib(value: int, decimals: int = 2) -> str:
    return f"{value / MiB:.{decimals}f}"


@pytest.fixture(scope="module")
def build_rules(llama_root: Path) -> versions.LlamaCppRules:
    """The rules of the build that runs here; the catalog must know it."""
    version = llamaserver.version(llama_root)
    found = re.search(r"build (\d+)", version)
    assert found, version
    rules = versions.rules(found[1])
    assert rules is not None, f"catalog/versions/llamacpp.yaml has no rules for the llama.cpp that runs here: {version}"
    return rules


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_kv_cache_llama_server_logs_is_the_model(
    case: Case, llama_root: Path, build_rules: versions.LlamaCppRules, tmp_path: Path
) -> None:
    model = layout(case.attention, case.knobs, build_rules)
    gguf = tiny_model(case, tmp_path)
    server = llamaserver.start(llama_root, ["-m", str(gguf), *case.args], "127.0.0.1", free_port(), tmp_path / "log")
    try:
        log = server.log_text()
    finally:
        server.stop()

    assert (logged_number(log, "n_ctx"), logged_number(log, "n_ctx_seq"), logged_number(log, "n_ubatch")) == (
        model.context_tokens,
        model.slot_tokens,
        model.ubatch_tokens,
    )
    caches = logged_caches(log, build_rules)
    assert len(caches) == 2, f"expected a non-SWA and a SWA cache line:\n{log}"
    print(f"\n{case.id}: llama-server build {build_rules.build} logged / the model computes")
    for (line, logged, printed), expected in zip(caches, (model.full, model.sliding), strict=True):
        print(f"  {line}")
        computed = (mib(expected.total_bytes), mib(expected.k_bytes), mib(expected.v_bytes))
        print(
            f"  model: {expected.cells} cells, {expected.layers} layers, {expected.streams} streams, "
            f"{computed[0]} MiB = K {computed[1]} + V {computed[2]} ({expected.total_bytes} bytes)"
        )
        assert logged == (expected.cells, expected.layers, expected.streams), line
        assert printed == computed, line


def test_a_checkpoint_holds_the_last_window_of_the_sliding_cache(
    llama_root: Path, build_rules: versions.LlamaCppRules, tmp_path: Path
) -> None:
    """A prompt longer than the window: the checkpoints the server makes near its end each hold one window."""
    case = Case(Family.GEMMA_3, "1b", layers=12, kv_shared_layers=0, context=2048, slots=1, ubatch=256)
    gguf = tiny_model(case, tmp_path)
    server = llamaserver.start(llama_root, ["-m", str(gguf), *case.args], "127.0.0.1", free_port(), tmp_path / "log")
    try:
        # One token per character and one per space: about 1400 tokens, well past the 512-token window.
        prompt = " ".join("abcdefghij"[i % 10] for i in range(700))
        reply = requests.post(server.base_url + "/completion", json={"prompt": prompt, "n_predict": 1}, timeout=600)
        assert reply.status_code == 200, reply.text
        log = server.log_text()
    finally:
        server.stop()
    made = re.findall(r"created context checkpoint .*?n_tokens = (\d+), size = ([\d.]+) MiB\)", log)
    assert made, f"no context checkpoint in the llama-server log:\n{log}"
    one = checkpoint_bytes(case.attention, case.knobs, build_rules, checkpoints=1)
    print(f"\ncheckpoints logged: {made}; the model's one checkpoint: {mib(one, 3)} MiB ({one} bytes)")
    full = [size for tokens, size in made if int(tokens) >= case.attention.sliding_window]
    assert full, made
    assert set(full) == {mib(one, 3)}


def test_without_threads_it_takes_the_physical_cores(
    llama_root: Path, build_rules: versions.LlamaCppRules, tmp_path: Path
) -> None:
    """No -t: the node's physical cores (distinct thread-sibling sets), whatever the process may run on."""
    assert build_rules.threads_default.value == "physical-cores"
    cores = {
        path.read_text().strip() for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings")
    }
    case = CASES[0]
    server = llamaserver.start(
        llama_root, ["-m", str(tiny_model(case, tmp_path))], "127.0.0.1", free_port(), tmp_path / "log"
    )
    try:
        log = server.log_text()
    finally:
        server.stop()
    found = re.search(r"system_info: n_threads = (\d+) \(n_threads_batch = (\d+)\)", log)
    assert found, log
    assert (int(found[1]), int(found[2])) == (len(cores), len(cores))
