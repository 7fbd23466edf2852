"""The plane's lifecycle: start it with e2e/cluster/up (reusing a healthy one), connect to it, stop it."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from harness.config import CLUSTER, ROOT, PlaneConfig
from harness.http import require_loopback_url
from harness.waiting import wait_for

UP = CLUSTER / "up"
DOWN = CLUSTER / "down"
_EXPORT = re.compile(r"^export (KUBECONFIG|PATH)=(.*)$")

Log = Callable[[str], None]


class PlaneError(RuntimeError):
    """e2e/cluster/up failed or printed something unexpected."""


def _discard(_line: str) -> None:
    pass


@dataclass(frozen=True)
class Connection:
    """What a started plane exported, and a client of its API server."""

    kubeconfig: Path
    bin_dir: Path
    env: dict[str, str]
    servingsim_url: str
    api: client.ApiClient


class Plane:
    """One local control plane, as its config describes it; ``start()`` before using the rest."""

    def __init__(self, config: PlaneConfig, log: Log = _discard) -> None:
        self.config = config
        self.log = log
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise PlaneError(f"the plane in {self.config.state_dir} is not started")
        return self._connection

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def kubeconfig(self) -> Path:
        return self.connection.kubeconfig

    @property
    def bin_dir(self) -> Path:
        """Where kubectl (the server's version), helm and gemma-plane are."""
        return self.connection.bin_dir

    @property
    def env(self) -> dict[str, str]:
        """The environment for the plane's tools and the operator: KUBECONFIG and PATH point at the plane."""
        return self.connection.env

    @property
    def api(self) -> client.ApiClient:
        return self.connection.api

    @property
    def servingsim_url(self) -> str:
        return self.connection.servingsim_url

    def start(self) -> None:
        """Bring the plane up (``up`` reuses a healthy one in about 0.3 s) and connect to it."""
        result = run_up(self.config, self.log)
        if result.returncode != 0:
            tail = "".join(result.stderr.splitlines(keepends=True)[-30:])
            raise PlaneError(f"e2e/cluster/up failed with exit code {result.returncode}:\n{tail}")
        base_env = self.config.script_environment()
        exports = parse_exports(result.stdout, base_env.get("PATH", os.defpath))
        kubeconfig = Path(exports["KUBECONFIG"])
        if not kubeconfig.is_file():
            raise PlaneError(f"e2e/cluster/up exported KUBECONFIG={kubeconfig}, which does not exist")
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        require_loopback_url(str(api.configuration.host))
        self._connection = Connection(
            kubeconfig=kubeconfig,
            bin_dir=Path(exports["PATH"].split(os.pathsep, 1)[0]),
            env={**base_env, "KUBECONFIG": str(kubeconfig), "PATH": exports["PATH"]},
            servingsim_url=read_servingsim_url(kubeconfig.parent),
            api=api,
        )

    def close(self) -> None:
        """Drop the connection; the plane keeps running."""
        if self._connection is not None:
            self._connection.api.close()  # type: ignore[no-untyped-call]
            self._connection = None

    def stop(self) -> None:
        """Close, then e2e/cluster/down: every process stopped and the state dir removed."""
        self.close()
        result = subprocess.run(
            [str(DOWN)],
            cwd=ROOT,
            env=self.config.script_environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        self.log(result.stderr)


@contextmanager
def running(config: PlaneConfig, log: Log = _discard) -> Iterator[Plane]:
    """A started plane for the length of a block; stopped at its end only when the config says down_at_end."""
    plane = Plane(config, log)
    plane.start()
    try:
        yield plane
    finally:
        if config.down_at_end:
            plane.stop()
        else:
            plane.close()


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


def read_servingsim_url(state_dir: Path, timeout: float = 30.0) -> str:
    path = state_dir / "servingsim.url"
    text = wait_for(
        lambda: path.read_text(encoding="utf-8").strip() if path.exists() else None,
        timeout=timeout,
        message=f"{path} (written when the serving simulator is up)",
    )
    return require_loopback_url(text)


def run_up(config: PlaneConfig, log: Log = _discard) -> subprocess.CompletedProcess[str]:
    """Run e2e/cluster/up for ``config``; hand each stderr line to ``log`` as it arrives.

    A cold build takes minutes, so stderr is streamed rather than collected. Past the
    build timeout the process is killed and PlaneError raised.
    """
    timeout = config.build.timeout_seconds
    proc = subprocess.Popen(
        [str(UP)],
        cwd=ROOT,
        env=config.script_environment(),
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
