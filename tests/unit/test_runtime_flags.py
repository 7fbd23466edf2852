"""The flags the operator renders, held against every option each runtime's parser accepts (issue #15).

The tables (catalog/versions/flags/) are read from each runtime's own parser source by
`make refresh-runtime-facts`; each names the source, version and file blob ids it was read from.
"""

from __future__ import annotations

from importlib.resources import files

import pytest

from gemma_docgen.runtime_options import llamacpp, tgi
from gemma_operator.api import Family, Precision, Runtime, Target
from gemma_operator.catalog import runtimes
from gemma_operator.catalog.versions.options import (
    TABLES,
    OptionTable,
    RuntimeOption,
    image_version,
    option_table,
    parse_table,
)
from gemma_operator.planning.launch import (
    ABBREVIATING,
    ATTACHING,
    Flag,
    Launch,
    owned_env,
    owned_flag,
    runtime_args,
    runtime_flags,
)
from gemma_operator.planning.lora import LoraSlots


def pinned_versions(runtime: Runtime) -> set[str]:
    found = {image_version(runtime, image.image) for image in runtimes()[runtime].images.values()}
    assert None not in found, f"a pinned {runtime.value} image names no release"
    return {version for version in found if version is not None}


def tables(runtime: Runtime) -> list[OptionTable]:
    """Every table of `runtime`: its pinned versions' and the others generated (the vLLM release the pin moves to)."""
    folder = files("gemma_operator.catalog.versions").joinpath(TABLES)
    found = [
        parse_table(path.read_text(encoding="utf-8"))
        for path in folder.iterdir()
        if path.name.startswith(f"{runtime.value}-") and path.name.endswith(".yaml")
    ]
    return sorted(found, key=lambda table: table.version)


FLAGS = [(runtime, flag) for runtime in Runtime for flag in runtime_flags(runtime)]
FLAG_IDS = [f"{runtime.value}{flag.name}" for runtime, flag in FLAGS]


def options_of(table: OptionTable, flag: Flag) -> list[RuntimeOption]:
    """The table's options that any spelling of `flag` sets."""
    found = [option for spelling in flag.spellings() if (option := table.option(spelling)) is not None]
    return list({option.spellings: option for option in found}.values())


@pytest.mark.parametrize("runtime", list(Runtime))
def test_every_pinned_version_has_a_table_read_from_a_named_source(runtime: Runtime) -> None:
    for version in pinned_versions(runtime):
        table = option_table(runtime, version)
        assert table is not None, f"no {runtime.value} {version} table: run make refresh-runtime-facts"
        assert (table.runtime, table.version) == (runtime, version)
        assert table.source.files, "the table names the files it was read from"
        assert all(len(blob) == 40 and int(blob, 16) >= 0 for blob in table.source.files.values())
        # A git source names its commit; an archive its sha256.
        assert table.source.commit or table.source.archive_sha256
    assert runtime is not Runtime.VLLM or {"0.19.1", "0.33.0"} <= {table.version for table in tables(runtime)}


@pytest.mark.parametrize(("runtime", "flag"), FLAGS, ids=FLAG_IDS)
def test_every_flag_the_operator_renders_is_an_option_of_its_runtime(runtime: Runtime, flag: Flag) -> None:
    for table in tables(runtime):
        assert table.option(flag.name) is not None, f"{runtime.value} {table.version} has no {flag.name}"


@pytest.mark.parametrize(("runtime", "flag"), FLAGS, ids=FLAG_IDS)
def test_a_flag_knows_every_spelling_of_its_option(runtime: Runtime, flag: Flag) -> None:
    """So owned_flag refuses `--ctx-size` as well as `-c`: every spelling of the option, in every version."""
    for table in tables(runtime):
        for option in options_of(table, flag):
            missing = set(option.spellings) - set(flag.spellings())
            assert not missing, f"{runtime.value} {table.version} also spells {flag.name} {sorted(missing)}"
    # And each alias is a spelling some version really reads.
    for alias in flag.aliases:
        assert any(table.option(alias) for table in tables(runtime)), f"{alias} is no {runtime.value} option"


@pytest.mark.parametrize(("runtime", "flag"), FLAGS, ids=FLAG_IDS)
def test_a_flag_knows_every_variable_its_runtime_reads_it_from(runtime: Runtime, flag: Flag) -> None:
    read = {name for table in tables(runtime) for option in options_of(table, flag) for name in option.env}
    assert set(flag.env) == read


@pytest.mark.parametrize("runtime", list(Runtime))
def test_owned_flag_reads_arguments_as_each_parser_does(runtime: Runtime) -> None:
    syntaxes = [table.syntax for table in tables(runtime)]
    assert (runtime in ABBREVIATING) == any(syntax.abbreviations for syntax in syntaxes)
    assert (runtime in ATTACHING) == any(syntax.attached_short_values for syntax in syntaxes)


