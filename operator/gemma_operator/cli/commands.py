"""The CLI's commands. Each returns an exit status: 0 fine, 1 does not fit, 2 bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from gemma_operator.api import Family, GemmaDeployment, InvalidSpec, PlanReport, Runtime
from gemma_operator.api.crd import build_crd
from gemma_operator.catalog import (
    AcceleratorClasses,
    CatalogError,
    default_accelerator_classes,
    gpu_only_variant_names,
    load_accelerator_classes,
    variant_names,
)
from gemma_operator.cli.documents import Problem, read_deployments
from gemma_operator.cli.tables import markdown, table
from gemma_operator.planning import (
    InventoryError,
    NodeInfo,
    Plan,
    PlanResult,
    RuntimeImages,
    inventory_from_node_list,
    plan,
    plan_report,
    runtime_images,
)
from gemma_operator.planning.allocators import Knobs
from gemma_operator.planning.capacity import FRONTIER_CONTEXTS, Reproduction, Row, frontier, reproduce
from gemma_operator.rendering import render

if TYPE_CHECKING:
    from gemma_operator.reconcile.run import Options

OK, DOES_NOT_FIT, BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Input the command cannot start from: a missing or broken configuration file."""


def accelerator_classes(path: Path | None) -> AcceleratorClasses:
    try:
        return load_accelerator_classes(path) if path else default_accelerator_classes()
    except CatalogError as error:
        raise UsageError(str(error)) from None


def node_inventory(path: Path | None) -> tuple[NodeInfo, ...] | None:
    if path is None:
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: {error}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: not a NodeList")
    try:
        return inventory_from_node_list(document)
    except InventoryError as error:
        raise UsageError(f"{path}: {error}") from None


def _plans(
    files: list[Path], classes: AcceleratorClasses, nodes: tuple[NodeInfo, ...] | None, errors: TextIO
) -> tuple[list[tuple[GemmaDeployment, PlanResult]], bool]:
    plans: list[tuple[GemmaDeployment, PlanResult]] = []
    invalid = False
    for item in read_deployments(files):
        if isinstance(item, Problem):
            print(f"error: {item}", file=errors)
            invalid = True
        else:
            plans.append((item, plan(item, classes, nodes)))
    return plans, invalid


def _status(invalid: bool, plans: list[tuple[GemmaDeployment, PlanResult]]) -> int:
    if invalid:
        return BAD_INPUT
    return OK if all(isinstance(result, Plan) for _, result in plans) else DOES_NOT_FIT


def plan_command(
    files: list[Path],
    nodes: Path | None,
    classes_file: Path | None,
    output: str,
    out: TextIO = sys.stdout,
    errors: TextIO = sys.stderr,
) -> int:
    plans, invalid = _plans(files, accelerator_classes(classes_file), node_inventory(nodes), errors)
    reports = [(deployment, plan_report(deployment, result)) for deployment, result in plans]
    if output == "json":
        json.dump([report.to_wire() for _, report in reports], out, indent=2)
        out.write("\n")
    else:
        out.write(_plan_table(reports) + "\n")
    return _status(invalid, plans)


def _plan_table(plans: list[tuple[GemmaDeployment, PlanReport]]) -> str:
    rows = []
    notes = []
    for deployment, report in plans:
        model = deployment.spec.model
        memory, placement, runtime = report.memory, report.placement, report.runtime
        rows.append(
            [
                f"{report.namespace}/{report.name}",
                f"{model.family.value} {model.variant} {model.precision.value}",
                runtime.name.value if runtime else "-",
                placement.target.value if placement else "-",
                (placement.accelerator_class or "-") if placement else "-",
                str(placement.gpus_per_replica) if placement else "-",
                f"{memory.required_gi_b:.1f}/{memory.available_gi_b:.1f}" if memory else "-",
                f"{report.limits.max_context_tokens}x{report.limits.max_concurrent_sequences}",
                f"{report.fits_up_to.concurrent_sequences} seqs, {report.fits_up_to.context_tokens} tokens"
                if report.fits_up_to
                else "-",
                "yes" if report.fits else "NO",
            ]
        )
        notes += [f"{report.namespace}/{report.name}: {problem}" for problem in report.problems]
    header = [
        "GEMMADEPLOYMENT",
        "MODEL",
        "RUNTIME",
        "TARGET",
        "ACCELERATOR",
        "GPUS",
        "GIB NEEDED/FREE",
        "CONTEXT x SEQS",
        "FITS UP TO",
        "FITS",
    ]
    return table(header, rows) + ("\n\n" + "\n".join(notes) if notes else "")


