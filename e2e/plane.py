"""Helpers for tests against the local control plane (e2e/cluster) and servingsim.

Importable by any e2e suite; e2e/conftest.py only wires these into fixtures.

- ``start_plane()`` runs ``e2e/cluster/up`` and returns a ``Plane``.
- ``wait_for()`` / ``wait_for_condition()`` poll with a deadline and a clear message.
- ``kubectl()`` runs the plane's own kubectl.
- ``ServingSim`` talks to the serving simulator's control API.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parent.parent
UP = ROOT / "e2e" / "cluster" / "up"
DOWN = ROOT / "e2e" / "cluster" / "down"
E2E_LABEL = "gemma.dev/e2e"

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A wait_for deadline passed; the message says what was awaited and what was seen."""


class PlaneError(RuntimeError):
    """e2e/cluster/up failed or printed something unexpected."""


@dataclass
class Plane:
    """A running plane: where its kubeconfig, tools, state and simulator are."""

    kubeconfig: Path
    bin_dir: Path
    state_dir: Path
    servingsim_url: str
    api: client.ApiClient
    env: dict[str, str] = field(repr=False)

    @property
    def path(self) -> str:
        """PATH with the folder holding kubectl (the server's version) and helm first."""
        return self.env["PATH"]


# ------------------------------------------------------------------- waiting ---


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


# ------------------------------------------------------------------ the plane ---


_EXPORT = re.compile(r"^export (KUBECONFIG|PATH)=(.*)$")


