"""CLI: python -m servingsim --kubeconfig K --control 127.0.0.1:PORT --state-dir DIR."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .app import run
from .loopback import NotLoopbackError, parse_host_port


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m servingsim",
        description="Simulated TGI/vLLM/llama.cpp servers for pods with 127.x IPs.",
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the (loopback) API server")
    parser.add_argument(
        "--control",
        default="127.0.0.1:0",
        help="HOST:PORT of the control API, on loopback; port 0 picks a free one (default %(default)s)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="directory to write servingsim.url into (the control API's URL)",
    )
    parser.add_argument(
        "--llama-server",
        type=Path,
        default=None,
        help="root that e2e/realruntime/fetch-llama-server unpacked: llama.cpp pods then run the real llama-server",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        host, port = parse_host_port(args.control)
    except ValueError as exc:
        print(f"servingsim: --control: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args.kubeconfig, host, port, args.state_dir, args.llama_server))
    except NotLoopbackError as exc:
        print(f"servingsim: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"servingsim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