@pytest.mark.parametrize("runtime", list(Runtime))
def test_refusing_prefixes_and_attached_values_never_refuses_another_option(runtime: Runtime) -> None:
    """A prefix of an owned spelling, or a one-letter spelling with more after it, is never itself another option
    (argparse would read that option exactly)."""
    owned = {spelling for flag in runtime_flags(runtime) for spelling in flag.spellings()}
    for table in tables(runtime):
        others = {s for option in table.options for s in option.spellings} - owned
        for other in others:
            arg = [other]
            # TGI's prometheus_port shares -p with port (clap derives both from the first letter); port is owned.
            if runtime is Runtime.TGI and other == "-p":
                continue
            assert owned_flag(runtime, arg) is None, (
                f"{runtime.value} {table.version} {other}: {owned_flag(runtime, arg)}"
            )


def launches() -> list[Launch]:
    """A launch of each runtime on each hardware it serves, in each precision (int4 on vLLM both ways), per family."""
    found = []
    for facts in runtimes().values():
        for family, entries in facts.serves.items():
            for entry in entries:
                for precision, prequantized in [(p, False) for p in Precision] + [(Precision.INT4, True)]:
                    found.append(
                        Launch(
                            runtime=facts,
                            family=family,
                            model_id="google/gemma",
                            revision="abc" if facts.pins_revision else "",
                            precision=precision,
                            target=entry.hardware,
                            tensor_parallel=2 if entry.hardware is Target.GPU else 1,
                            context_tokens=8192,
                            sequences=4,
                            prefill_chunk_tokens=2048,
                            memory_utilization=0.9,
                            cpus=4,
                            prequantized=prequantized,
                            adapters=(("sql", "example/sql-lora"), ("chat", "example/chat-lora")),
                            lora=LoraSlots(rank=16, slots=2),
                            tool_calling=True,
                            reasoning=True,
                        )
                    )
    return found


def test_every_rendered_option_and_value_is_one_the_runtime_reads() -> None:
    seen = set()
    for launch in launches():
        runtime = launch.runtime.name
        args = runtime_args(launch)
        for table in tables(runtime):
            for index, arg in enumerate(args):
                if not arg.startswith("-"):
                    continue
                option = table.option(arg)
                assert option is not None, f"{runtime.value} {table.version} has no {arg}"
                if option.values:
                    assert args[index + 1] in option.values, f"{runtime.value} {arg} {args[index + 1]}"
                    seen.add((runtime, arg))
    # TGI's --dtype and --quantize take a closed set of values; both were checked.
    assert {(Runtime.TGI, "--dtype"), (Runtime.TGI, "--quantize")} <= seen
    assert any(launch.family is Family.GEMMA_4 for launch in launches())
    rendered = {arg for launch in launches() for arg in runtime_args(launch)}
    assert {"--enable-lora", "--lora-modules", "--tool-call-parser"} <= rendered


@pytest.mark.parametrize(
    ("runtime", "extra_args", "flag", "how"),
    [
        (Runtime.VLLM, ["--no-enable-auto-tool-choice"], "--enable-auto-tool-choice", "sets"),
        (Runtime.VLLM, ["--device-memory-utilization", "0.5"], "--gpu-memory-utilization", "sets"),
        (Runtime.VLLM, ["--max-model", "4096"], "--max-model-len", "abbreviates"),
        (Runtime.VLLM, ["--max_num_seq=4"], "--max-num-seqs", "abbreviates"),
        (Runtime.VLLM, ["-qfp8"], "--quantization", "sets"),
        (Runtime.VLLM, ["-t", "2"], "--tensor-parallel-size", "abbreviates"),
        (Runtime.TGI, ["-p8080"], "--port", "sets"),
        (Runtime.TGI, ["--max-input-length", "10"], "--max-input-tokens", "sets"),
        (Runtime.LLAMACPP, ["--ctx_size", "10"], "-c", "sets"),
        (Runtime.LLAMACPP, ["--hf-repo", "a/b"], "-hf", "sets"),
    ],
)
def test_every_spelling_a_runtime_reads_is_refused(
    runtime: Runtime, extra_args: list[str], flag: str, how: str
) -> None:
    message = owned_flag(runtime, extra_args)
    assert message is not None
    assert f"serving.extraArgs {extra_args[0].split('=')[0]} {how} {runtime.value}'s {flag}," in message


@pytest.mark.parametrize(
    ("runtime", "extra_args"),
    [
        # llama.cpp looks whole arguments up: -cb is continuous batching, not -c with a value.
        (Runtime.LLAMACPP, ["-cb", "--cache-reuse", "256"]),
        # clap takes whole names: --max-total is an error there, not --max-total-tokens.
        (Runtime.TGI, ["--max-total", "1"]),
        # Longer than an owned option is another option (or an error), never the owned one.
        (Runtime.VLLM, ["--reasoning-parser-plugin", "p.py", "--model-impl", "vllm"]),
    ],
)
def test_what_a_runtime_reads_as_another_option_passes(runtime: Runtime, extra_args: list[str]) -> None:
    assert owned_flag(runtime, extra_args) is None


