"""fleet: what pods hold, what nodes have free, and how many more replicas of each variant fit."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_operator.api import Reason, Runtime, TaintEffect, Target, Toleration, TolerationOperator
from gemma_operator.catalog import default_accelerator_classes, lookup, variants
from gemma_operator.cli import main
from gemma_operator.cli.fleet import fleet_text
from gemma_operator.fleet import (
    ClassReport,
    FleetReport,
    PodClaim,
    Resources,
    Surveyor,
    VariantHeadroom,
    fleet_report,
    gpu_shapes,
    host_shapes,
    pod_claim,
    pod_requests,
)
from gemma_operator.fleet.shapes import default_deployment, tolerated
from gemma_operator.planning import NodeInfo, Plan, Refused, plan
from gemma_operator.planning.inventory import ARCH_LABEL, EDGE_ROLE_LABEL, GPU_PRODUCT_LABEL, GPU_RESOURCE, Taint
from gemma_operator.reconcile.metrics import FLEET_HEADROOM, Fleet
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER

GIB = 1 << 30
CLASSES = default_accelerator_classes()
GPU_TAINT = Taint(GPU_RESOURCE, "present", "NoSchedule")
EDGE_TAINT = Taint(EDGE_ROLE_LABEL, "", "NoSchedule")


def node(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    gpus: int = 0,
    cpus: int = 64,
    memory_gib: float = 256,
    taints: tuple[Taint, ...] = (),
    schedulable: bool = True,
) -> NodeInfo:
    return NodeInfo(
        name=name,
        labels={ARCH_LABEL: "amd64", **(labels or {})},
        taints=taints,
        memory_bytes=int(memory_gib * GIB),
        gpus=gpus,
        schedulable=schedulable,
        cpu_millis=cpus * 1000,
    )


def gpu_node(
    name: str,
    accelerator: str = "h100",
    *,
    gpus: int = 8,
    cpus: int = 192,
    memory_gib: float = 2048,
    taints: tuple[Taint, ...] = (GPU_TAINT,),
    schedulable: bool = True,
) -> NodeInfo:
    """A node of an accelerator class, labelled and tainted as GPU Feature Discovery and the GPU operator do."""
    labels = {GPU_PRODUCT_LABEL: CLASSES.classes[accelerator].product}
    return node(name, labels, gpus=gpus, cpus=cpus, memory_gib=memory_gib, taints=taints, schedulable=schedulable)


def edge_node(name: str) -> NodeInfo:
    return node(name, {ARCH_LABEL: "arm64", EDGE_ROLE_LABEL: ""}, cpus=8, memory_gib=16, taints=(EDGE_TAINT,))


# The local plane's inventory (e2e/cluster/inventory.yaml).
PLANE = (
    gpu_node("gpu-h100-0"),
    gpu_node("gpu-h100-1"),
    gpu_node("gpu-l4-0", "l4", gpus=4, cpus=48, memory_gib=192),
    node("cpu-0"),
    node("cpu-1"),
    edge_node("edge-0"),
    edge_node("edge-1"),
)
SHAPES = gpu_shapes(CLASSES) + host_shapes(CLASSES, PLANE)


def claim(
    node_name: str,
    gpus: int = 0,
    cpus: float = 0,
    memory_gib: float = 0,
    *,
    serving: bool = True,
    namespace: str = "ml",
) -> PodClaim:
    return PodClaim(namespace, node_name, serving, Resources(int(cpus * 1000), int(memory_gib * GIB), gpus))


def report(nodes: Sequence[NodeInfo] = PLANE, claims: Sequence[PodClaim] = ()) -> FleetReport:
    return fleet_report(CLASSES, nodes, claims, SHAPES)


def of(found: FleetReport, name: str) -> ClassReport:
    return next(c for c in found.classes if c.name == name)


def headroom(found: ClassReport, variant: str, family: str = "gemma-4") -> VariantHeadroom:
    return next(h for h in found.headroom if h.variant == variant and h.family.value == family)


# --- what pods hold ------------------------------------------------------------------------------


def containers(*resources: dict[str, Any], init: Sequence[dict[str, Any]] = (), **spec: Any) -> dict[str, Any]:
    """A pod spec whose containers (and init containers) have these resources sections."""
    return {
        "containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)],
        "initContainers": [{"name": f"i{i}", **c} for i, c in enumerate(init)],
        **spec,
    }


@pytest.mark.parametrize(
    ("spec", "gpus"),
    [
        (containers({"requests": {GPU_RESOURCE: "2"}}), 2),
        (containers({"limits": {GPU_RESOURCE: "4"}}), 4),
        (containers({"requests": {GPU_RESOURCE: "1"}, "limits": {GPU_RESOURCE: "1"}}), 1),
        (containers({"requests": {GPU_RESOURCE: 2}}, {"limits": {GPU_RESOURCE: "1"}}, {}), 3),
        (containers({"requests": {"cpu": "4", "memory": "16Gi"}}), 0),
        ({}, 0),
    ],
    ids=["request", "limit-stands-in", "both", "several-containers", "no-gpu", "no-containers"],
)
def test_gpus_requested_sum_over_the_containers(spec: dict[str, Any], gpus: int) -> None:
    assert pod_requests(spec).gpus == gpus


def test_an_init_container_that_needs_more_than_the_containers_sets_the_request() -> None:
    spec = containers(
        {"requests": {"cpu": "1", "memory": "4Gi"}},
        {"requests": {"cpu": "500m"}},
        init=[{"resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
    )
    assert pod_requests(spec) == Resources(cpu_millis=3000, memory_bytes=4 * GIB)


def test_sidecars_add_to_the_containers_and_to_the_init_containers_after_them() -> None:
    # KEP 753's example: a sidecar of 1 CPU, then an init container of 2: 3 while it runs, 1 + 1 after.
    sidecar = {"restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}}
    after = {"resources": {"requests": {"cpu": "2"}}}
    assert pod_requests(containers({"requests": {"cpu": "1"}}, init=[sidecar, after])).cpu_millis == 3000
    assert pod_requests(containers({"requests": {"cpu": "4"}}, init=[sidecar, after])).cpu_millis == 5000


def test_pod_level_requests_replace_cpu_and_memory_and_overhead_adds() -> None:
    spec = containers(
        {"requests": {"cpu": "8", "memory": "64Gi", GPU_RESOURCE: "2"}},
        resources={"requests": {"cpu": "2"}},
        overhead={"cpu": "250m", "memory": "1Gi"},
    )
    assert pod_requests(spec) == Resources(cpu_millis=2250, memory_bytes=65 * GIB, gpus=2)


def test_millicores_round_up_as_the_api_does() -> None:
    assert pod_requests(containers({"requests": {"cpu": "0.0001"}})).cpu_millis == 1


def test_a_finished_pod_claims_nothing_and_a_serving_pod_is_known_by_its_labels() -> None:
    pod = {
        "metadata": {"namespace": "ml", "labels": {MANAGED_BY_LABEL: MANAGER}},
        "spec": containers({"requests": {GPU_RESOURCE: "1"}}),
    }
    assert pod_claim(pod) == PodClaim("ml", "", True, Resources(gpus=1))
    assert pod_claim({**pod, "status": {"phase": "Succeeded"}}) is None
    other = pod_claim({"metadata": {"namespace": "batch"}, "spec": {"nodeName": "gpu-h100-0"}})
    assert other == PodClaim("batch", "gpu-h100-0", False, Resources())


def test_count_of_counts_only_what_is_asked_for() -> None:
    free = Resources(cpu_millis=10_000, memory_bytes=0, gpus=3)
    assert free.count_of(Resources(cpu_millis=4000)) == 2
    assert free.count_of(Resources(cpu_millis=1000, gpus=2)) == 1
    assert free.count_of(Resources(memory_bytes=1)) == 0
    assert free.count_of(Resources()) == 0


# --- taints ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        (Toleration(key="a", operator=TolerationOperator.EXISTS), Taint("a", "x", "NoSchedule"), True),
        (Toleration(key="a", value="x"), Taint("a", "x", "NoExecute"), True),
        (Toleration(key="a", value="y"), Taint("a", "x", "NoSchedule"), False),
        (
            Toleration(key="a", operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE),
            Taint("a", "", "NoExecute"),
            False,
        ),
        (Toleration(operator=TolerationOperator.EXISTS), Taint("anything", "at-all", "NoExecute"), True),
        (Toleration(key="b", operator=TolerationOperator.EXISTS), Taint("a", "", "NoSchedule"), False),
    ],
    ids=["exists", "equal", "other-value", "other-effect", "empty-key-exists", "other-key"],
)
def test_tolerations_match_taints_as_the_api_does(toleration: Toleration, taint: Taint, expected: bool) -> None:
    assert tolerated(taint, [toleration]) is expected


def test_a_taint_the_plan_does_not_tolerate_keeps_replicas_off_but_prefer_no_schedule_does_not() -> None:
    blocked = gpu_node("gpu-h100-0", taints=(GPU_TAINT, Taint("dedicated", "batch", "NoExecute")))
    preferred = gpu_node("gpu-h100-1", taints=(GPU_TAINT, Taint("dedicated", "batch", "PreferNoSchedule")))
    h100 = of(report([blocked, preferred]), "h100")
    assert h100.gpus_free == 16  # free, but only one node can take a replica
    assert headroom(h100, "26b-a4b").replicas == headroom(report([preferred]).classes[0], "26b-a4b").replicas > 0


# --- classes, held and free ------------------------------------------------------------------------


def test_nodes_are_classed_as_placement_selects_them() -> None:
    a10g = node("gpu-a10g-0", {GPU_PRODUCT_LABEL: "NVIDIA-A10G"}, gpus=1)
    found = report([*PLANE, a10g])
    names = [c.name for c in found.classes]
    assert names == [*CLASSES.classes, "NVIDIA-A10G", "cpu", "edge"]
    counts = {c.name: (c.nodes, c.gpus_allocatable, c.configured) for c in found.classes if c.nodes}
    assert counts == {
        "h100": (2, 16, True),
        "l4": (1, 4, True),
        "NVIDIA-A10G": (1, 1, False),
        "cpu": (2, 0, True),
        "edge": (2, 0, True),
    }
    assert of(found, "NVIDIA-A10G").headroom == []  # no plan is made for hardware no class describes


def test_free_gpus_are_the_allocatable_less_what_pods_hold() -> None:
    claims = [
        claim("gpu-h100-0", gpus=2, cpus=8, memory_gib=70),
        claim("gpu-h100-1", gpus=3, serving=False, namespace="batch"),
        claim("", gpus=2),  # waiting for a node: holds nothing yet
        claim("gone-node", gpus=4),  # bound to a node the inventory no longer has
    ]
    h100 = of(report(claims=claims), "h100")
    assert (h100.gpus_allocatable, h100.gpus_held_by_gemma_deployments, h100.gpus_held_by_others) == (16, 2, 3)
    assert h100.gpus_free == 11
    assert h100.cpus_free == 2 * 192 - 8
    assert h100.memory_free_bytes == (2 * 2048 - 70) * GIB


def test_a_cordoned_node_counts_but_offers_nothing() -> None:
    nodes = [gpu_node("gpu-h100-0"), gpu_node("gpu-h100-1", schedulable=False)]
    h100 = of(report(nodes), "h100")
    assert (h100.nodes, h100.schedulable_nodes, h100.gpus_allocatable, h100.gpus_free) == (2, 1, 16, 8)
    one_gpu = headroom(h100, "26b-a4b")
    assert one_gpu.gpus_per_replica == 1
    assert one_gpu.replicas == 8


def test_per_replica_figures_are_the_planners_plan() -> None:
    h100 = of(report(), "h100")
    for found in h100.headroom:
        placement = {"target": "gpu", "acceleratorClass": "h100"}
        result = plan(default_deployment(lookup(found.family, found.variant), placement), CLASSES)
        assert isinstance(result, Plan)
        assert found.gpus_per_replica == result.placement.gpus_per_replica
        assert found.cpus_per_replica == result.placement.cpus_per_replica
        assert found.runtime is result.runtime.name
    assert {(h.family, h.variant) for h in h100.headroom} == {(f, name) for f, name in variants()}


def test_replicas_never_span_nodes() -> None:
    # One GPU free on each H100: room for two one-GPU replicas, none of 31b, which the planner puts on two.
    claims = [claim("gpu-h100-0", gpus=7), claim("gpu-h100-1", gpus=7)]
    h100 = of(report(claims=claims), "h100")
    assert h100.gpus_free == 2
    two_gpus = headroom(h100, "31b")
    assert two_gpus.gpus_per_replica == 2
    assert two_gpus.replicas == 0
    assert "no h100 node has 2 nvidia.com/gpu" in two_gpus.message
    assert headroom(h100, "26b-a4b").replicas == 2


def test_host_cpu_and_memory_bound_gpu_replicas_too() -> None:
    cpus = headroom(of(report(), "h100"), "26b-a4b").cpus_per_replica
    starved = gpu_node("gpu-h100-0", cpus=int(cpus * 3 - 1))
    assert headroom(of(report([starved]), "h100"), "26b-a4b").replicas == 2


def test_a_full_class_has_no_headroom_and_says_why() -> None:
    l4 = of(report(claims=[claim("gpu-l4-0", gpus=4)]), "l4")
    assert l4.gpus_free == 0
    assert all(h.replicas == 0 and h.message for h in l4.headroom)


def test_a_variant_the_planner_refuses_has_no_headroom_and_the_planners_reason() -> None:
    refused = headroom(of(report(), "l4"), "31b")
    expected = plan(
        default_deployment(lookup(refused.family, "31b"), {"target": "gpu", "acceleratorClass": "l4"}), CLASSES
    )
    assert isinstance(expected, Refused)
    assert (refused.fits, refused.replicas, refused.refusal) == (False, 0, Reason.DOES_NOT_FIT.value)
    assert refused.message == expected.message


def test_memory_bounds_cpu_replicas() -> None:
    per_replica = headroom(of(report(), "cpu"), "e2b").memory_per_replica_bytes
    small = node("cpu-0", memory_gib=(2 * per_replica + GIB) / GIB)
    e2b = headroom(of(report([small, *PLANE[5:]]), "cpu"), "e2b")
    assert e2b.runtime is Runtime.LLAMACPP
    assert e2b.gpus_per_replica == 0
    assert e2b.replicas == 2  # CPUs for 16, memory for 2


def test_edge_replicas_go_only_where_the_plan_tolerates_the_edge_taint() -> None:
    e2b = headroom(of(report(), "edge"), "e2b")
    assert e2b.fits
    assert e2b.replicas > 0
    untolerated = replace(edge_node("edge-0"), taints=(EDGE_TAINT, Taint("site", "x", "NoSchedule")))
    assert headroom(of(report([untolerated]), "edge"), "e2b").replicas == 0


def test_a_survey_replans_cpu_and_edge_when_the_nodes_change() -> None:
    surveyor = Surveyor(CLASSES)
    assert not headroom(of(surveyor.survey(PLANE, []), "edge"), "e4b").fits  # 16 GiB edge nodes
    larger = [replace(n, memory_bytes=64 * GIB) if n.is_edge else n for n in PLANE]
    assert headroom(of(surveyor.survey(larger, []), "edge"), "e4b").fits


def test_namespaces_report_their_replicas_and_gpus() -> None:
    claims = [
        claim("gpu-h100-0", gpus=2),
        claim("gpu-h100-1", gpus=2),
        claim("", gpus=2),
        claim("gpu-l4-0", gpus=1, serving=False),
        claim("cpu-0", cpus=4, namespace="web"),
        claim("cpu-1", cpus=1, serving=False, namespace="kube-system"),  # holds no GPU: not listed
    ]
    found = {n.namespace: n for n in report(claims=claims).namespaces}
    assert sorted(found) == ["ml", "web"]
    ml = found["ml"]
    assert (ml.replicas, ml.pending_replicas, ml.gpus_held_by_gemma_deployments, ml.gpus_held_by_others) == (2, 1, 4, 1)
    assert (found["web"].replicas, found["web"].gpus_held_by_gemma_deployments) == (1, 0)


# --- properties ------------------------------------------------------------------------------------

GPU_NODES = [n.name for n in PLANE if n.gpus]
HOST_NODES = [n.name for n in PLANE if not n.gpus]
claims_strategy = st.lists(
    st.one_of(
        st.builds(
            claim,
            st.sampled_from(GPU_NODES),
            gpus=st.integers(0, 4),
            cpus=st.integers(0, 64),
            memory_gib=st.integers(0, 300),
            serving=st.booleans(),
        ),
        st.builds(
            claim,
            st.sampled_from(HOST_NODES),
            cpus=st.integers(0, 64),
            memory_gib=st.integers(0, 300),
            serving=st.booleans(),
        ),
    ),
    max_size=12,
)


def _room(found: FleetReport) -> dict[tuple[str, str, str], int]:
    return {(c.name, h.family.value, h.variant): h.replicas for c in found.classes for h in c.headroom}


@settings(max_examples=60, deadline=None)
@given(claims=claims_strategy, extra=claims_strategy)
def test_more_claims_never_make_more_room(claims: list[PodClaim], extra: list[PodClaim]) -> None:
    before, after = report(claims=claims), report(claims=claims + extra)
    assert all(after_room <= _room(before)[key] for key, after_room in _room(after).items())
    assert all(a.gpus_free <= b.gpus_free for a, b in zip(after.classes, before.classes, strict=True))


@settings(max_examples=60, deadline=None)
@given(claims=claims_strategy)
def test_headroom_never_promises_more_than_is_free(claims: list[PodClaim]) -> None:
    for found in report(claims=claims).classes:
        for room in found.headroom:
            assert room.replicas * room.gpus_per_replica <= found.gpus_free
            assert room.replicas * room.cpus_per_replica <= found.cpus_free
            assert room.replicas * room.memory_per_replica_bytes <= found.memory_free_bytes
            assert room.fits or room.replicas == 0


@settings(max_examples=60, deadline=None)
@given(claims=claims_strategy)
def test_held_and_free_add_up_to_the_allocatable(claims: list[PodClaim]) -> None:
    held_on: Counter[str] = Counter()
    for found_claim in claims:
        held_on[found_claim.node] += found_claim.requests.gpus
    within = all(held_on[n.name] <= n.gpus for n in PLANE)
    for found in report(claims=claims).classes:
        accounted = found.gpus_free + found.gpus_held_by_gemma_deployments + found.gpus_held_by_others
        assert accounted >= found.gpus_allocatable  # more held than a node has leaves none free, not a debt
        if within:
            assert accounted == found.gpus_allocatable


# --- the command's output and the operator's gauges ----------------------------------------------


def test_json_is_camel_case_for_dashboards() -> None:
    document = json.loads(fleet_text(report(claims=[claim("gpu-h100-0", gpus=2)]), "json"))
    h100 = next(c for c in document["classes"] if c["name"] == "h100")
    assert h100["gpusHeldByGemmaDeployments"] == 2
    assert h100["gpusFree"] == 14
    assert {"family", "variant", "precision", "gpusPerReplica", "replicas", "fits"} <= set(h100["headroom"][0])
    assert document["namespaces"] == [
        {"namespace": "ml", "replicas": 1, "pendingReplicas": 0, "gpusHeldByGemmaDeployments": 2, "gpusHeldByOthers": 0}
    ]


def test_the_table_lists_the_classes_with_nodes() -> None:
    text = fleet_text(report(claims=[claim("gpu-l4-0", gpus=4)]), "table")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["CLASS", "TARGET", "NODES"]
    l4 = next(line for line in lines if line.startswith("l4 ") and "gpu" in line)
    assert l4.split()[:7] == ["l4", "gpu", "1", "4", "4", "0", "0"]
    assert "No nodes of: h200" in text
    assert any(line.startswith("l4 ") and "gemma-4 31b" in line and "DoesNotFit" in line for line in lines)


def test_an_unreachable_cluster_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["fleet"]) == 2
    assert "cannot read the cluster" in capsys.readouterr().err


def test_the_gauges_carry_the_report() -> None:
    gauges = Fleet()
    assert list(gauges.collect()) == []  # nothing before the first survey
    gauges.record(report(claims=[claim("gpu-l4-0", gpus=4)]))
    families = {family.name: family for family in gauges.collect()}
    free = {s.labels["class"]: s.value for s in families["gemma_operator_fleet_free_gpus"].samples}
    assert (free["h100"], free["l4"], free["cpu"]) == (16, 0, 0)
    room = {
        (s.labels["class"], s.labels["family"], s.labels["variant"], s.labels["precision"]): s.value
        for s in families[FLEET_HEADROOM].samples
    }
    assert room[("l4", "gemma-4", "e2b", "bf16")] == 0
    assert room[("h100", "gemma-4", "26b-a4b", "bf16")] == 16
    assert room[("cpu", "gemma-4", "e2b", "bf16")] > 0
    assert Target.GPU.value in {s.labels["target"] for s in families["gemma_operator_fleet_nodes"].samples}
