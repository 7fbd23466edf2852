"""User docs that must follow the code: the generated API reference, and every condition reason explained."""

from __future__ import annotations

import re
from pathlib import Path

from gemma_operator.api import GemmaDeploymentSpec, Reason

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_api_reference_covers_every_spec_field() -> None:
    text = (DOCS / "api.md").read_text()

    for name, field in GemmaDeploymentSpec.model_fields.items():
        assert f"| `{field.alias or name}` |" in text, name


def test_every_reason_the_operator_writes_is_explained() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    missing = sorted(reason.value for reason in Reason if f"`{reason.value}`" not in text)
    assert not missing, f"docs/troubleshooting.md does not explain {missing}"


def test_docs_link_to_files_that_exist() -> None:
    for page in ("install.md", "placement.md", "troubleshooting.md"):
        text = (DOCS / page).read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (DOCS / target).exists(), f"{page} links to {target}, which does not exist"
