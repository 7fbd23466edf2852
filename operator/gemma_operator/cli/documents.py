"""Reading GemmaDeployments and node inventories from YAML files for the CLI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gemma_operator.api import KIND, GemmaDeployment, InvalidSpec, parse_deployment
from gemma_operator.catalog import lookup


@dataclass(frozen=True)
class Problem:
    """A document that could not be read, located so a person can find it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        yield str(path), Problem(str(path), error.strerror or str(error))
        return
    try:
        for index, document in enumerate(yaml.safe_load_all(text)):
            yield f"{path}[{index}]", document
    except yaml.YAMLError as error:
        yield str(path), Problem(str(path), f"not valid YAML: {error}")


def read_deployments(paths: Sequence[Path]) -> Iterator[GemmaDeployment | Problem]:
    """Each GemmaDeployment of the files in order, or a Problem naming the field at fault.

    Other kinds (a Secret next to a GemmaDeployment, say) are passed over.
    """
    for path in paths:
        for where, document in _documents(path):
            if isinstance(document, Problem):
                yield document
            elif isinstance(document, dict) and document.get("kind", KIND) == KIND:
                try:
                    deployment = parse_deployment(document)
                    lookup(deployment.spec.model.family, deployment.spec.model.variant)
                except InvalidSpec as error:
                    name = (document.get("metadata") or {}).get("name", "?")
                    yield Problem(f"{where} ({name})", str(error))
                else:
                    yield deployment
            elif document is not None and not isinstance(document, dict):
                yield Problem(where, "not a Kubernetes object")
