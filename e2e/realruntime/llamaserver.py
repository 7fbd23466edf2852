"""The real llama-server, unpacked from Debian sid by fetch-llama-server, started on a loopback address.

Its libraries need a newer C library than the machine's, so it runs through the unpacked ld-linux with the
unpacked library folders, and GGML_BACKEND_PATH names the baseline x86-64 CPU backend (one that runs on any
x86-64 machine; speed is no concern with a tiny model).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness.config import ROOT

FETCH = ROOT / "e2e" / "realruntime" / "fetch-llama-server"
DEFAULT_DEST = ROOT / ".e2e" / "llamacpp"
LIBS = Path("usr/lib/x86_64-linux-gnu")


class FetchFailed(RuntimeError):
    """fetch-llama-server could not provide the packages; the message says what to do."""


def fetch(dest: Path = DEFAULT_DEST) -> Path:
    """The unpacked root, fetched on first use and reused after (the script keeps a marker of its packages)."""
    result = subprocess.run([str(FETCH), str(dest)], capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise FetchFailed(f"{FETCH} exited {result.returncode}:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def command(root: Path, args: Sequence[str]) -> list[str]:
    """argv that runs the unpacked llama-server with its own C library."""
    libs = root / LIBS
    return [
        str(libs / "ld-linux-x86-64.so.2"),
        "--library-path",
        f"{libs}:{libs / 'llama'}",
        str(root / "usr" / "bin" / "llama-server"),
        *args,
    ]


def environment(root: Path) -> dict[str, str]:
    return {
        "GGML_BACKEND_PATH": str(root / LIBS / "ggml" / "backends0" / "libggml-cpu-x64.so"),
        "PATH": "/usr/bin:/bin",
    }


def version(root: Path) -> str:
    """llama-server --version, e.g. "version: 0.7.0 (build 11669, commit Debian)"."""
    out = subprocess.run(
        command(root, ["--version"]), env=environment(root), capture_output=True, text=True, check=True, timeout=30
    )
    return (out.stdout + out.stderr).strip().splitlines()[0]


@dataclass
class Server:
    """One running llama-server and the log it writes."""

    process: subprocess.Popen[bytes]
    log: Path
    base_url: str
    # What /health answered before its 200: llama-server listens before it loads, and answers 503 meanwhile.
    loading: list[requests.Response] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(root: Path, args: Sequence[str], host: str, port: int, log: Path) -> Server:
    """Start llama-server with args (their --host and --port replaced) and wait until /health answers 200."""
    argv = command(root, listening_args(args, host, port))
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, env=environment(root), stdout=sink, stderr=subprocess.STDOUT)
    server = Server(process, log, f"http://{host}:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited {process.returncode}:\n{server.log_text()}")
        try:
            answer = requests.get(server.base_url + "/health", timeout=2)
        except requests.ConnectionError:
            time.sleep(0.002)  # poll often: a loading window can be tens of milliseconds
            continue
        if answer.status_code == 200:
            return server
        server.loading.append(answer)
    server.stop()
    raise RuntimeError(f"llama-server not healthy within 30 s:\n{server.log_text()}")


def listening_args(args: Sequence[str], host: str, port: int) -> list[str]:
    """args with their --host and --port replaced, and -lv 4, which changes only the log: at the default
    verbosity llama-server prints neither its KV cache lines nor its system_info line (threads)."""
    return [*replace_flag(replace_flag(args, "--host", host), "--port", str(port)), "-lv", "4"]


def replace_flag(args: Sequence[str], flag: str, value: str) -> list[str]:
    """args with `flag`'s value set to value (appended when absent), e.g. -hf repo:quant -> -m file."""
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


def with_model(args: Sequence[str], gguf: Path) -> list[str]:
    """The pod's rendered args with only `-hf repo:quant` (a download from Hugging Face) replaced by `-m gguf`."""
    out = list(args)
    at = out.index("-hf")
    out[at : at + 2] = ["-m", str(gguf)]
    return out
