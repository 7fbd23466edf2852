"""The operator image's Dockerfile, checked statically: no Docker engine runs here."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CHART_VALUES = yaml.safe_load((ROOT / "charts" / "gemma-operator" / "values.yaml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def arguments(keyword: str) -> list[str]:
    return [rest for name, rest in instructions() if name == keyword]


def test_multi_stage_on_a_pinned_python_base() -> None:
    base = next(rest for rest in arguments("ARG") if rest.startswith("PYTHON_IMAGE="))
    image = base.split("=", 1)[1]
    # A full version (3.11.N) for people, and the digest that the build really gets (a tag can be re-pushed).
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", image), image
    stages = arguments("FROM")
    assert len(stages) >= 2
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)


def test_every_copied_source_exists() -> None:
    for rest in arguments("COPY"):
        if rest.startswith("--from="):
            continue
        *sources, _destination = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    # What the image installs from must be what the package is built from.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["readme"] in " ".join(arguments("COPY"))
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["where"] == ["operator"]


def test_dockerignore_lets_the_copied_sources_through() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:4] == ["!pyproject.toml", "!README.md", "!operator/", "!requirements.lock"]


LOCK = (ROOT / "requirements.lock").read_text()


def locked() -> dict[str, str]:
    """Package name (normalised) -> the pinned version, from requirements.lock."""
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", LOCK, re.MULTILINE)
    }


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    pins = locked()
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in requirements:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()  # type: ignore[union-attr]
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
    # Every pin carries hashes: pip --require-hashes refuses anything else.
    blocks = re.findall(r"^[A-Za-z0-9].*?(?=^[A-Za-z0-9]|\Z)", LOCK, re.MULTILINE | re.DOTALL)
    assert len(blocks) == len(pins)
    assert all("--hash=sha256:" in block for block in blocks)


def test_the_image_installs_the_lock_with_hashes_then_only_the_package() -> None:
    runs = " ".join(arguments("RUN"))
    assert "requirements.lock" in " ".join(arguments("COPY"))
    assert re.search(r"pip install [^&]*--require-hashes [^&]*-r requirements\.lock", runs), runs
    # The package itself brings no dependency of its own choosing: they all came from the lock.
    assert re.search(r"pip install [^&]*--no-deps [^&]*\.(\s|$)", runs), runs


def test_entrypoint_is_the_console_script_with_run() -> None:
    (entrypoint,) = arguments("ENTRYPOINT")
    command = json.loads(entrypoint)  # exec form: signals reach the operator, no shell in between
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts
    assert scripts[command[0]] == "gemma_operator.cli:main"
    assert command[1:] == ["run"]


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = arguments("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert int(uid) == CHART_VALUES["podSecurityContext"]["runAsUser"]
    assert int(gid) == CHART_VALUES["podSecurityContext"]["runAsGroup"]
    assert f"--uid {uid}" in " ".join(arguments("RUN"))
    # USER comes after the last RUN of the final stage: nothing later runs as root.
    names = [name for name, _ in instructions()]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")


def test_exposes_the_ports_the_chart_probes() -> None:
    exposed = {int(port) for rest in arguments("EXPOSE") for port in rest.split()}
    assert exposed == {CHART_VALUES["health"]["port"], CHART_VALUES["metrics"]["port"]}
