"""Whether a live object is converged on a manifest, judged by the API server rather than by the operator's code.

The API server is asked what a server-side apply of the manifest would make of the object
(``dryRun=All``, as the operator's field manager, forcing conflicts, as the operator applies).
When that result equals the live object, applying would change nothing: the object is converged.
Defaults, list merging and field ownership are all the API server's own, so a comparison bug in the
operator cannot make both sides agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import NotFoundError

FIELD_MANAGER = "gemma-operator"
# What the operator owns in a child: its whole spec, its labels and its owner reference.
JUDGED: tuple[tuple[str, ...], ...] = (("spec",), ("metadata", "labels"), ("metadata", "ownerReferences"))
SHOWN = 5  # differences named in a verdict's message


@dataclass(frozen=True)
class Verdict:
    """One object's judgement: converged when there are no differences."""

    object: str
    differences: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        if not self.differences:
            return f"{self.object}: converged"
        more = len(self.differences) - SHOWN
        return f"{self.object}: " + "; ".join(self.differences[:SHOWN]) + (f" (+{more} more)" if more > 0 else "")


class Judge:
    """Judges objects on one API server; the resource of each kind comes from the server's discovery."""

    def __init__(self, api: client.ApiClient, field_manager: str = FIELD_MANAGER) -> None:
        self.dynamic: Any = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
        self.field_manager = field_manager

    def verdict(self, manifest: Mapping[str, Any]) -> Verdict:
        metadata = manifest["metadata"]
        name, namespace = metadata["name"], metadata.get("namespace")
        described = f"{manifest['kind']} {namespace}/{name}" if namespace else f"{manifest['kind']} {name}"
        resource = self.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        try:
            live = self.dynamic.get(resource, name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return Verdict(described, ("missing",))
        applied = self.dynamic.server_side_apply(
            resource,
            body=dict(manifest),
            name=name,
            namespace=namespace,
            field_manager=self.field_manager,
            force_conflicts=True,
            dry_run="All",
        ).to_dict()
        differences = [
            difference
            for path in JUDGED
            for difference in _differences(".".join(path), _at(applied, path), _at(live, path))
        ]
        return Verdict(described, tuple(differences))


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _differences(path: str, applied: Any, live: Any) -> Iterator[str]:
    """Each leaf where the applied object and the live one disagree, as `path: live X, applied Y`."""
    if isinstance(applied, Mapping) and isinstance(live, Mapping):
        for key in sorted(set(applied) | set(live)):
            yield from _differences(f"{path}.{key}", applied.get(key), live.get(key))
    elif isinstance(applied, list) and isinstance(live, list) and len(applied) == len(live):
        for index, (one, other) in enumerate(zip(applied, live, strict=True)):
            yield from _differences(f"{path}[{index}]", one, other)
    elif applied != live:
        yield f"{path}: live {live!r}, applied {applied!r}"
