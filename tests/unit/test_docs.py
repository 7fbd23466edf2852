"""User docs that must follow the code: the generated API reference, and every condition reason explained."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gemma_operator.api import GemmaDeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RECONCILE = ROOT / "operator" / "gemma_operator" / "reconcile"
# CamelCase literals in those files that are not reasons: statuses, kinds, HTTP, pod phases.
NOT_REASONS = {"True", "False", "Unknown", "Accept", "Background", "BearerToken", "PodScheduled"}
NOT_REASONS |= {"Deployment", "Service", "Secret", "PodDisruptionBudget", "ServiceMonitor", "PersistentVolumeClaim"}
NOT_REASONS |= {"Succeeded", "Failed"}


def test_api_reference_covers_every_spec_field() -> None:
    text = (DOCS / "api.md").read_text()

    for name, field in GemmaDeploymentSpec.model_fields.items():
        assert f"| `{field.alias or name}` |" in text, name


def reasons() -> set[str]:
    found = set()
    for source in sorted(RECONCILE.glob("*.py")):  # where the operator writes condition and event reasons
        tree = ast.parse(source.read_text())
        literals = (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
        found |= {text for text in literals if re.fullmatch(r"(?:[A-Z][a-z]+)+", text) and text not in NOT_REASONS}
    return found


def test_every_reason_the_operator_writes_is_explained() -> None:
    found = reasons()
    assert {"Ready", "Stalled", "DoesNotFit", "NoNodeFits", "SecretNotFound", "NoAnswer"} <= found  # the scan works
    text = (DOCS / "troubleshooting.md").read_text()
    missing = sorted(reason for reason in found if f"`{reason}`" not in text)
    assert not missing, f"docs/troubleshooting.md does not explain {missing}"


def test_docs_link_to_files_that_exist() -> None:
    for page in ("install.md", "placement.md", "troubleshooting.md"):
        text = (DOCS / page).read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (DOCS / target).exists(), f"{page} links to {target}, which does not exist"
