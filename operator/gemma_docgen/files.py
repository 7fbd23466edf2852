"""Every generated file of the repository, by path, computed in memory."""

from __future__ import annotations

from pathlib import Path

from gemma_docgen.api_page import api_document
from gemma_docgen.autoscaling_page import autoscaling_document, suite_results
from gemma_docgen.autoscaling_plots import plots
from gemma_docgen.autoscaling_suite import RESULTS
from gemma_docgen.capacity_page import capacity_document
from gemma_docgen.dashboard import DASHBOARD_PATH, dashboard_json
from gemma_docgen.fleet_page import fleet_document
from gemma_docgen.operator_manifest import operator_manifest
from gemma_docgen.procurement_page import PLOT, plot, procurement_document, procurement_results, slices
from gemma_docgen.procurement_suite import RESULTS as PROCUREMENT_RESULTS
from gemma_operator.cli.commands import crd_text

CRD_NAME = "gemmadeployments.serving.gemma.dev.yaml"
# The CRD, and the copies the chart and the kustomize base ship.
CRD_PATHS = (f"crds/{CRD_NAME}", f"charts/gemma-operator/crds/{CRD_NAME}", f"manifests/crd/{CRD_NAME}")
BENCHMARKS = "docs/benchmarks"


def generated_files(root: Path, helm: str) -> dict[str, str]:
    """Each generated file's path under `root` and its content; `helm` renders manifests/operator.yaml."""
    crd = crd_text()
    results = suite_results((root / RESULTS).read_text(encoding="utf-8"))
    procurement = procurement_results((root / PROCUREMENT_RESULTS).read_text(encoding="utf-8"))
    return {
        **dict.fromkeys(CRD_PATHS, crd),
        "docs/capacity.md": capacity_document(),
        "docs/api.md": api_document(),
        "docs/fleet.md": fleet_document(root),
        "docs/procurement.md": procurement_document(procurement),
        f"{BENCHMARKS}/{PLOT}": plot(slices(procurement)),
        f"{BENCHMARKS}/autoscaling.md": autoscaling_document(results),
        **{f"{BENCHMARKS}/{name}": svg for name, svg in plots(results).items()},
        DASHBOARD_PATH: dashboard_json(),
        "manifests/operator.yaml": operator_manifest(root, helm),
    }