def render_command(
    files: list[Path],
    nodes: Path | None,
    classes_file: Path | None,
    out: TextIO = sys.stdout,
    errors: TextIO = sys.stderr,
) -> int:
    plans, invalid = _plans(files, accelerator_classes(classes_file), node_inventory(nodes), errors)
    manifests = []
    for deployment, result in plans:
        if isinstance(result, Plan):
            manifests += render(deployment, result)
        else:
            metadata = deployment.metadata
            for problem in result.problems:
                print(f"error: {metadata.namespace}/{metadata.name}: {problem}", file=errors)
    yaml.safe_dump_all(manifests, out, sort_keys=False)
    return _status(invalid, plans)


def crd_manifest() -> dict[str, object]:
    """The CRD with the catalog's variants in its CEL rules."""
    return build_crd(variant_names(), gpu_only_variant_names())


def crd_text() -> str:
    """The CRD as crds/ holds it: a header, then the YAML."""
    header = "# Generated by `gemma-operator crd` from the api models. Do not edit.\n"
    return header + yaml.safe_dump(crd_manifest(), sort_keys=False, width=120)


def crd_command(out: TextIO = sys.stdout) -> int:
    out.write(crd_text())
    return OK


def frontier_cells(row: Row) -> list[str]:
    """A frontier row's cells as the tables show them: `guaranteed (steady decode) on GPUs`, or `-` for no fit."""
    return [
        "-" if cell.sequences is None else f"{cell.sequences} ({cell.steady_decode}) on {cell.gpus}"
        for cell in row.cells
    ]


def capacity_text(classes: AcceleratorClasses, output: str) -> str:
    rows = list(frontier(classes))
    if output == "json":
        return (
            json.dumps(
                [
                    {
                        "family": row.family,
                        "variant": row.variant,
                        "precision": row.precision.value,
                        "runtime": row.runtime.value,
                        "acceleratorClass": row.accelerator,
                        "contexts": [
                            {
                                "contextTokens": cell.context_tokens,
                                "maxConcurrentSequences": cell.sequences,
                                "steadyDecodeSequences": cell.steady_decode,
                                "gpusPerReplica": cell.gpus,
                                "prefillChunkTokens": cell.prefill_chunk_tokens,
                            }
                            for cell in row.cells
                        ],
                    }
                    for row in rows
                ],
                indent=2,
            )
            + "\n"
        )
    header = ["MODEL", "PRECISION", "RUNTIME", "ACCELERATOR", *(f"{context // 1024}K" for context in FRONTIER_CONTEXTS)]
    body = [
        [f"{row.family} {row.variant}", row.precision.value, row.runtime.value, row.accelerator, *frontier_cells(row)]
        for row in rows
    ]
    return (markdown(header, body) if output == "markdown" else table(header, body)) + "\n"


def reproduction_text(reproduction: Reproduction, knobs: Knobs, output: str) -> str:
    accounting = reproduction.accounting
    if output == "json":
        return (
            json.dumps(
                {
                    "runtime": reproduction.runtime.value,
                    "version": reproduction.version,
                    "versionKnown": reproduction.version_known,
                    "maxModelLen": knobs.context_tokens,
                    "maxNumBatchedTokens": knobs.prefill_chunk_tokens,
                    "tensorParallelSize": knobs.tensor_parallel,
                    "kvCacheTokens": accounting.cache_tokens,
                    "maxConcurrency": round(accounting.guaranteed, 4),
                    "steadyDecodeSequences": accounting.steady_decode,
                    "bytesPerSequence": accounting.bytes_per_sequence,
                    "logLines": list(reproduction.log_lines),
                },
                indent=2,
            )
            + "\n"
        )
    lines = [
        f"{reproduction.runtime.value} {reproduction.version}"
        + ("" if reproduction.version_known else " (release not catalogued: the pinned release's rules)"),
        f"KV cache tokens: {accounting.cache_tokens}",
        f"max concurrency at {knobs.context_tokens} tokens: {accounting.guaranteed:.2f}",
        f"sequences in steady decode: {accounting.steady_decode}",
        *reproduction.log_lines,
    ]
    return "\n".join(lines) + "\n"


