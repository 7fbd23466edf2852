"""GitOps: the Argo CD health check in Argo CD's own Lua VM (gopher-lua), the argocd-cm snippet, Flux examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gemma_operator.api import API_VERSION, GROUP, KIND, Reason
from gemma_operator.planning import Refused
from gemma_operator.reconcile.conditions import Observed, PodState, compute_status

from .argocd import HEALTH_LUA, argocd_health, argocd_health_of

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "manifests" / "gitops"
NOW = "2026-01-01T00:00:00Z"


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def gemma(generation: int = 2, status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "chat", "namespace": "ml", "generation": generation, **metadata},
        "spec": {"model": {"variant": "31b"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


READY = [condition("Ready", "True", "Ready", "1/1 replicas available"), condition("Reconciling", "False", "Ready")]
READY.append(condition("Stalled", "False", "Planned"))

# Input object -> (Argo CD status, text the message must contain). kstatus's order: deletion,
# observedGeneration, Reconciling, Stalled, Ready.
TABLE: dict[str, tuple[dict[str, Any], str, str]] = {
    "ready": (gemma(status={"observedGeneration": 2, "conditions": READY}), "Healthy", "1/1 replicas available"),
    "no status yet": (gemma(), "Progressing", "Waiting for the operator"),
    "empty status": (gemma(status={}), "Progressing", "Waiting for the operator"),
    "spec changed, not observed": (
        gemma(generation=3, status={"observedGeneration": 2, "conditions": READY}),
        "Progressing",
        "observe generation 3",
    ),
    "rolling out": (
        gemma(
            status={
                "observedGeneration": 2,
                "conditions": [
                    condition("Ready", "False", "RollingOut", "rolling out: 0/1 replicas available"),
                    condition("Reconciling", "True", "RollingOut", "rolling out: 0/1 replicas available"),
                    condition("Stalled", "False", "Planned"),
                ],
            }
        ),
        "Progressing",
        "RollingOut: rolling out: 0/1 replicas available",
    ),
    "stalled": (
        gemma(
            status={
                "observedGeneration": 2,
                "conditions": [
                    condition("Ready", "False", "DoesNotFit", "needs 140.2 GiB"),
                    condition("Reconciling", "False", "DoesNotFit"),
                    condition("Stalled", "True", "DoesNotFit", "needs 140.2 GiB"),
                ],
            }
        ),
        "Degraded",
        "DoesNotFit: needs 140.2 GiB",
    ),
    "ready false without reconciling": (
        gemma(status={"observedGeneration": 2, "conditions": [condition("Ready", "False", "NoAnswer", "503")]}),
        "Progressing",
        "NoAnswer: 503",
    ),
    "ready unknown": (
        gemma(status={"observedGeneration": 2, "conditions": [condition("Ready", "Unknown")]}),
        "Progressing",
        "Not ready",
    ),
    "observed, no conditions (kstatus: Current)": (
        gemma(status={"observedGeneration": 2, "conditions": []}),
        "Healthy",
        "Ready",
    ),
    "being deleted": (
        gemma(status={"observedGeneration": 2, "conditions": READY}, deletionTimestamp="2026-01-01T00:00:00Z"),
        "Progressing",
        "deleted",
    ),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_health_table(case: str) -> None:
    obj, expected, message = TABLE[case]
    status, text = argocd_health(obj)
    assert status == expected
    assert message in text


def test_the_vm_opens_only_what_argo_cd_opens_for_a_health_script(tmp_path: Path) -> None:
    # Argo CD opens package, base and table, and puts its safe os.time/os.date into `table` (util/lua/lua.go,
    # oslib_safe.go): a health.lua that reached for string, math or a global os would fail in Argo CD.
    probes = {
        "string": "return {status = string.format('%s', 'Healthy')}",
        "math": "return {status = 'Healthy', message = tostring(math.floor(1.5))}",
        "os": "return {status = 'Healthy', message = tostring(os.time())}",
        "io": "return {status = 'Healthy', message = tostring(io.write)}",
    }
    scripts = []
    for name, body in probes.items():
        script = tmp_path / f"{name}.lua"
        script.write_text(body)
        scripts.append(script)
    for script in scripts:
        [answer] = argocd_health_of([{}], script)
        assert "error" in answer, script.read_text()
    works = tmp_path / "safe.lua"
    works.write_text("local os = require('os')\nreturn {status = 'Healthy', message = tostring(table.time() > 0)}")
    assert argocd_health_of([{}], works) == [{"status": "Healthy", "message": "true"}]


def test_an_invalid_status_reads_as_unknown_as_in_argo_cd(tmp_path: Path) -> None:
    script = tmp_path / "bad.lua"
    script.write_text("return {status = 'Fine', message = 'ok'}")
    assert argocd_health_of([{}], script) == [{"status": "Unknown", "message": "Lua returned an invalid health status"}]


def test_numbers_arrive_as_lua_numbers_as_argo_cd_decodes_them() -> None:
    # observedGeneration 2 must equal generation 2: both are LNumber in Argo CD's decodeValue.
    assert argocd_health(gemma(generation=2, status={"observedGeneration": 2, "conditions": READY}))[0] == "Healthy"


def rolled_out(replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (
            Observed(generation=2, desired_replicas=1, deployment=rolled_out(), pods=[PodState("p", "n", True)]),
            "Healthy",
        ),
        (Observed(generation=2, desired_replicas=1, deployment=None), "Progressing"),
        (
            Observed(generation=2, desired_replicas=1, refusal=Refused.because(Reason.DOES_NOT_FIT, "too big")),
            "Degraded",
        ),
        (Observed(generation=2, desired_replicas=0, deployment=rolled_out(0)), "Healthy"),
    ],
)
def test_health_of_statuses_the_operator_writes(observed: Observed, expected: str) -> None:
    status = compute_status(observed, {}, NOW)
    assert argocd_health(gemma(generation=2, status=status))[0] == expected


def test_argocd_cm_embeds_the_script() -> None:
    config = yaml.safe_load((GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    assert config["kind"] == "ConfigMap"
    assert config["metadata"]["name"] == "argocd-cm"
    assert config["data"][f"resource.customizations.health.{GROUP}_{KIND}"] == HEALTH_LUA.read_text()


def test_argocd_applications_install_the_chart_and_tolerate_the_crd_arriving_later() -> None:
    operator, models = yaml.safe_load_all((GITOPS / "argocd" / "application.yaml").read_text())
    assert operator["spec"]["source"]["path"] == "charts/gemma-operator"
    assert (ROOT / operator["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert "ServerSideApply=true" in operator["spec"]["syncPolicy"]["syncOptions"]
    assert "SkipDryRunOnMissingResource=true" in models["spec"]["syncPolicy"]["syncOptions"]


def test_flux_waits_for_the_operator_then_health_checks_gemma_deployments() -> None:
    flux = GITOPS / "flux"
    operator = yaml.safe_load((flux / "kustomization-operator.yaml").read_text())
    assert operator["spec"]["path"] == "./manifests"
    assert (ROOT / "manifests" / "kustomization.yaml").is_file()
    assert operator["spec"]["wait"] is True
    models = yaml.safe_load((flux / "kustomization-models.yaml").read_text())
    assert models["spec"]["dependsOn"] == [{"name": operator["metadata"]["name"]}]
    checks = models["spec"]["healthChecks"]
    assert checks
    assert all(check["apiVersion"] == API_VERSION and check["kind"] == KIND for check in checks)
    source = yaml.safe_load((flux / "gitrepository.yaml").read_text())
    assert operator["spec"]["sourceRef"] == {"kind": source["kind"], "name": source["metadata"]["name"]}
