"""How to run a plane: one frozen value, built from the environment in exactly one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "e2e" / "cluster"
# What e2e/cluster/up falls back to when the variables are unset (e2e/cluster/lib.sh, up).
DEFAULT_STATE = ROOT / ".e2e" / "state"
DEFAULT_BIN = ROOT / ".e2e" / "bin"
DEFAULT_INVENTORY = CLUSTER / "inventory.yaml"


@dataclass(frozen=True)
class Build:
    """Where `up` builds gemma-plane (and links kubectl, installs helm), and how long a cold build may take."""

    bin_dir: Path = DEFAULT_BIN
    timeout_seconds: float = 3600.0  # a cold build downloads ~1 GB of modules and compiles for minutes


@dataclass(frozen=True)
class PlaneConfig:
    """One plane: its state dir, its nodes, its build, and whether the session stops it at the end."""

    state_dir: Path = DEFAULT_STATE
    inventory: Path = DEFAULT_INVENTORY
    build: Build = Build()
    api_port: int | None = None  # preferred apiserver port; `up` picks another when it is taken
    down_at_end: bool = False  # left running by default: the next session reuses it in ~0.3 s
    # llama.cpp pods run the real llama-server (e2e/servingsim/realllama.py); False: the simulator serves them.
    real_llama_server: bool = True
    # The environment the plane's scripts and tools inherit (PATH, Go caches ...).
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PlaneConfig:
        """The config the GEMMA_E2E_* variables describe (e2e/cluster/README.md), on top of the defaults."""
        env = dict(os.environ if environ is None else environ)
        port = env.get("GEMMA_E2E_API_PORT")
        return cls(
            state_dir=Path(env.get("GEMMA_E2E_STATE") or DEFAULT_STATE),
            inventory=Path(env.get("GEMMA_E2E_INVENTORY") or DEFAULT_INVENTORY),
            build=Build(bin_dir=Path(env.get("GEMMA_E2E_BIN") or DEFAULT_BIN)),
            api_port=int(port) if port else None,
            down_at_end=env.get("GEMMA_E2E_DOWN") == "1",
            real_llama_server=env.get("GEMMA_E2E_LLAMA_SERVER", "real") == "real",
            environ=MappingProxyType(env),
        )

    def elsewhere(self, state_dir: Path, inventory: Path, *, real_llama_server: bool = True) -> PlaneConfig:
        """The same settings for another plane: its own state dir (so its own ports and pod IPs) and nodes."""
        return replace(
            self,
            state_dir=state_dir,
            inventory=inventory,
            api_port=None,
            real_llama_server=self.real_llama_server and real_llama_server,
        )

    def script_environment(self) -> dict[str, str]:
        """What e2e/cluster/up and down read: the inherited environment with this config's variables."""
        env = {
            **self.environ,
            "GEMMA_E2E_STATE": str(self.state_dir),
            "GEMMA_E2E_INVENTORY": str(self.inventory),
            "GEMMA_E2E_BIN": str(self.build.bin_dir),
            "GEMMA_E2E_LLAMA_SERVER": "real" if self.real_llama_server else "simulated",
        }
        env.pop("GEMMA_E2E_API_PORT", None)
        if self.api_port is not None:
            env["GEMMA_E2E_API_PORT"] = str(self.api_port)
        return env