def accelerator_classes_path(path: Path | None) -> Path | None:
    """The path, once the file is known to hold valid classes: a bad file fails before the operator starts."""
    accelerator_classes(path)
    return path


def checked_runtime_images(settings: list[str]) -> RuntimeImages:
    """--runtime-image settings, checked: a bad one fails before the operator starts."""
    try:
        return runtime_images(settings)
    except ValueError as error:
        raise UsageError(str(error)) from None


def at_least(least: float, flag: str) -> Callable[[float], float]:
    def checked(value: float) -> float:
        if value < least:
            raise UsageError(f"{flag} must be at least {least:g}, not {value:g}")
        return value

    return checked


# `gemma-operator run`'s options (argument dest) as the Options fields they set, and how. --all-namespaces
# comes after --namespace, so that it wins when both are given.
RUN_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "namespace": ("namespaces", tuple),
    "all_namespaces": ("namespaces", lambda _: ()),
    "leader_election_lease": ("leader_election_lease", str),
    "leader_election_namespace": ("leader_election_namespace", str),
    "liveness": ("liveness", lambda url: url or None),  # '': no liveness endpoint
    "metrics_port": ("metrics_port", lambda port: port or None),  # 0: no metrics server
    "metrics_address": ("metrics_address", str),
    "accelerator_classes": ("accelerator_classes", accelerator_classes_path),
    "autoscaling_interval": ("autoscaling_interval", float),
    "runtime_image": ("runtime_images", checked_runtime_images),
    "upgrade_rollouts_per_class": ("upgrade_rollouts_per_class", at_least(1, "--upgrade-rollouts-per-class")),
    "upgrade_rollout_timeout": ("upgrade_rollout_timeout", at_least(1, "--upgrade-rollout-timeout")),
    "log_format": ("json_logs", lambda log_format: log_format == "json"),
    "verbose": ("verbose", bool),
}


def run_options(args: argparse.Namespace) -> Options:
    """The operator's Options: those given on the command line, Options' own defaults for the rest."""
    # Imported here: the operator (kopf, the Kubernetes client) is needed only by this command.
    from gemma_operator.reconcile.run import Options  # noqa: PLC0415

    given = vars(args)
    return Options(**{field: convert(given[dest]) for dest, (field, convert) in RUN_OPTIONS.items() if dest in given})


def run_command(args: argparse.Namespace) -> int:
    from gemma_operator.reconcile.run import run_operator  # noqa: PLC0415

    run_operator(run_options(args))
    return OK


def capacity_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """The frontier, or with --runtime and --kv-pool-gib the runtime's own figures for that pool."""
    if args.runtime is None:
        out.write(capacity_text(accelerator_classes(args.accelerator_classes), args.output))
        return OK
    missing = [
        flag for flag, value in (("--kv-pool-gib", args.kv_pool_gib), ("--variant", args.variant)) if value is None
    ]
    if missing:
        raise UsageError(f"capacity --runtime needs {' and '.join(missing)}")
    knobs = Knobs(
        context_tokens=args.max_model_len,
        sequences=args.max_num_seqs,
        prefill_chunk_tokens=args.max_num_batched_tokens,
        tensor_parallel=args.tensor_parallel_size,
    )
    try:
        found = reproduce(
            Runtime(args.runtime), args.runtime_version, Family(args.family), args.variant, args.kv_pool_gib, knobs
        )
    except (InvalidSpec, ValueError) as error:
        raise UsageError(str(error)) from None
    out.write(reproduction_text(found, knobs, "json" if args.output == "json" else "table"))
    return OK
