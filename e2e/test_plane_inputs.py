"""Bad input to the plane scripts: broken inventories, busy ports, foreign state dirs.

These run the real e2e/cluster/up and gemma-plane. They need the session plane only
so that the binary is built; none of them starts a second plane.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.plane import UP, Plane, parse_exports, run_up
from harness.tools import gemma_plane

pytestmark = pytest.mark.e2e

GOOD_GROUP = """\
  - name: cpu
    count: 1
    cpu: 8
    memory: 16Gi
"""


def up_elsewhere(plane: Plane, state: Path, inventory: Path | None = None) -> subprocess.CompletedProcess[str]:
    """e2e/cluster/up for another state dir, with the session's binary (built already, hence the short timeout)."""
    config = plane.config.elsewhere(state, inventory or plane.config.inventory)
    return run_up(replace(config, build=replace(config.build, timeout_seconds=300)))


@pytest.mark.parametrize(
    ("inventory", "field", "complaint"),
    [
        ("nodes:\n  - name: gpu\n    cpu: 8\n    memory: 16Gi\n    gpus: lots\n", "inventory.nodes[0].gpus", "integer"),
        (
            "nodes:\n  - name: gpu\n    cpu: 8\n    memory: 16Gi\n    gpu: 2\n",
            "inventory.nodes[0].gpu",
            "unknown field",
        ),
        ("nodes:\n" + GOOD_GROUP + "  - name: edge\n    memory: 16Gi\n", "inventory.nodes[1].cpu", "required"),
        (
            "nodes:\n  - name: edge\n    cpu: 8\n    memory: 16Gi\n    taints: ['edge=:NoWhere']\n",
            "inventory.nodes[0].taints[0]",
            "effect",
        ),
        ("nodes:\n  - name: x\n    cpu: 8\n    memory: 16Gi\n    arch: x86\n", "inventory.nodes[0].arch", "amd64"),
        ("nodes: [\n", "inventory", "YAML"),
    ],
)
def test_broken_inventory_is_rejected_naming_the_field(
    plane: Plane, tmp_path: Path, inventory: str, field: str, complaint: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory)
    result = gemma_plane(plane, "nodes", "--inventory", str(path), "--check", check=False)
    assert result.returncode != 0
    assert f"{field}:" in result.stderr
    assert complaint in result.stderr
    assert result.stdout == ""


def test_good_inventory_passes_the_check(plane: Plane, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("nodes:\n" + GOOD_GROUP)
    result = gemma_plane(plane, "nodes", "--inventory", str(path), "--check", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu-0"]


def test_up_with_a_broken_inventory_fails_fast_and_starts_nothing(plane: Plane, tmp_path: Path) -> None:
    broken = tmp_path / "inventory.yaml"
    broken.write_text("nodes:\n  - name: gpu\n    cpu: 8\n    memory: 16Gi\n    gpus: -1\n")
    state = tmp_path / "state"
    result = up_elsewhere(plane, state, broken)
    assert result.returncode != 0
    assert "export" not in result.stdout
    assert "inventory.nodes[0].gpus" in result.stderr
    assert not (state / "pids").exists()


def test_preferred_port_in_use_gets_another_port(plane: Plane) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = gemma_plane(plane, "ports", "--prefer", str(taken), "2", check=False)
    assert result.returncode == 0, result.stderr
    ports = [int(p) for p in result.stdout.split()]
    assert len(ports) == 2
    assert len(set(ports)) == 2
    assert taken not in ports
    assert f"127.0.0.1:{taken} is in use" in result.stderr

    # Control: the same preferred port, once free, is the one used.
    free = gemma_plane(plane, "ports", "--prefer", str(taken), "1", check=False)
    assert free.stdout.split() == [str(taken)]


def test_up_never_deletes_a_state_dir_it_did_not_create(plane: Plane, tmp_path: Path) -> None:
    foreign = tmp_path / "state"
    foreign.mkdir()
    precious = foreign / "precious.txt"
    precious.write_text("not ours to delete")
    result = up_elsewhere(plane, foreign)
    assert result.returncode != 0
    assert "export" not in result.stdout
    assert "not made by e2e/cluster/up" in result.stderr
    assert precious.read_text() == "not ours to delete"


def test_second_up_reuses_the_healthy_plane(plane: Plane) -> None:
    environ = {k: v for k, v in plane.config.environ.items() if k != "KUBECONFIG"}
    result = run_up(replace(plane.config, environ=environ))
    assert result.returncode == 0, result.stderr
    assert "reusing the healthy plane" in result.stderr
    exports = parse_exports(result.stdout, environ.get("PATH", ""))
    assert exports["KUBECONFIG"] == str(plane.kubeconfig)
    assert [line for line in result.stdout.splitlines() if line.strip()] == [
        f"export KUBECONFIG={plane.kubeconfig}",
        f"export PATH={plane.bin_dir}:$PATH",
    ], f"{UP} must print exactly the two export lines on stdout"
