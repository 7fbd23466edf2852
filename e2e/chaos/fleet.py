"""Many GemmaDeployments at once: create them, wait for them, and audit what the operator made for them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gemma import GROUP, PLURAL, VERSION, Gemma
from harness.waiting import condition_status, wait_for

MANAGED = "app.kubernetes.io/managed-by=gemma-operator"


def small(name: str, variant: str = "e2b", replicas: int = 1, **spec: Any) -> dict[str, Any]:
    """A GemmaDeployment that places on the chaos plane's CPU nodes; no smoke check, so Ready is the rollout."""
    serving = {"verify": False} | spec.pop("serving", {})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GemmaDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"variant": variant}, "replicas": replicas, "serving": serving, **spec},
    }


@dataclass
class Audit:
    """What is wrong with the children of a namespace's GemmaDeployments; empty when all is well."""

    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return "; ".join(self.problems[:10]) + (
            f" (+{len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        )


class Fleet:
    """The GemmaDeployments of one namespace, read in bulk (lists, not one GET per object)."""

    def __init__(self, gemma: Gemma) -> None:
        self.gemma = gemma

    def create(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        for body in bodies:
            self.gemma.create(body)

    def objects(self) -> dict[str, dict[str, Any]]:
        listed = self.gemma.custom.list_namespaced_custom_object(GROUP, VERSION, self.gemma.namespace, PLURAL)
        return {item["metadata"]["name"]: item for item in listed["items"]}

    def wait_ready(self, names: list[str], timeout: float = 300, nudge: Callable[[], object] | None = None) -> None:
        """Until every one is Ready at its generation; `nudge` is called before each look."""

        def all_ready() -> bool:
            if nudge is not None:
                nudge()
            objects = self.objects()
            waiting = [name for name in names if name not in objects or not ready_now(objects[name])]
            if waiting:
                # Raised, so that a timeout reports the last ones seen waiting, and why.
                said = "; ".join(readiness(name, objects.get(name)) for name in waiting[:5])
                raise AssertionError(f"{len(waiting)} not Ready: {said}")
            return True

        wait_for(all_ready, timeout=timeout, interval=1.0, message=f"{len(names)} GemmaDeployments Ready")

    def audit(self, names: Iterable[str]) -> Audit:
        """Exactly one Deployment and one Service per GemmaDeployment, owned by it; no other managed child."""
        audit = Audit()
        objects = self.objects()
        uids = {name: obj["metadata"]["uid"] for name, obj in objects.items()}
        namespace = self.gemma.namespace
        listed = {
            "Deployment": self.gemma.apps.list_namespaced_deployment(namespace, label_selector=MANAGED).items,
            "Service": self.gemma.core.list_namespaced_service(namespace, label_selector=MANAGED).items,
        }
        for kind, items in listed.items():
            owners: Counter[str] = Counter()
            for item in items:
                refs = [ref for ref in item.metadata.owner_references or [] if ref.kind == "GemmaDeployment"]
                if len(refs) != 1 or refs[0].uid != uids.get(refs[0].name):
                    audit.problems.append(f"orphaned {kind} {item.metadata.name} (owners {[r.name for r in refs]})")
                    continue
                owners[refs[0].name] += 1
            for name in names:
                if owners[name] != 1:
                    audit.problems.append(f"{owners[name]} {kind}s for {name}")
        pods = self.gemma.core.list_namespaced_pod(namespace, label_selector=MANAGED).items
        running: Counter[str] = Counter(
            pod.metadata.labels.get("app.kubernetes.io/instance", "")
            for pod in pods
            if not pod.metadata.deletion_timestamp
        )
        for name in names:
            wanted = int(objects[name]["spec"].get("replicas", 1)) if name in objects else 0
            if running[name] != wanted:
                audit.problems.append(f"{running[name]} pods for {name}, {wanted} wanted")
        return audit


def readiness(name: str, obj: Mapping[str, Any] | None) -> str:
    """One GemmaDeployment's generations and Ready condition, in a few words."""
    if obj is None:
        return f"{name} missing"
    status = obj.get("status") or {}
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return (
        f"{name} generation {obj['metadata']['generation']} observed {status.get('observedGeneration')} "
        f"Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message')}"
    )


def ready_now(obj: Mapping[str, Any]) -> bool:
    """Ready, and for the current generation of the spec."""
    status = obj.get("status") or {}
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"] and condition_status(obj, "Ready") == "True"
    )
