"""A chart upgrade from the previous release, as docs/upgrades.md tells users to do it, on the chaos plane.

The previous release's chart is installed and its own operator code serves GemmaDeployments (three llama.cpp E2B on
CPU, one vLLM 31B on an H100). Then the CRD is applied and `helm upgrade` goes to the working tree's chart, and the
working tree's operator runs with the args the upgraded Deployment renders. Checked: the CRD upgraded in place with
no object lost; where a pod template changed, the rollouts paced (never more than the chart's slots rolling in one
pool, the others waiting with OperatorUpgradePending, in the order of names); where it did not, no pod restarted;
everything Ready at the end.

Every template the previous release rendered changes under the working tree (new pod security settings, new runtime
arguments and pins), so the half "no restart where nothing changed" is checked by a second `helm upgrade`, on the
working tree's chart, that pins a mirror of llama.cpp's image (runtimeImages): the CPU GemmaDeployments' template
changes and rolls paced, the vLLM one's does not, and its pods must stay. Which template changed is judged from the
live Deployments, before and after, not from the operator's code.

No kubelet runs the chart's pod (kwok): each operator runs here as a process, with the identity and the arguments
the live chart Deployment gives it (install.chart_operator). The test needs the repository's history, which a CI
clone may lack: it is in the full chaos suite (`make chaos`), not `make test`.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from packaging.requirements import Requirement

from chaos.plane import FULL_WANTED
from gemma import GROUP, INSTANCE, PLURAL, VERSION, Gemma, manifest
from harness.config import ROOT
from harness.namespaces import create_namespace, delete_namespace, unique_name
from harness.plane import Plane
from harness.tools import helm, kubectl, wait_established
from harness.waiting import condition_status
from install import CHART, Release, chart_operator
from operator_process import CRD, OperatorProcess, operator_env

pytestmark = [pytest.mark.chaos, pytest.mark.skipif(not FULL_WANTED, reason="full chaos suite: make chaos")]

# The previous released revision: the last commit before the work of issue #18, the chart and operator users run
# today. The test upgrades from it; bump it when a release is cut.
PREVIOUS_RELEASE = "ffb0eb5"
CRD_NAME = CRD.name.removesuffix(".yaml")
CPU = ("cpu-a", "cpu-b", "cpu-c")  # llama.cpp, Gemma 4 E2B, CPU target: pool "cpu"
GPU = ("gpu-a",)  # vLLM, Gemma 4 31B on one H100: pool "h100"
POOL = dict.fromkeys(CPU, "cpu") | dict.fromkeys(GPU, "h100")
# Another registry's copy of the pinned llama.cpp release (the simulator serves it as llama.cpp, by its name).
MIRROR = "mirror.example/ggml-org/llama.cpp:server-b11243"
# docs/upgrades.md, "With Helm": the CRD first (Helm never upgrades one in crds/), then the chart, keeping the
# release's own values on top of the new chart's defaults.
CRD_UPGRADE = ("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
HELM_UPGRADE = ("--reset-then-reuse-values", "--wait", "--timeout", "2m")
# The annotation a Deployment's operator version is recorded in (docs/upgrades.md); the previous release had none.
OPERATOR_VERSION = "serving.gemma.dev/operator-version"
ROLLOUT_SECONDS = 600
# How often the test looks whether every GemmaDeployment has settled.
POLL_SECONDS = 0.5
# Each stage watches this long at least, so that a template it leaves alone has had time to roll, were it to.
QUIET_SECONDS = 20


# --- the previous release's files and dependencies -------------------------------------------------------------------


def previous_release(root: Path) -> Path:
    """The previous release's operator code, chart and CRD, from the repository's history (not a worktree)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(
            f"commit {PREVIOUS_RELEASE}, the previous release this test upgrades from, is not in this clone's history"
            " (a shallow clone?): `git fetch --unshallow origin` (or fetch that commit), then rerun",
            pytrace=False,
        )
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE, "operator", "charts", "crds", "pyproject.toml"],
        capture_output=True,
        check=True,
    )
    root.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root


def _satisfied(requirement: Requirement) -> bool:
    try:
        return requirement.specifier.contains(version(requirement.name), prereleases=True)
    except PackageNotFoundError:
        return False


