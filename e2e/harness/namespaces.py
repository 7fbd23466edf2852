"""Throwaway namespaces for tests, and the Events recorded in them."""

from __future__ import annotations

import re
import secrets
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.waiting import wait_for

E2E_LABEL = "gemma.dev/e2e"


def unique_name(prefix: str, max_len: int = 63) -> str:
    """A DNS-1123 label: sanitized ``prefix`` plus a random suffix."""
    clean = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-") or "t"
    suffix = secrets.token_hex(3)
    return f"{clean[: max_len - len(suffix) - 1].rstrip('-')}-{suffix}"


def create_namespace(api: client.ApiClient, prefix: str, timeout: float = 60.0) -> str:
    """Create a fresh namespace and wait for its ``default`` ServiceAccount."""
    core = client.CoreV1Api(api)
    name = unique_name(prefix)
    body: Any = {"metadata": {"name": name, "labels": {E2E_LABEL: "true"}}}
    core.create_namespace(body)
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=timeout,
        message=f"ServiceAccount {name}/default (created by kube-controller-manager)",
    )
    return name


def delete_namespace(api: client.ApiClient, name: str) -> None:
    """Start deleting a namespace (background propagation); do not wait."""
    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def events_for(api: client.ApiClient, namespace: str, name: str, kind: str = "Pod") -> list[Any]:
    """core/v1 Events about one object."""
    selector = f"involvedObject.name={name},involvedObject.kind={kind}"
    return list(client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector).items)


def wait_for_event(
    api: client.ApiClient,
    namespace: str,
    name: str,
    reason: str,
    timeout: float = 60.0,
    kind: str = "Pod",
) -> Any:
    """The first Event with ``reason`` about the object, once it exists."""

    def find() -> Any:
        matching = [e for e in events_for(api, namespace, name, kind) if e.reason == reason]
        return matching[0] if matching else None

    return wait_for(find, timeout=timeout, message=f"a {reason} event for {kind} {namespace}/{name}")
