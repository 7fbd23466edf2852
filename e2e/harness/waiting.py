"""Polling with a deadline: every wait names what it waited for and what it saw last."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A wait_for deadline passed; the message says what was awaited and what was seen."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.25,
    message: str = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions from the predicate count as "not yet" (the last one is reported).
    On timeout raise WaitTimeout naming ``message``, the time waited, and the last
    value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            last, last_exc = value, None
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            seen = f"last error: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {message}; {seen}")
        time.sleep(interval)


def condition_status(obj: Mapping[str, Any], cond_type: str) -> str | None:
    """status.conditions[type=cond_type].status of an object in API JSON form."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return str(cond.get("status"))
    return None


def wait_for_condition(
    api: client.ApiClient,
    *,
    group: str,
    version: str,
    plural: str,
    name: str,
    cond_type: str,
    status: str = "True",
    namespace: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Wait until a custom resource has status.conditions[type].status == status."""
    custom = client.CustomObjectsApi(api)

    def get() -> dict[str, Any]:
        if namespace is None:
            obj: Any = custom.get_cluster_custom_object(group, version, plural, name)
        else:
            obj = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        return dict(obj)

    def reached() -> dict[str, Any] | None:
        obj = get()
        return obj if condition_status(obj, cond_type) == status else None

    where = f"{namespace}/{name}" if namespace else name
    return wait_for(
        reached,
        timeout=timeout,
        message=f"{plural}.{group} {where} condition {cond_type}={status}",
    )