def previous_python_path(release: Path) -> str:
    """PYTHONPATH for the previous release's operator on this venv's interpreter: its code first (before the working
    tree's, installed in the venv), then what its pyproject needs that the venv lacks, installed with pip once into
    .e2e/chart-upgrade/ (ffb0eb5 needs jinja2, which the working tree dropped)."""
    project = tomllib.loads((release / "pyproject.toml").read_text())["project"]
    unmet = sorted(str(r) for r in map(Requirement, project["dependencies"]) if not _satisfied(r))
    paths = [str(release / "operator")]
    if unmet:
        target = ROOT / ".e2e" / "chart-upgrade" / f"{PREVIOUS_RELEASE}-dependencies"
        installed = target / ".requirements"
        if not installed.exists() or installed.read_text() != "\n".join(unmet):
            pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade"]
            done = subprocess.run([*pip, "--target", str(target), *unmet], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(f"{PREVIOUS_RELEASE} needs {unmet}, which this venv lacks, and pip failed:\n{done.stderr}")
            installed.write_text("\n".join(unmet))
        print(f"\n{PREVIOUS_RELEASE}'s requirements this venv lacks, from {target}: {unmet}")
        paths.append(str(target))
    return ":".join(paths)


# --- what the serving pods do ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One GemmaDeployment's serving Deployment and pods at one moment."""

    template: Mapping[str, Any]  # the live Deployment's spec.template, as the API server stores it
    annotations: Mapping[str, str]  # the Deployment's own
    pods: frozenset[str]  # uids of the pods not being deleted
    replica_sets: frozenset[str]  # their controllers


def _controller(pod: Any) -> str:
    return next((ref.name for ref in pod.metadata.owner_references or [] if ref.controller), "")


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def as_dict(model: Any) -> dict[str, Any]:
    """A kubernetes client model as the API's JSON (camelCase keys)."""
    serialized: dict[str, Any] = client.ApiClient().sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return serialized


def workloads(gemma: Gemma) -> dict[str, Workload]:
    found = {}
    for name in POOL:
        deployment = as_dict(gemma.deployment(name))
        pods = [pod for pod in gemma.pods(name) if pod.metadata.deletion_timestamp is None]
        found[name] = Workload(
            template=deployment["spec"]["template"],
            annotations=deployment["metadata"].get("annotations") or {},
            pods=frozenset(pod.metadata.uid for pod in pods),
            replica_sets=frozenset(map(_controller, pods)),
        )
    return found


@dataclass
class Recorder:
    """Every change of the namespace's pods and GemmaDeployments, watched in two threads: which GemmaDeployments roll
    after each pod event (a pod of another ReplicaSet than before runs, beside an old one or not Ready yet), every
    pod uid seen running, and who waited with OperatorUpgradePending. A watch misses no rollout, however quick (under
    kwok and the simulator one takes about half a second)."""

    gemma: Gemma
    before: Mapping[str, Workload]
    rolling: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    seen_pods: dict[str, set[str]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # name: the first waiting message
    first_rolling: dict[str, float] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    _pods: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Recorder:
        namespace = self.gemma.namespace
        pods = functools.partial(self.gemma.core.list_namespaced_pod, namespace)
        objects = functools.partial(self.gemma.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
        self._threads = [
            threading.Thread(target=self._follow, args=(pods, self._pod), daemon=True),
            threading.Thread(target=self._follow, args=(objects, self._object), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _follow(self, listing: Callable[..., Any], handle: Callable[[str, Any], str]) -> None:
        """One watch after another, each from where the last one ended, so that no change is missed."""
        version: str | None = None
        try:
            while not self._stop.is_set():
                watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    for event in watcher.stream(listing, timeout_seconds=2, resource_version=version):
                        version = handle(event["type"], event["object"])
                except ApiException as error:
                    if error.status != 410:
                        raise
                    version = None  # expired: start again from a fresh list
        except BaseException as error:  # reported by check()
            self.errors.append(error)

    def _pod(self, kind: str, pod: Any) -> str:
        if kind == "DELETED":
            self._pods.pop(pod.metadata.uid, None)
        else:
            self._pods[pod.metadata.uid] = pod
        rolling = set()
        for name, before in self.before.items():
            mine = [pod for pod in self._pods.values() if (pod.metadata.labels or {}).get(INSTANCE) == name]
            live = [pod for pod in mine if pod.metadata.deletion_timestamp is None]
            # Not the pods an earlier rollout left terminating.
            self.seen_pods.setdefault(name, set()).update(pod.metadata.uid for pod in live)
            new = [pod for pod in live if _controller(pod) not in before.replica_sets]
            if new and (len(new) < len(live) or not all(map(_ready, new))):
                rolling.add(name)
                self.first_rolling.setdefault(name, time.monotonic())
        self.rolling.append((time.monotonic(), frozenset(rolling)))
        return str(pod.metadata.resource_version)

    def _object(self, _: str, obj: Any) -> str:
        conditions = (obj.get("status") or {}).get("conditions") or []
        reconciling: dict[str, Any] = next((c for c in conditions if c["type"] == "Reconciling"), {})
        if reconciling.get("reason") == "OperatorUpgradePending":
            self.pending.setdefault(obj["metadata"]["name"], reconciling["message"])
        return str(obj["metadata"]["resourceVersion"])

    def check(self) -> None:
        if self.errors:
            raise AssertionError(f"watching failed: {self.errors[0]!r}") from self.errors[0]


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """The paths where two templates differ (for the report of what changed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            found
            for key in sorted(set(before) | set(after))
            for found in differences(before.get(key), after.get(key), f"{path}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [found for i, (b, a) in enumerate(zip(before, after, strict=True)) for found in differences(b, a, path)]
    return [] if before == after else [path]


def contains(new: Any, old: Any) -> bool:
    """Whether `new` keeps every value of `old` (it may have more fields: the new CRD's defaults)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(key in new and contains(new[key], value) for key, value in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(contains, new, old))
    return bool(new == old)


# --- the steps -------------------------------------------------------------------------------------------------------


def crd_object(plane: Plane) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(kubectl(plane, "get", "crd", CRD_NAME, "-o", "yaml").stdout)
    return document


def upgrade_crd(plane: Plane) -> None:
    kubectl(plane, *CRD_UPGRADE)
    wait_established(plane, CRD_NAME)


def upgrade_crd_in_place(plane: Plane, gemma: Gemma) -> None:
    """The documented CRD step, checked: the same object, the same stored version, the working tree's schema, and
    every GemmaDeployment kept with its spec."""
    crd_before = crd_object(plane)
    objects_before = {name: gemma.get(name) for name in POOL}
    # As docs/upgrades.md says: Helm created the CRD and owns its fields, so an apply that does not force fails.
    unforced = kubectl(plane, *(arg for arg in CRD_UPGRADE if arg != "--force-conflicts"), check=False)
    assert unforced.returncode != 0, unforced
    assert "conflict" in unforced.stderr.lower(), unforced.stderr
    upgrade_crd(plane)
    crd_after = crd_object(plane)
    assert crd_after["metadata"]["uid"] == crd_before["metadata"]["uid"]
    assert crd_after["status"]["storedVersions"] == crd_before["status"]["storedVersions"] == [VERSION]
    assert crd_after["spec"]["versions"] == yaml.safe_load(CRD.read_text())["spec"]["versions"]
    listed = gemma.custom.list_namespaced_custom_object(GROUP, VERSION, gemma.namespace, PLURAL)["items"]
    assert {obj["metadata"]["name"] for obj in listed} == set(POOL)
    for name, obj in objects_before.items():
        now = gemma.get(name)
        assert now["metadata"]["uid"] == obj["metadata"]["uid"], name
        assert contains(now["spec"], obj["spec"]), (name, obj["spec"], now["spec"])


def slots_per_pool(operator: OperatorProcess) -> int:
    """The rollout slots per pool the chart gave the operator (Helm upgrades.rolloutsPerClass)."""
    flags = dict(arg.partition("=")[::2] for arg in operator.args)
    return int(flags["--upgrade-rollouts-per-class"])


def settled(gemma: Gemma, name: str, rendered: Callable[[Mapping[str, Any]], bool]) -> bool:
    """The new operator's template is rolled out and Ready: the Deployment shows what the stage brings (`rendered`),
    every replica runs it, and the GemmaDeployment is Ready for its generation and reconciled."""
    deployment = gemma.deployment(name)
    obj = gemma.get(name)
    if deployment is None or (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
        return False
    if not rendered(as_dict(deployment)):
        return False
    status = deployment.status
    wanted = deployment.spec.replicas
    complete = (
        status.observed_generation == deployment.metadata.generation
        and status.updated_replicas == wanted
        and status.ready_replicas == wanted
        and (status.replicas or 0) == wanted
    )
    return complete and condition_status(obj, "Ready") == "True" and condition_status(obj, "Reconciling") == "False"


@dataclass(frozen=True)
class Stage:
    """What one upgrade did: the workloads before and after, what the watches saw, and which templates changed."""

    before: Mapping[str, Workload]
    after: Mapping[str, Workload]
    recorder: Recorder
    seconds: float

    @property
    def changed(self) -> set[str]:
        return {name for name in POOL if self.before[name].template != self.after[name].template}


def roll(
    gemma: Gemma,
    start: Callable[[], OperatorProcess],
    rendered: Callable[[str, Mapping[str, Any]], bool],
) -> tuple[Stage, OperatorProcess]:
    """Start the new operator while watching, until every GemmaDeployment is settled; then check the pacing."""
    before = workloads(gemma)
    began = time.monotonic()
    with Recorder(gemma, before) as recorder:
        operator = start()
        deadline = time.monotonic() + ROLLOUT_SECONDS
        waiting = set(POOL)
        while waiting or time.monotonic() < began + QUIET_SECONDS:
            recorder.check()
            assert time.monotonic() < deadline, f"not settled in {ROLLOUT_SECONDS} s: {sorted(waiting)}"
            waiting = {name for name in waiting if not settled(gemma, name, functools.partial(rendered, name))}
            time.sleep(POLL_SECONDS)
    recorder.check()
    stage = Stage(before, workloads(gemma), recorder, time.monotonic() - began)
    changed = stage.changed
    print(f"\nsettled in {stage.seconds:.0f} s; templates changed: {sorted(changed)}")
    for name in POOL:
        began_rolling = (
            f"rolled from {recorder.first_rolling[name] - began:.1f} s" if name in recorder.first_rolling else ""
        )
        print(f"  {name}: {began_rolling} {recorder.pending.get(name, '')}")
        print(f"    changed: {differences(before[name].template, stage.after[name].template)}")

    slots = slots_per_pool(operator)
    for at, rolling in recorder.rolling:
        for pool in set(POOL.values()):
            together = sorted(name for name in rolling if POOL[name] == pool)
            assert len(together) <= slots, f"{together} of pool {pool} roll at once ({at - began:.1f} s in)"
    for pool in set(POOL.values()):
        line = sorted(name for name in changed if POOL[name] == pool)
        # Each rolled, in the order of names; all but the first `slots` waited for a slot, and their status said so.
        assert set(line) <= set(recorder.first_rolling), recorder.first_rolling
        assert sorted(line, key=recorder.first_rolling.__getitem__) == line, recorder.first_rolling
        for name in line[slots:]:
            assert name in recorder.pending, f"{name} rolled without waiting with OperatorUpgradePending"
            assert "position" in recorder.pending[name], recorder.pending[name]
    for name in changed:
        assert stage.after[name].pods.isdisjoint(before[name].pods), f"{name}: its template changed, its pods did not"
    for name in set(POOL) - changed:
        # No restart: the same pods, of the same ReplicaSet, and no other pod ever came.
        assert stage.after[name].pods == before[name].pods, name
        assert stage.after[name].replica_sets == before[name].replica_sets, name
        assert recorder.seen_pods[name] == set(before[name].pods), f"{name}: a pod came and went"
        assert name not in recorder.pending, f"{name} waited for a rollout it had no reason for"
    return stage, operator


# --- the test --------------------------------------------------------------------------------------------------------


@pytest.fixture
def release(chaos_plane: Plane) -> Iterator[Release]:
    """A namespace for the chart (restricted Pod Security, as manifests/namespace.yaml), and no GemmaDeployment CRD
    on the plane, so that the previous chart's `helm install` creates it, as it did for its users. The working
    tree's CRD is back at the end, for the rest of the chaos suite."""
    kubectl(chaos_plane, "delete", "crd", CRD_NAME, "--ignore-not-found", "--wait", "--timeout", "120s", timeout=150)
    namespace = create_namespace(chaos_plane.api, "chart-upgrade")
    kubectl(chaos_plane, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    installed = Release(unique_name("gemma-operator-up"), namespace)
    try:
        yield installed
    finally:
        helm(chaos_plane, "uninstall", installed.name, "-n", namespace, "--wait", check=False)
        delete_namespace(chaos_plane.api, namespace)
        upgrade_crd(chaos_plane)


def test_chart_upgrade_from_the_previous_release(
    chaos_plane: Plane, release: Release, chaos_namespace: str, tmp_path: Path
) -> None:
    plane = chaos_plane
    old = previous_release(tmp_path / PREVIOUS_RELEASE)
    old_env = operator_env(plane.env) | {"PYTHONPATH": previous_python_path(old)}
    new_env = operator_env(plane.env)
    gemma = Gemma(plane.api, chaos_namespace)
    running: list[OperatorProcess] = []

    def start(env: Mapping[str, str], workdir: str) -> OperatorProcess:
        for process in running:
            process.stop()
        process = chart_operator(plane, release, tmp_path / workdir, env)
        running.append(process)
        process.start()
        return process

    try:
        # The previous release, installed with a value of the user's own, and its operator serving.
        helm(
            plane, "install", release.name, str(old / "charts" / "gemma-operator"), "-n", release.namespace,
            "--wait", "--timeout", "2m", "--set", "logFormat=plain",
        )  # fmt: skip
        start(old_env, "previous")
        for name in CPU:
            gemma.create(manifest(name, model={"variant": "e2b"}, placement={"target": "cpu"}))
        for name in GPU:
            gemma.create(manifest(name, model={"variant": "31b"}, placement={"acceleratorClass": "h100"}))
        for name in POOL:
            gemma.wait(name, "Ready", timeout=180)
        served = workloads(gemma)
        # Rendered by the previous release's code (it recorded no operator version).
        assert not [name for name, workload in served.items() if OPERATOR_VERSION in workload.annotations]

        upgrade_crd_in_place(plane, gemma)

        # The chart, then the working tree's operator as the upgraded Deployment runs it. --reuse-values would keep
        # the previous chart's values as the whole set, without the ones the new chart adds: it fails (upgrades.md).
        reused = helm(
            plane, "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values", check=False
        )
        assert reused.returncode != 0, "--reuse-values upgraded: docs/upgrades.md says it fails from this release"
        helm(plane, "upgrade", release.name, str(CHART), "-n", release.namespace, *HELM_UPGRADE)
        first, operator = roll(
            gemma,
            lambda: start(new_env, "upgraded"),
            lambda _, deployment: OPERATOR_VERSION in _annotations(deployment),
        )
        assert "--log-format=plain" in operator.args, "the release's own value was lost in the upgrade"
        assert first.changed >= {CPU[0], GPU[0]}, "nothing to pace: the test would prove nothing"

        # A mirror of llama.cpp's image: the CPU templates change, the vLLM one must not restart.
        values = tmp_path / "mirror.yaml"
        values.write_text(yaml.safe_dump({"runtimeImages": [f"llamacpp={MIRROR}"]}))
        helm(plane, "upgrade", release.name, str(CHART), "-n", release.namespace, *HELM_UPGRADE, "-f", str(values))
        second, operator = roll(
            gemma,
            lambda: start(new_env, "mirrored"),
            lambda name, deployment: name not in CPU or _image(deployment) == MIRROR,
        )
        assert second.changed == set(CPU), second.changed
        assert f"--runtime-image=llamacpp={MIRROR}" in operator.args
        for name in POOL:
            runtime = gemma.get(name)["status"]["runtime"]
            assert runtime["operatorVersion"], name
            assert (runtime["image"] == MIRROR) == (name in CPU), runtime
        log = operator.log_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        for process in running:
            process.stop()


def _annotations(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    return deployment["metadata"].get("annotations") or {}


def _image(deployment: Mapping[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