@pytest.mark.parametrize(
    ("runtime", "variable", "message"),
    [
        (
            Runtime.LLAMACPP,
            "LLAMA_ARG_CTX_SIZE",
            "serving.env LLAMA_ARG_CTX_SIZE sets llamacpp's -c, which spec.serving.maxContextTokens x "
            "spec.serving.maxConcurrentSequences decides; set that instead",
        ),
        (
            Runtime.LLAMACPP,
            "LLAMA_ARG_PORT",
            "serving.env LLAMA_ARG_PORT sets llamacpp's --port, which the operator decides",
        ),
        (
            Runtime.TGI,
            "MAX_INPUT_LENGTH",
            "serving.env MAX_INPUT_LENGTH sets tgi's --max-input-tokens, which spec.serving.maxContextTokens decides; "
            "set that instead",
        ),
        (Runtime.TGI, "QUANTIZE", "serving.env QUANTIZE sets tgi's --quantize, which spec.model.precision decides"),
    ],
)
def test_a_variable_the_runtime_reads_as_an_owned_flag_is_refused(
    runtime: Runtime, variable: str, message: str
) -> None:
    found = owned_env(runtime, ["HF_HUB_ENABLE_HF_TRANSFER", variable])
    assert found is not None
    assert found.startswith(message)


@pytest.mark.parametrize("runtime", list(Runtime))
def test_every_variable_of_an_owned_option_is_refused_and_no_other(runtime: Runtime) -> None:
    for table in tables(runtime):
        owned = [option.spellings for flag in runtime_flags(runtime) for option in options_of(table, flag)]
        for option in table.options:
            for variable in option.env:
                refused = owned_env(runtime, [variable]) is not None
                assert refused == (option.spellings in owned), f"{runtime.value} {table.version} {variable}"
    # vLLM reads no option from the environment.
    assert runtime is not Runtime.VLLM or all(not option.env for t in tables(runtime) for option in t.options)


LLAMACPP_SNIPPET = """
static std::initializer_list<enum llama_example> mmproj_examples = {LLAMA_EXAMPLE_MTMD, LLAMA_EXAMPLE_SERVER};
    add_opt(common_arg({"-c", "--ctx-size"}, "N", "size (default: %d)", [](common_params & params, int value) {
        params.n_ctx = value; // {"-fake"}
    }).set_env("LLAMA_ARG_CTX_SIZE"));
    add_opt(common_arg({"-p", "--prompt"}, "PROMPT", "prompt", [](common_params & params, const std::string & v) {
    }).set_excludes({LLAMA_EXAMPLE_SERVER}));
    add_opt(common_arg({"--mmproj"}, "F", "projector", [](common_params & params, const std::string & v) {
    }).set_examples(mmproj_examples));
    add_opt(common_arg({"-kvu"}, {"-no-kvu"}, "unified", [](common_params & params, bool value) {
    }).set_env("LLAMA_ARG_KV_UNIFIED").set_examples({LLAMA_EXAMPLE_SERVER}));
    if (ex == LLAMA_EXAMPLE_SERVER) {
        add_opt(common_arg({"-np"}, "N", "slots", [](common_params & params, int value) {}));
    } else {
        add_opt(common_arg({"-ns"}, "N", "sequences", [](common_params & params, int value) {}));
    }
    add_opt(common_arg({"--bench-only"}, "bench", [](common_params & params) {}).set_examples({LLAMA_EXAMPLE_BENCH}));
"""


def test_the_llamacpp_reader_keeps_what_llama_server_registers() -> None:
    options = {option.spellings: option.env for option in llamacpp.server_options(LLAMACPP_SNIPPET)}
    assert options == {
        ("-c", "--ctx-size"): ("LLAMA_ARG_CTX_SIZE",),
        ("--mmproj",): (),
        ("-kvu", "-no-kvu"): ("LLAMA_ARG_KV_UNIFIED", "LLAMA_ARG_NO_KV_UNIFIED"),
        ("-np",): (),
    }


TGI_SNIPPET = """
#[derive(Clone, Copy, Debug, ValueEnum)]
#[serde(rename_all = "kebab-case")]
enum Quantization {
    /// doc
    BitsandbytesNf4,
    #[clap(name = "fp8")]
    Fp8e4,
}

#[derive(Parser, Debug)]
#[clap(author, version, about, long_about = None)]
struct Args {
    /// The model.
    #[clap(default_value = "bigscience/bloom-560m", long, env)]
    model_id: String,
    #[clap(long, env, value_enum)]
    quantize: Option<Quantization>,
    #[clap(default_value = "3000", long, short, env)]
    port: u16,
    #[clap(long, short, action)]
    env: bool,
}
"""


def test_the_tgi_reader_derives_spellings_as_clap_does() -> None:
    options = {option.spellings: (option.env, option.values) for option in tgi.launcher_options(TGI_SNIPPET)}
    assert options == {
        ("--model-id",): (("MODEL_ID",), ()),
        ("--quantize",): (("QUANTIZE",), ("bitsandbytes-nf4", "fp8")),
        ("--port", "-p"): (("PORT",), ()),
        ("--env", "-e"): ((), ()),
        ("--help", "-h"): ((), ()),
        ("--version", "-V"): ((), ()),
    }
