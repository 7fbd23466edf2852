"""The operator under test: `gemma-operator run` as a real process against the local plane."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from harness.config import ROOT
from harness.plane import Plane
from harness.tools import kubectl, wait_established
from harness.waiting import wait_for

CRD = ROOT / "crds" / "gemmadeployments.serving.gemma.dev.yaml"


def install_crd(plane: Plane) -> None:
    """The GemmaDeployment CRD, applied and established: the operator and the tests need it before anything else."""
    kubectl(plane, "apply", "--server-side", "-f", str(CRD))
    wait_established(plane, "gemmadeployments.serving.gemma.dev")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class OperatorProcess:
    """Start, kill -9 and restart the operator; its log is a file so tests can search it."""

    env: Mapping[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    metrics_port: int = field(default_factory=free_port)
    liveness_port: int = field(default_factory=free_port)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    # Every operator process a test started, so that the in-process tier can pause those still running.
    started: ClassVar[list[OperatorProcess]] = []

    def start(self) -> None:
        OperatorProcess.started.append(self)
        command = [
            sys.executable, "-m", "gemma_operator.cli", "run",
            "--metrics-address", "127.0.0.1", "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
            *self.args,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=dict(self.env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_for(self.healthy, timeout=60, message=f"the operator's liveness endpoint (log: {self.log_path})")

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"the operator exited; log: {self.log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a node failure or OOM kill would do."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())


def operator_env(plane_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(plane_env)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "operator"), env["PYTHONPATH"]] if p)
    return env


def stop_demo_operator(state_dir: Path) -> None:
    """Stop the operator `make demo` left running: two operators on one plane would fight over every object."""
    pid_file = state_dir / "operator.pid"
    if not pid_file.exists():
        return
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        sys.stderr.write(f"stopped the demo operator (pid {pid_file.read_text().strip()}) before the e2e suite\n")
    except (ProcessLookupError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)
