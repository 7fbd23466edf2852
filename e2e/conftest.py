"""Fixtures for the e2e suites: one plane per session, a namespace per test.

The helpers live in e2e/plane.py; this file only wires them into pytest.
The plane is left running after the session (fast iteration) unless
GEMMA_E2E_DOWN=1, which runs e2e/cluster/down at the end.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.harness import chaos_operator_process, start_chaos_plane, stop_chaos_plane
from inprocess import Harness
from operator_process import CRD, OperatorProcess, operator_env, stop_demo_operator
from plane import (
    ROOT,
    Plane,
    ServingSim,
    create_namespace,
    delete_namespace,
    kubectl,
    start_plane,
    stop_plane,
    wait_for,
)

UP_LOG = ROOT / ".e2e" / "up.log"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the local control plane (e2e/cluster/up); slow on a cold build")


@pytest.fixture(scope="session")
def plane(pytestconfig: pytest.Config) -> Iterator[Plane]:
    """The running control plane (started by e2e/cluster/up, reused if healthy)."""
    UP_LOG.parent.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with UP_LOG.open("a", encoding="utf-8") as log_file:

        def log(line: str) -> None:
            log_file.write(line)
            log_file.flush()
            if capture is not None:
                with capture.global_and_fixture_disabled():
                    sys.stderr.write(line)
                    sys.stderr.flush()
            else:
                sys.stderr.write(line)

        running = start_plane(log=log)
    try:
        yield running
    finally:
        running.api.close()  # type: ignore[no-untyped-call]
        if os.environ.get("GEMMA_E2E_DOWN") == "1":
            result = stop_plane(running.env)
            sys.stderr.write(result.stderr)


@pytest.fixture(scope="session")
def api(plane: Plane) -> client.ApiClient:
    """A kubernetes ApiClient configured from the plane's kubeconfig."""
    return plane.api


@pytest.fixture(scope="session")
def kubeconfig(plane: Plane) -> Path:
    return plane.kubeconfig


@pytest.fixture(scope="session")
def servingsim(plane: Plane) -> ServingSim:
    """Client of the serving simulator's control API (set per-pod load, read counts)."""
    return ServingSim(plane.servingsim_url)


@pytest.fixture
def namespace(plane: Plane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (its default ServiceAccount exists); deleted after the test."""
    name = create_namespace(plane.api, f"t-{request.node.name}"[:40])
    try:
        yield name
    finally:
        delete_namespace(plane.api, name)


@pytest.fixture
def run_kubectl(plane: Plane) -> Callable[..., Any]:
    """kubectl(*args, input=None, check=True) against the plane."""

    def run(*args: str, **kwargs: Any) -> Any:
        return kubectl(plane, *args, **kwargs)

    return run


@pytest.fixture(scope="session")
def operator(plane: Plane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator, running as its own process against the plane, with the CRD installed."""
    stop_demo_operator(plane.state_dir)
    kubectl(plane, "apply", "--server-side", "-f", str(CRD))
    kubectl(plane, "wait", "--for", "condition=established", "crd/gemmadeployments.serving.gemma.dev")
    log_path = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    # A short autoscaling interval keeps the autoscaling suite quick; the windows are set per test.
    process = OperatorProcess(operator_env(plane.env), log_path, args=("--autoscaling-interval", "2"))
    process.start()
    yield process
    process.stop()


# --- the in-process tier (e2e/test_inprocess.py and others): the Controller called directly ---


@pytest.fixture(scope="module")
def crd(plane: Plane) -> None:
    kubectl(plane, "apply", "--server-side", "-f", str(CRD))
    kubectl(plane, "wait", "--for", "condition=established", "crd/gemmadeployments.serving.gemma.dev")


@pytest.fixture
def quiet_namespace(plane: Plane, crd: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace no operator process acts in while the test runs (and until it is gone)."""
    running = [process for process in OperatorProcess.started if process.alive()]
    for process in running:
        process.pause()
    name = create_namespace(plane.api, f"i-{request.node.name}"[:40])
    try:
        yield name
    finally:
        delete_namespace(plane.api, name)
        core = client.CoreV1Api(plane.api)
        wait_for(lambda: _gone(core, name), timeout=120, message=f"namespace {name} deleted")
        for process in running:
            process.resume()


def _gone(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except ApiException as error:
        return bool(error.status == 404)
    return False


@pytest.fixture
def harness(plane: Plane, quiet_namespace: str) -> Harness:
    return Harness(plane, quiet_namespace)


# --- the chaos suite (e2e/test_chaos.py): a plane of its own, since it kills the API server and etcd ---


@pytest.fixture(scope="session")
def chaos_plane() -> Iterator[Plane]:
    """A second plane in .e2e/chaos/state, with room for 100-CR rollouts; never the shared one."""
    running = start_chaos_plane()
    try:
        yield running
    finally:
        running.api.close()  # type: ignore[no-untyped-call]
        if os.environ.get("GEMMA_E2E_DOWN") == "1":
            sys.stderr.write(stop_chaos_plane(running))


@pytest.fixture
def chaos_namespace(chaos_plane: Plane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(chaos_plane.api, f"c-{request.node.name}"[:40])
    try:
        yield name
    finally:
        delete_namespace(chaos_plane.api, name)


@pytest.fixture
def chaos_operator(chaos_plane: Plane, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator on the chaos plane, one per test (tests kill it)."""
    process = chaos_operator_process(chaos_plane, tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()
