"""The `gemma-operator` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gemma_operator.api import Family, Precision, Runtime
from gemma_operator.cli import commands, fleet, simulate, size


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gemma-operator", description="Run Google's Gemma models on Kubernetes.")
    sub = top.add_subparsers(dest="command", required=True)
    classes_help = (
        "accelerator classes YAML (default: the built-in ones, operator/gemma_operator/catalog/accelerators.yaml)"
    )

    plan = sub.add_parser("plan", help="plan GemmaDeployments without a cluster")
    plan.add_argument("files", nargs="+", type=Path, metavar="FILE")
    plan.add_argument(
        "--nodes", type=Path, metavar="NODES.yaml", help="a NodeList; also check that some node can host a replica"
    )
    plan.add_argument("--accelerator-classes", type=Path, metavar="FILE", help=classes_help)
    plan.add_argument("-o", "--output", choices=["table", "json"], default="table")

    render = sub.add_parser("render", help="print the child manifests the operator would apply")
    render.add_argument("files", nargs="+", type=Path, metavar="FILE")
    render.add_argument("--nodes", type=Path, metavar="NODES.yaml")
    render.add_argument("--accelerator-classes", type=Path, metavar="FILE", help=classes_help)

    sub.add_parser("crd", help="print the GemmaDeployment CustomResourceDefinition")

    capacity = sub.add_parser(
        "capacity",
        help="what fits: sequences per replica at 8K to 256K context; with --runtime, a runtime's own KV cache "
        "figures for a pool (what it logs)",
    )
    capacity.add_argument("--accelerator-classes", type=Path, metavar="FILE", help=classes_help)
    capacity.add_argument("-o", "--output", choices=["table", "json", "markdown"], default="table")
    reproduce = capacity.add_argument_group(
        "a runtime's log from its inputs (the runtime's own option names work too)",
    )
    reproduce.add_argument("--runtime", choices=[runtime.value for runtime in Runtime])
    reproduce.add_argument("--runtime-version", metavar="VERSION", help="e.g. 0.19.1, 3.3.7, b11243 (default: pinned)")
    reproduce.add_argument("--family", choices=[family.value for family in Family], default=Family.GEMMA_4.value)
    reproduce.add_argument("--variant")
    reproduce.add_argument(
        "--precision",
        choices=[precision.value for precision in Precision],
        default="bf16",
        help="the weights' precision; the cache is bf16 whatever it is, so the figures do not change",
    )
    reproduce.add_argument(
        "--kv-pool-gib", type=float, metavar="GIB", help='the cache pool per GPU (vLLM: "Available KV cache memory")'
    )
    reproduce.add_argument("--max-model-len", "--max-total-tokens", "--ctx-per-slot", type=int, default=8192)
    reproduce.add_argument("--max-num-seqs", "--parallel", type=int, default=1)
    reproduce.add_argument(
        "--max-num-batched-tokens", "--max-batch-prefill-tokens", "--ubatch-size", type=int, default=2048
    )
    reproduce.add_argument("--tensor-parallel-size", "--num-shard", type=int, default=1)

    fleet_parser = sub.add_parser(
        "fleet",
        help="per accelerator class, cpu and edge: nodes, GPUs held and free, and how many more replicas of each "
        "variant fit now; per namespace: GPUs held and replicas (KUBECONFIG, else in-cluster)",
    )
    fleet_parser.add_argument("--accelerator-classes", type=Path, metavar="FILE", help=classes_help)
    fleet_parser.add_argument("-o", "--output", choices=["table", "json"], default="table")

    # No defaults here: an option not given is left out, and reconcile.run.Options, their one source, fills it
    # in (commands.run_options). Reading them from Options here would load kopf for every command.
    run = sub.add_parser(
        "run",
        help="run the operator (KUBECONFIG, else in-cluster; all namespaces unless told)",
        argument_default=argparse.SUPPRESS,
    )
    run.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    run.add_argument("--all-namespaces", action="store_true", help="watch every namespace (the default)")
    run.add_argument(
        "--leader-election-lease",
        metavar="NAME",
        help="run only while holding this coordination.k8s.io Lease, standing by otherwise, so that several replicas "
        "run one at a time (default: no election)",
    )
    run.add_argument(
        "--leader-election-namespace",
        metavar="NS",
        help="the Lease's namespace (default: $POD_NAMESPACE, else default)",
    )
    run.add_argument("--liveness", metavar="URL", help="kopf liveness endpoint ('': off)")
    run.add_argument("--metrics-port", type=int, help="Prometheus metrics port (0: off)")
    run.add_argument("--metrics-address", help="address the metrics server binds")
    run.add_argument("--accelerator-classes", type=Path, metavar="FILE", help=classes_help)
    run.add_argument("--autoscaling-interval", type=float, metavar="SECONDS", help="how often the autoscaler scrapes")
    run.add_argument(
        "--runtime-image",
        action="append",
        metavar="RUNTIME[/TARGET]=IMAGE",
        help="a runtime's default image, in place of the catalog's (for every target it has an image for, or one: "
        "gpu, cpu, edge); repeatable; a GemmaDeployment's serving.image still wins",
    )
    run.add_argument(
        "--upgrade-rollouts-per-class",
        type=int,
        metavar="N",
        help="rollouts the operator starts on its own (a template changed by an upgrade, not by the spec) at a time, "
        "per accelerator class and per CPU or edge target",
    )
    run.add_argument(
        "--upgrade-rollout-timeout",
        type=float,
        metavar="SECONDS",
        help="how long such a rollout may take to be Ready before its slot goes to the next in line",
    )
    run.add_argument("--log-format", choices=["plain", "json"])
    run.add_argument("-v", "--verbose", action="store_true")

    simulate.add_parser(sub)
    size.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "plan":
            return commands.plan_command(args.files, args.nodes, args.accelerator_classes, args.output)
        if args.command == "render":
            return commands.render_command(args.files, args.nodes, args.accelerator_classes)
        if args.command == "crd":
            return commands.crd_command()
        if args.command == "simulate-autoscaling":
            return simulate.simulate_command(args)
        if args.command == "size":
            return size.size_command(args)
        if args.command == "fleet":
            return fleet.fleet_command(args.accelerator_classes, args.output)
        if args.command == "run":
            return commands.run_command(args)
        return commands.capacity_command(args)
    except commands.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return commands.BAD_INPUT
