"""Fixtures for the e2e suites: one plane per session, a namespace per test.

The harness (e2e/harness/) does the work; this file only wires it into pytest. The plane's
settings come from PlaneConfig.from_environment(): it is left running after the session (fast
iteration) unless GEMMA_E2E_DOWN=1, which runs e2e/cluster/down at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.plane import chaos_config
from harness.config import ROOT, PlaneConfig
from harness.namespaces import create_namespace, delete_namespace
from harness.plane import Log, Plane, running
from harness.simulator import ServingSim
from harness.waiting import wait_for
from inprocess import Harness
from operator_process import OperatorProcess, install_crd, operator_env, stop_demo_operator
from realruntime import llamaserver

UP_LOG = ROOT / ".e2e" / "up.log"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the local control plane (e2e/cluster/up); slow on a cold build")


@pytest.fixture(scope="session")
def plane_config() -> PlaneConfig:
    return PlaneConfig.from_environment()


@pytest.fixture(scope="session")
def plane_log(pytestconfig: pytest.Config) -> Iterator[Log]:
    """Where `up` and `down` report: .e2e/up.log, and the terminal even while pytest captures output."""
    UP_LOG.parent.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with UP_LOG.open("a", encoding="utf-8") as log_file:

        def log(text: str) -> None:
            log_file.write(text)
            log_file.flush()
            if capture is None:
                sys.stderr.write(text)
                return
            with capture.global_and_fixture_disabled():
                sys.stderr.write(text)
                sys.stderr.flush()

        yield log


@pytest.fixture(scope="session")
def plane(plane_config: PlaneConfig, plane_log: Log) -> Iterator[Plane]:
    """The running control plane (started by e2e/cluster/up, reused if healthy)."""
    with running(plane_config, plane_log) as started:
        yield started


@pytest.fixture(scope="session")
def api(plane: Plane) -> client.ApiClient:
    """A kubernetes ApiClient configured from the plane's kubeconfig."""
    return plane.api


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
def simulated_llamacpp(namespace: str, servingsim: ServingSim) -> Iterator[str]:
    """The test's namespace, its llama.cpp pods served by the simulator: for tests that set a pod's load or make it
    misbehave through the simulator's control API (a real llama-server's load is the requests it gets)."""
    servingsim.serve_llamacpp(namespace, "simulated")
    try:
        yield namespace
    finally:
        servingsim.serve_llamacpp(namespace, "real")


@pytest.fixture(scope="session")
def real_llamacpp(plane: Plane, servingsim: ServingSim) -> str:
    """The build of the real llama-server that serves the plane's llama.cpp pods; fails when there is none."""
    build = servingsim.llama_server()
    if build is None:
        fetch_log = plane.state_dir / "llama-server-fetch.log"
        words = fetch_log.read_text() if fetch_log.exists() else "(no fetch log: GEMMA_E2E_LLAMA_SERVER=simulated?)"
        pytest.fail(
            "the plane's llama.cpp pods are simulated, not run by the real llama-server. e2e/cluster/up fetches it"
            f" with e2e/realruntime/fetch-llama-server, which said:\n{words}\nFix that, then run e2e/cluster/down"
            " and rerun (or unset GEMMA_E2E_LLAMA_SERVER)."
        )
    print(f"\nllama.cpp pods run the real llama-server: {build}")
    return build


@pytest.fixture(scope="session")
def operator(plane: Plane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator, running as its own process against the plane, with the CRD installed."""
    stop_demo_operator(plane.state_dir)
    install_crd(plane)
    log_path = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    # A short autoscaling interval keeps the autoscaling suite quick; the windows are set per test.
    process = OperatorProcess(operator_env(plane.env), log_path, args=("--autoscaling-interval", "2"))
    process.start()
    yield process
    process.stop()


# --- the in-process tier (e2e/test_inprocess.py and others): the Controller called directly ---


@pytest.fixture(scope="module")
def crd(plane: Plane) -> None:
    install_crd(plane)


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
def chaos_plane(plane_config: PlaneConfig, plane_log: Log) -> Iterator[Plane]:
    """A second plane in .e2e/chaos/state, with room for 100-CR rollouts; never the shared one."""
    with running(chaos_config(plane_config), plane_log) as started:
        install_crd(started)
        yield started


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
    process = OperatorProcess(operator_env(chaos_plane.env), tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()


# --- the real llama-server (e2e/test_real_llamacpp*.py): Debian's build, fetched into .e2e/llamacpp ---


@pytest.fixture(scope="session")
def llama_root() -> Path:
    try:
        root = llamaserver.fetch()
    except llamaserver.FetchFailed as error:
        pytest.fail(f"the real llama-server is needed and could not be fetched: {error}")
    print(f"\nllama.cpp used: {llamaserver.version(root)} ({(root / '.packages').read_text().splitlines()[-1]})")
    return root