def parse_exports(stdout: str, base_path: str) -> dict[str, str]:
    """The two ``export`` lines that ``up`` prints, with ``$PATH`` expanded."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        match = _EXPORT.match(line.strip())
        if match:
            value = match.group(2).strip().strip("'\"")
            found[match.group(1)] = value.replace("${PATH}", base_path).replace("$PATH", base_path)
    missing = {"KUBECONFIG", "PATH"} - set(found)
    if missing:
        raise PlaneError(f"e2e/cluster/up printed no export line for {sorted(missing)}; stdout was:\n{stdout}")
    return found


def _require_loopback_url(url: str) -> str:
    host = urlparse(url).hostname or ""
    if host != "localhost" and not host.startswith("127."):
        raise PlaneError(f"refusing {url!r}: e2e traffic stays inside 127.0.0.0/8")
    return url


def read_servingsim_url(state_dir: Path, timeout: float = 30.0) -> str:
    path = state_dir / "servingsim.url"
    text = wait_for(
        lambda: path.read_text(encoding="utf-8").strip() if path.exists() else None,
        timeout=timeout,
        message=f"{path} (written when the serving simulator is up)",
    )
    return _require_loopback_url(text)


def run_up(
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
    timeout: float = 3600.0,
) -> subprocess.CompletedProcess[str]:
    """Run e2e/cluster/up; hand each stderr line to ``log`` as it arrives.

    A cold build takes minutes, so stderr is streamed rather than collected. Past
    ``timeout`` the process is killed and PlaneError raised.
    """
    proc = subprocess.Popen(
        [str(UP)],
        cwd=ROOT,
        env=dict(env if env is not None else os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err_lines: list[str] = []
    out_chunks: list[str] = []

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if log is not None:
                log(line)

    def pump_stdout() -> None:
        assert proc.stdout is not None
        out_chunks.append(proc.stdout.read())

    readers = [threading.Thread(target=pump_stderr, daemon=True), threading.Thread(target=pump_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise PlaneError(
            f"e2e/cluster/up did not finish within {timeout:g}s; last output:\n{''.join(err_lines[-20:])}"
        ) from None
    for reader in readers:
        reader.join(10)
    return subprocess.CompletedProcess(proc.args, rc, "".join(out_chunks), "".join(err_lines))


def start_plane(log: Callable[[str], None] | None = None, env: Mapping[str, str] | None = None) -> Plane:
    """Bring the plane up (or reuse a healthy one) and connect to it."""
    base_env = dict(env if env is not None else os.environ)
    result = run_up(base_env, log)
    if result.returncode != 0:
        tail = "".join(result.stderr.splitlines(keepends=True)[-30:])
        raise PlaneError(f"e2e/cluster/up failed with exit code {result.returncode}:\n{tail}")
    exports = parse_exports(result.stdout, base_env.get("PATH", os.defpath))
    kubeconfig = Path(exports["KUBECONFIG"])
    if not kubeconfig.is_file():
        raise PlaneError(f"e2e/cluster/up exported KUBECONFIG={kubeconfig}, which does not exist")
    bin_dir = Path(exports["PATH"].split(os.pathsep, 1)[0])
    plane_env = {**base_env, "KUBECONFIG": str(kubeconfig), "PATH": exports["PATH"]}
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    _require_loopback_url(str(api.configuration.host))
    state_dir = kubeconfig.parent
    return Plane(
        kubeconfig=kubeconfig,
        bin_dir=bin_dir,
        state_dir=state_dir,
        servingsim_url=read_servingsim_url(state_dir),
        api=api,
        env=plane_env,
    )


def stop_plane(env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DOWN)],
        cwd=ROOT,
        env=dict(env if env is not None else os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def run_tool(
    plane: Plane,
    binary: str,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run one of the plane's tools (kubectl, helm, gemma-plane) from the repository root with the plane's
    environment; raise with its stderr when ``check`` and it fails."""
    result = subprocess.run(
        [str(plane.bin_dir / binary), *args],
        env=plane.env,
        input=input,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{binary} {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    return result


def kubectl(
    plane: Plane,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run the plane's kubectl (the server's version)."""
    return run_tool(plane, "kubectl", *args, input=input, check=check, timeout=timeout)


# ----------------------------------------------------------------- namespaces ---


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


# --------------------------------------------------------------- small helpers ---


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


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET a loopback URL; (status, body) for any HTTP status."""
    _require_loopback_url(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8")


def _http_json(method: str, url: str, body: object | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    _require_loopback_url(url)
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


class ServingSim:
    """Client of the serving simulator's control API."""

    def __init__(self, url: str) -> None:
        self.url = _require_loopback_url(url.rstrip("/"))

    def healthz(self) -> dict[str, Any]:
        status, doc = _http_json("GET", f"{self.url}/healthz")
        assert status == 200, doc
        return dict(doc)

    def pods(self) -> list[dict[str, Any]]:
        status, doc = _http_json("GET", f"{self.url}/pods")
        assert status == 200, doc
        return list(doc)

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The simulated pod (load, request counts, listening ports), or None if unknown."""
        status, doc = _http_json("GET", f"{self.url}/pods/{namespace}/{name}")
        if status == 404:
            return None
        assert status == 200, doc
        return dict(doc)

    def set_load(self, namespace: str, name: str, **load: Any) -> dict[str, Any]:
        """PUT waiting/running/latencySeconds/healthy/loading/kvCacheUsage (partial)."""
        status, doc = _http_json("PUT", f"{self.url}/pods/{namespace}/{name}", load)
        if status != 200:
            raise AssertionError(f"servingsim refused load {load} for {namespace}/{name}: {status} {doc}")
        return dict(doc)

    def wait_for_pod(self, namespace: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the simulator serves the pod on all its ports."""

        def ready() -> dict[str, Any] | None:
            pod = self.pod(namespace, name)
            if pod and pod["listening"] and sorted(pod["listening"]) == sorted(pod["ports"]):
                return pod
            return None

        return wait_for(ready, timeout=timeout, message=f"servingsim to serve pod {namespace}/{name}")


def base_url(pod: Mapping[str, Any], port: int | None = None) -> str:
    """http://podIP:port of a simulated pod (from ServingSim.pod)."""
    chosen = port if port is not None else int(pod["ports"][0])
    return _require_loopback_url(f"http://{pod['ip']}:{chosen}")


__all__: Sequence[str] = [
    "Plane",
    "PlaneError",
    "ServingSim",
    "WaitTimeout",
    "base_url",
    "condition_status",
    "create_namespace",
    "delete_namespace",
    "events_for",
    "http_get",
    "kubectl",
    "parse_exports",
    "start_plane",
    "stop_plane",
    "unique_name",
    "wait_for",
    "wait_for_condition",
    "wait_for_event",
]
