"""`python -m gemma_docgen [--root DIR] [--helm PATH]`: write every generated file (what `make generate` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gemma_docgen.files import generated_files


def main() -> None:
    arguments = argparse.ArgumentParser(prog="python -m gemma_docgen", description=__doc__)
    arguments.add_argument("--root", type=Path, default=Path(), help="the repository (default: here)")
    arguments.add_argument("--helm", default="helm", help="the helm binary that renders manifests/operator.yaml")
    args = arguments.parse_args()
    for path, text in generated_files(args.root, args.helm).items():
        target = args.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(path)


main()
