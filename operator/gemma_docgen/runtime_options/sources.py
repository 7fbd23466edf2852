"""Getting each runtime's parser source at a version: package archives through pip, git checkouts from a path."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gemma_operator.catalog.versions.options import TableSource


class SourceMissing(Exception):
    """A source the generator cannot get by itself; the message says what to do."""


@dataclass(frozen=True)
class SourceFile:
    """One file of a runtime's source, by its path in the runtime's repository (or wheel)."""

    path: str
    text: str

    @property
    def blob(self) -> str:
        """The file's git blob id: what `git rev-parse TAG:PATH` prints in a checkout of the runtime."""
        data = self.text.encode("utf-8")
        return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Origin:
    """How a source was obtained, as the table's source header records it."""

    origin: str
    archive: str | None = None
    archive_sha256: str | None = None
    commit: str | None = None

    def header(self, files: dict[str, str]) -> TableSource:
        """The source header of a table read from `files` (path: git blob id) of this source."""
        return TableSource(
            origin=self.origin,
            archive=self.archive,
            archive_sha256=self.archive_sha256,
            commit=self.commit,
            files=files,
        )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(requirement: str, into: Path, *options: str) -> Path:
    """The one archive `pip download --no-deps` fetches for `requirement` into `into` (reused when there)."""
    into.mkdir(parents=True, exist_ok=True)
    archives = sorted(into.glob("*.whl")) + sorted(into.glob("*.tar.gz"))
    if not archives:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
        result = subprocess.run([*command, *options, "-d", str(into), requirement], check=False)
        if result.returncode != 0:
            raise SourceMissing(f"pip download {requirement} failed (exit {result.returncode}); see pip's output above")
        archives = sorted(into.glob("*.whl")) + sorted(into.glob("*.tar.gz"))
    if len(archives) != 1:
        raise SourceMissing(f"{into} should hold exactly one archive of {requirement}, not {len(archives)}")
    return archives[0]


def read_wheel(wheel: Path, paths: list[str]) -> dict[str, str]:
    """Every .py file of a wheel under `paths` (directories or files), by its path in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.endswith(".py") and any(name == path or name.startswith(f"{path}/") for path in paths)
        }


def read_sdist(sdist: Path, inner: str, paths: list[str]) -> dict[str, str]:
    """Files of an sdist (a .tar.gz) under its top directory's `inner` folder, by their path below `inner`."""
    texts: dict[str, str] = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            top, _, rest = member.name.partition("/")
            if top and rest.startswith(f"{inner}/") and rest.removeprefix(f"{inner}/") in paths:
                stream = archive.extractfile(member)
                if stream is not None:
                    texts[rest.removeprefix(f"{inner}/")] = stream.read().decode("utf-8")
    return texts


def _git(git_dir: Path, *args: str) -> str:
    bare = (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir()
    where = ["--git-dir", str(git_dir)] if bare else ["-C", str(git_dir)]
    result = subprocess.run(["git", *where, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SourceMissing(f"git {' '.join(args)} in {git_dir} failed: {result.stderr.strip()}")
    return result.stdout


def git_source(variable: str, repository: str, tag: str, paths: list[str]) -> tuple[Origin, dict[str, str]]:
    """`paths` at `tag` of the git checkout (bare or not) that the environment variable `variable` names."""
    value = os.environ.get(variable)
    if not value:
        raise SourceMissing(
            f"{variable} is not set: set it to a git clone (a bare mirror will do) of {repository} that has "
            f"tag {tag}, e.g. {variable}=/path/to/{repository.rpartition('/')[2]} make refresh-runtime-facts "
            "(docs/runtimes.md, 'Checking the arguments')"
        )
    git_dir = Path(value)
    if not git_dir.exists():
        raise SourceMissing(f"{variable}={value}: no such directory")
    commit = _git(git_dir, "rev-parse", f"{tag}^{{commit}}").strip()
    texts = {path: _git(git_dir, "show", f"{commit}:{path}") for path in paths}
    return Origin(origin=f"git tag {tag} of {repository}", commit=commit), texts
