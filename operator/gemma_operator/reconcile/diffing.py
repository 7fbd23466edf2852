"""Comparing what the operator wants with what the cluster holds, so that nothing is written twice."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

Path = tuple[str, ...]


def drifted(desired: Any, live: Any, atomic: Collection[Path] = (), path: Path = ()) -> bool:
    """Whether `live` lacks or contradicts anything in `desired`.

    Fields the API server adds (defaults, status, metadata) are not drift; lists must
    match element by element, so a removed or added entry of ours is. An empty value we
    render (``value: ""`` of an Exists toleration) is one the API server omits: not drift either.
    The maps at the `atomic` paths are replaced whole by an apply (a Service's selector), so a key
    someone added there is drift too.
    """
    if live is None and desired in ("", [], {}):
        return False
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping) or (path in atomic and live.keys() != desired.keys()):
            return True
        return any(drifted(value, live.get(key), atomic, (*path, key)) for key, value in desired.items())
    if isinstance(desired, list):
        return (
            not isinstance(live, list)
            or len(desired) != len(live)
            or any(drifted(want, have, atomic, path) for want, have in zip(desired, live, strict=True))
        )
    return bool(desired != live)


def merge_patch(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `current` into `wanted`; empty when they are equal."""
    patch: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif value != old:
            patch[key] = value
    return patch
