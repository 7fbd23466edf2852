"""The Gateway API Inference Extension on the local plane: its real InferencePool CRD, and its real endpoint picker
(EPP) built from the Go module and run as a local process, as a pod of the picker's Deployment would run it.

Both come from the Go module sigs.k8s.io/gateway-api-inference-extension at the versions the operator's catalog
pins (catalog/endpoint_picker.yaml): `go mod download` fetches the module, whose zip holds config/crd/bases/ and
cmd/epp. The picker is built once per version into .e2e/bin (about 2 minutes and 1 GB of memory on 2 cores, cold).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gemma_operator.catalog import endpoint_picker
from harness.config import DEFAULT_BIN
from harness.plane import Plane
from harness.tools import kubectl, wait_established

POOL_CRD = "inferencepools.inference.networking.k8s.io"
POOL_CRD_FILE = "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"
BUILD_TIMEOUT_SECONDS = 900


def _go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if found is None:
        raise AssertionError("go not found: the endpoint picker and the InferencePool CRD come from a Go module")
    return found


def _go_env() -> dict[str, str]:
    # The module's go.work names a conformance module its zip leaves out: build it as the main module alone.
    return {**os.environ, "GOWORK": "off", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}


def module_dir(module: str, version: str) -> Path:
    """The module's source in the Go module cache, downloaded if missing."""
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
        cwd="/",
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise AssertionError(f"go mod download {module}@{version} failed: {info.get('Error')}{result.stderr}")
    return Path(info["Dir"])


def install_pool_crd(plane: Plane) -> None:
    """The real InferencePool CRD of the release the catalog pins, applied and served."""
    picker = endpoint_picker()
    crd = module_dir(picker.pool_crd_module, picker.pool_crd_version) / POOL_CRD_FILE
    kubectl(plane, "apply", "--server-side", "-f", str(crd))
    wait_established(plane, POOL_CRD)


def build_picker() -> Path:
    """The endpoint picker's binary, built from cmd/epp of the module at the catalog's picker version."""
    picker = endpoint_picker()
    binary = DEFAULT_BIN / f"epp-{picker.picker_version}"
    if binary.is_file():
        return binary
    source = module_dir(picker.picker_module, picker.picker_version)
    DEFAULT_BIN.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".tmp{os.getpid()}")
    command = [_go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "./cmd/epp"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
        cwd=source,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise AssertionError(f"building the endpoint picker in {source} failed:\n{result.stderr[-4000:]}")
    partial.replace(binary)
    return binary


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class PickerPorts:
    grpc: int
    health: int
    metrics: int


def _with_flag(args: Sequence[str], flag: str, value: str) -> list[str]:
    """`args` with the value after `flag` replaced: the container's arguments, as this process must run them."""
    position = list(args).index(flag)
    return [*args[: position + 1], value, *args[position + 2 :]]


@contextmanager
def running_picker(
    binary: Path,
    container: Mapping[str, object],
    config: str,
    kubeconfig: Path,
    namespace: str,
    workdir: Path,
) -> Iterator[tuple[PickerPorts, Path]]:
    """The picker, run with the container's own arguments; only the ports (free ones on this machine) and the
    config file's path (its ConfigMap's content, written here) differ. Yields its ports and its log."""
    ports = PickerPorts(free_loopback_port(), free_loopback_port(), free_loopback_port())
    config_file = workdir / "epp-config.yaml"
    config_file.write_text(config)
    args = [str(arg) for arg in container["args"]]  # type: ignore[attr-defined]
    for flag, value in (
        ("--grpc-port", str(ports.grpc)),
        ("--grpc-health-port", str(ports.health)),
        ("--metrics-port", str(ports.metrics)),
        ("--config-file", str(config_file)),
    ):
        args = _with_flag(args, flag, value)
    log = workdir / "epp.log"
    env = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(kubeconfig), "NAMESPACE": namespace}
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(binary), *args], stdout=output, stderr=subprocess.STDOUT, env={**env, "POD_NAME": "epp-e2e"}
        )
    try:
        yield ports, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def prometheus_samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric family on a Prometheus text page, by their label set as written."""
    samples = {}
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        labels = head[len(name) :]
        if head.startswith(name) and (not labels or labels.startswith("{")):
            samples[labels] = float(value)
    return samples
