"""The hostile and careless input suite (#14) on the local plane.

Every case asserts the answer a user sees (an admission error from the real API server naming the field, or
Stalled with its reason and message), that no object the user made was changed by the operator, and, at the
end of the module, that the operator survived it all alive, answering its liveness endpoint, in bounded memory.
The in-process tier (the Controller called directly) answers what an operator process adds nothing to; the
operator process answers hostile pods, its watches and indexes, and its memory.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gemma import Gemma, manifest
from gemma_operator.api import Reason
from gemma_operator.reconcile.kube import FIELD_MANAGER
from gemma_operator.reconcile.state import ObjectState
from gemma_operator.rendering import MANAGED_BY_LABEL, MANAGER, child_name
from harness.namespaces import create_namespace, delete_namespace
from harness.plane import Plane
from harness.simulator import ServingSim
from harness.waiting import wait_for
from inprocess import Harness, writes
from kubelet import report_config_error
from operator_process import OperatorProcess
from test_pod_security import enforce_restricted

pytestmark = pytest.mark.e2e

SMALL: Mapping[str, Any] = {"model": {"variant": "e2b"}, "serving": {"verify": False}}
MiB = 1 << 20
# Condition messages stay short whatever a pod or the spec holds (the operator's own limit is lower).
MAX_MESSAGE = 1024
# The operator's resident memory after the whole module: its steady state is about 120 MiB.
MAX_RSS_MIB = 300
EMOJI = "gemma 🙂 𠜎𠜱 \u202e"  # an emoji, non-BMP ideographs and a bidi override


def _metadata(found: Mapping[str, Any] | None) -> Mapping[str, Any]:
    assert found is not None
    metadata: Mapping[str, Any] = found["metadata"]
    return metadata


def test_a_users_service_and_claim_of_the_childrens_names_are_left_alone(harness: Harness) -> None:
    service_name, claim_name = child_name(harness.name), child_name(harness.name, "cache")
    harness.create_object(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service_name}},
        spec={"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    )
    harness.create_object(
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim_name}},
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    )
    service = _metadata(harness.service())
    claim = _metadata(
        harness.read(lambda: harness.core.read_namespaced_persistent_volume_claim(claim_name, harness.namespace))
    )
    harness.create({**SMALL, "serving": {"verify": False, "cache": {"size": "1Gi"}}})

    outcome = harness.reconcile()

    assert outcome.result == "stalled"
    assert outcome.queue.retry  # with backoff: the user may rename the GemmaDeployment or delete their objects
    assert outcome.queue.after is None
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.NAME_IN_USE)
    assert f"Service {harness.namespace}/{service_name}" in stalled["message"]
    assert f"PersistentVolumeClaim {harness.namespace}/{claim_name}" in stalled["message"]
    after = {
        "Service": _metadata(harness.service()),
        "PersistentVolumeClaim": _metadata(
            harness.read(lambda: harness.core.read_namespaced_persistent_volume_claim(claim_name, harness.namespace))
        ),
    }
    for before, now in ((service, after["Service"]), (claim, after["PersistentVolumeClaim"])):
        assert now["resourceVersion"] == before["resourceVersion"]
        assert not now.get("ownerReferences")
    assert harness.deployment() is None  # nothing is created for it


def test_a_users_service_the_watches_cannot_see_is_found_by_the_create_and_no_deployment_runs(
    harness: Harness,
) -> None:
    """Without the operator's labels the Service is not in the watches' view: the create-only apply of the
    child is what finds the name taken, and the API server changes nothing."""
    service_name = child_name(harness.name)
    harness.create_object(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service_name}},
        spec={"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    )
    before = _metadata(harness.service())
    harness.create(SMALL)
    assert "Service" not in harness.cluster().children

    outcome = harness.reconcile()

    assert (outcome.result, outcome.queue.retry) == ("stalled", True)
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.NAME_IN_USE)
    assert f"Service {harness.namespace}/{service_name} exists, with no controller" in stalled["message"]
    now = _metadata(harness.service())
    assert now["resourceVersion"] == before["resourceVersion"]
    assert not now.get("ownerReferences")
    assert harness.deployment() is None


def _users_deployment(harness: Harness) -> None:
    labels = {"app": "theirs"}
    harness.create_object(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": child_name(harness.name)}},
        spec={
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "theirs", "image": "example.invalid/theirs"}]},
            },
        },
    )


def test_a_users_deployment_of_the_childs_name_is_left_alone_until_it_is_gone(harness: Harness) -> None:
    _users_deployment(harness)
    before = harness.deployment()
    harness.create(SMALL)

    outcome = harness.reconcile()

    assert outcome.result == "stalled"
    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.NAME_IN_USE)
    assert f"Deployment {harness.namespace}/{child_name(harness.name)} exists" in stalled["message"]
    now = harness.deployment()  # its status is the Deployment controller's to write, the rest the user's
    assert now is not None
    assert before is not None
    assert (now["spec"], now["metadata"].get("ownerReferences")) == (before["spec"], None)
    assert FIELD_MANAGER not in {entry["manager"] for entry in now["metadata"]["managedFields"]}
    # Its Service's name was free, and the Service is the GemmaDeployment's: it selects only its pods.
    (owner,) = _metadata(harness.service())["ownerReferences"]
    assert owner["uid"] == harness.gemma()["metadata"]["uid"]

    harness.apps.delete_namespaced_deployment(child_name(harness.name), harness.namespace)
    wait_for(lambda: harness.deployment() is None, timeout=30, message="the user's Deployment gone")
    assert harness.reconcile().result == "reconciled"
    (owner,) = _metadata(harness.deployment())["ownerReferences"]
    assert owner["uid"] == harness.gemma()["metadata"]["uid"]


@dataclass(frozen=True)
class Refused:
    """The API server refuses the GemmaDeployment at admission (422), naming `field`, with `words`."""

    field: str
    words: str = ""


@dataclass(frozen=True)
class Stalls:
    """Admitted, and the reconcile answers Stalled=True with `reason`, its message holding every one of `words`."""

    reason: Reason
    words: tuple[str, ...]


Answer = Refused | Stalls


def _env(*variables: Mapping[str, Any]) -> dict[str, Any]:
    return {"serving": {"verify": False, "env": list(variables)}}


# Each input the issue lists, and the answer it gets. Stalled ones must create no workload that status hides.
ANSWERS: dict[str, tuple[Mapping[str, Any], Answer]] = {
    "empty toleration": (
        {"placement": {"tolerations": [{}]}},
        Stalls(Reason.INVALID_CHILD, ("operator must be Exists",)),
    ),
    "newline in a nodeSelector key": (
        {"placement": {"nodeSelector": {"a\nb": "x"}}},
        Stalls(Reason.NO_NODE_FITS, ("no node can host",)),
    ),
    "env with value and valueFrom": (
        _env({"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        Stalls(Reason.INVALID_CHILD, ("may not be specified when `value` is not empty",)),
    ),
    "duplicate env names": (
        _env({"name": "A", "value": "1"}, {"name": "A", "value": "2"}),
        Stalls(Reason.INVALID_CHILD, ('duplicate entries for key [name="A"]',)),
    ),
    "replicas above int32": ({"replicas": 2**31}, Refused("spec.replicas", "2147483647")),
    "a cache of size 0": (
        {"serving": {"verify": False, "cache": {"size": "0"}}},
        Stalls(Reason.INVALID_CHILD, ("must be greater than zero",)),
    ),
    "a 1 MiB extraArgs value": (
        {"serving": {"extraArgs": ["--alias", "a" * MiB]}},
        Refused("spec.serving.extraArgs[1]", "Too long"),
    ),
    "a 1 MiB env value": (_env({"name": "BIG", "value": "v" * MiB}), Refused("spec.serving.env[0].value", "Too long")),
    "a Secret name with ../": (
        {"model": {"variant": "e2b", "tokenSecretRef": {"name": "../kube-system/hf"}}},
        Refused("spec.model.tokenSecretRef.name"),
    ),
    "targetUtilization 0": (
        {"autoscaling": {"enabled": True, "targetUtilization": 0}},
        Refused("spec.autoscaling.targetUtilization", "should be greater than 0"),
    ),
    "an owned flag, spaced": (
        {"serving": {"verify": False, "extraArgs": ["--ctx-size", "4096"]}},
        Stalls(Reason.OWNED_FLAG, ("serving.extraArgs --ctx-size", "maxContextTokens")),
    ),
    "an owned flag, with =": (
        {"serving": {"verify": False, "extraArgs": ["--port=9000"]}},
        Stalls(Reason.OWNED_FLAG, ("serving.extraArgs --port", "port")),
    ),
    "an emoji nodeSelector value": (
        {"placement": {"nodeSelector": {"example.com/team": "🙂"}}},
        Refused("spec.placement.nodeSelector.example.com/team"),
    ),
    "an emoji nodeSelector key": (
        {"placement": {"nodeSelector": {"example.com/🙂": "x"}}},
        Stalls(Reason.NO_NODE_FITS, ("no node can host",)),
    ),
    "a non-BMP toleration value": (
        {"placement": {"tolerations": [{"key": "k", "value": "𠜎"}]}},
        Refused("spec.placement.tolerations[0].value"),
    ),
}


def _wait_available(harness: Harness) -> None:
    def available() -> bool:
        return ((harness.deployment() or {}).get("status") or {}).get("availableReplicas") == 1

    wait_for(available, timeout=90, message=f"{harness.namespace}/{harness.name}'s pod available")


def _spec_and_generation(harness: Harness) -> tuple[Any, Any]:
    metadata = harness.gemma()["metadata"]
    return harness.gemma()["spec"], metadata["generation"]


def _answered_with(kind: type[Refused] | type[Stalls]) -> list[str]:
    return [case for case, (_, answer) in ANSWERS.items() if isinstance(answer, kind)]


@pytest.fixture(scope="module")
def admission(plane: Plane, crd: None) -> Iterator[Harness]:
    """One namespace for every input refused at admission: nothing is ever created in it."""
    name = create_namespace(plane.api, "hostile-admission")
    try:
        yield Harness(plane, name)
    finally:
        delete_namespace(plane.api, name)


@pytest.mark.parametrize("case", _answered_with(Refused))
def test_hostile_spec_is_refused_at_admission_naming_the_field(admission: Harness, case: str) -> None:
    spec, answer = ANSWERS[case]
    assert isinstance(answer, Refused)
    with pytest.raises(ApiException) as refused:
        admission.create({**SMALL, **spec})
    assert refused.value.status == 422
    assert answer.field in str(refused.value.body)
    assert answer.words in str(refused.value.body)


@pytest.mark.parametrize("case", _answered_with(Stalls))
def test_hostile_spec_stalls_with_the_reason_and_creates_nothing(harness: Harness, case: str) -> None:
    spec, answer = ANSWERS[case]
    assert isinstance(answer, Stalls)
    harness.create({**SMALL, **spec})
    before = _spec_and_generation(harness)

    outcome = harness.reconcile()

    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", answer.reason), stalled["message"]
    for words in answer.words:
        assert words in stalled["message"]
    if answer.reason is Reason.INVALID_CHILD:
        assert f"{harness.namespace}/{harness.name}" in stalled["message"]  # names the child
    assert len(stalled["message"]) <= MAX_MESSAGE
    assert harness.condition("Ready")["status"] == "False"
    assert (outcome.result, outcome.queue.after) == ("stalled", None)  # no hot loop: backoff at most
    if answer.reason is Reason.INVALID_CHILD:
        # With backoff, not never: the API server answers 422 for failures of its own too (a cluster IP it could
        # not allocate), which a retry lifts.
        assert outcome.queue.retry
    assert harness.deployment() is None  # no half-rolled workload behind the refusal
    harness.reconcile()
    assert harness.warnings() == [answer.reason]  # the same refusal again posts no second Event
    assert _spec_and_generation(harness) == before  # the user's spec is theirs


def test_a_name_with_an_emoji_is_refused_at_admission(plane: Plane, admission: Harness) -> None:
    with pytest.raises(ApiException) as refused:
        Harness(plane, admission.namespace, "chat-🙂").create(SMALL)
    assert refused.value.status == 422
    assert "metadata.name" in str(refused.value.body)


def test_unicode_in_args_and_env_is_rendered_as_written(harness: Harness) -> None:
    harness.create(
        {
            **SMALL,
            "serving": {
                "verify": False,
                "extraArgs": ["--alias", EMOJI],
                "env": [{"name": "GREETING", "value": EMOJI}],
            },
        }
    )

    assert harness.reconcile().result == "reconciled", harness.condition("Stalled")["message"]

    (container,) = (harness.deployment() or {})["spec"]["template"]["spec"]["containers"]
    assert container["args"][-2:] == ["--alias", EMOJI]
    assert {"name": "GREETING", "value": EMOJI} in container["env"]
    status = harness.gemma()["status"]
    assert harness.condition("Stalled")["status"] == "False"
    assert status["observedGeneration"] == 1


def test_a_restricted_namespace_admits_the_pods_and_goes_ready(plane: Plane, harness: Harness) -> None:
    enforce_restricted(plane, harness.namespace)
    harness.create(SMALL)
    harness.reconcile()
    _wait_available(harness)  # its pod admitted under restricted
    harness.state = ObjectState()  # as after a restart: the new state is written at once, not held

    harness.reconcile()

    ready = harness.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Ready"), ready["message"]


def _has_ip(pod: client.V1Pod) -> bool:
    return bool(pod.status and pod.status.pod_ip)


def test_a_missing_token_secret_is_learnt_from_the_kubelet(plane: Plane, harness: Harness) -> None:
    harness.create({**SMALL, "model": {"variant": "e2b", "tokenSecretRef": {"name": "hf-token"}}})
    harness.reconcile()
    pod = wait_for(
        lambda: next((p for p in harness.core.list_namespaced_pod(harness.namespace).items if _has_ip(p)), None),
        timeout=90,
        message="the serving pod running (kwok leaves it alone from then on)",
    )
    report_config_error(plane.api, harness.namespace, pod, 'secret "hf-token" not found')
    harness.state = ObjectState()

    harness.reconcile()

    stalled = harness.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", Reason.SECRET_NOT_FOUND)
    assert 'secret "hf-token" not found' in stalled["message"]
    assert not [r for r in harness.warnings() if r == "ApiError"]


def _quota_exhausted(harness: Harness) -> None:
    """A ResourceQuota that admits no pod, once the quota controller has counted it (admission needs that)."""
    harness.create_object(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}, spec={"hard": {"pods": "0"}}
    )
    wait_for(
        lambda: (
            (harness.read(lambda: harness.core.read_namespaced_resource_quota("no-pods", harness.namespace)) or {}).get(
                "status"
            )
            or {}
        ).get("hard"),
        timeout=60,
        message="the quota counted",
    )


def test_pods_the_replica_set_cannot_create_are_reported_with_the_deployments_words(harness: Harness) -> None:
    _quota_exhausted(harness)
    harness.create(SMALL)
    harness.reconcile()

    def replica_failure() -> bool:
        found = harness.deployment() or {}
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "ReplicaFailure" and c["status"] == "True" for c in conditions)

    wait_for(replica_failure, timeout=60, message="the Deployment reports ReplicaFailure")
    harness.state = ObjectState()  # as after a restart: a change of reason alone is written at once, not held
    harness.reconcile()

    ready, available = harness.condition("Ready"), harness.condition("Available")
    assert (ready["status"], ready["reason"]) == ("False", Reason.REPLICA_FAILURE)
    assert (available["status"], available["reason"]) == ("False", Reason.REPLICA_FAILURE)
    assert "exceeded quota: no-pods" in available["message"]
    assert "exceeded quota: no-pods" in ready["message"]


def _impostor(harness: Harness) -> str:
    """A hand-made pod with the serving pods' labels, named to sort before theirs; its IP once it is Ready."""
    labels = (harness.deployment() or {})["spec"]["template"]["metadata"]["labels"]
    harness.create_object(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a-impostor", "labels": labels}},
        spec={"containers": [{"name": "server", "image": "example.invalid/impostor"}]},
    )

    def ready_ip() -> str | None:
        pod = harness.read(lambda: harness.core.read_namespaced_pod("a-impostor", harness.namespace)) or {}
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        return str(status["podIP"]) if ready and status.get("podIP") else None

    return wait_for(ready_ip, timeout=90, message="the impostor Ready (kwok runs it)")


def test_a_pod_that_copies_the_labels_is_not_counted_or_smoke_checked(harness: Harness) -> None:
    harness.create({"model": {"variant": "e2b"}, "serving": {"verify": True}})
    harness.reconcile()
    _wait_available(harness)
    impostor_ip = _impostor(harness)
    managed = f"{MANAGED_BY_LABEL}={MANAGER}"
    assert len(harness.core.list_namespaced_pod(harness.namespace, label_selector=managed).items) == 2
    harness.state = ObjectState()  # as after a restart: the new counts are written at once, not held

    outcome = harness.reconcile()

    status = harness.gemma()["status"]
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert outcome.smoke is not None
    assert f"//{impostor_ip}:" not in outcome.smoke.base_url


def test_names_that_map_alike_get_apart_children_and_do_not_fight(plane: Plane, quiet_namespace: str) -> None:
    """`my.model` and `my-model` once shared their children's names; now the first's are marked `--` and hashed,
    a form no GemmaDeployment can be named, so both run, and reconciling them again changes nothing."""
    first, second = Harness(plane, quiet_namespace, "my.model"), Harness(plane, quiet_namespace, "my-model")
    assert child_name(first.name) != child_name(second.name)
    first.create(SMALL)
    second.create(SMALL)
    assert [first.reconcile().result, second.reconcile().result] == ["reconciled", "reconciled"]
    for each in (first, second):  # the Deployment controller's status writes are done: resourceVersions stay put
        _wait_available(each)
    deployments = [_metadata(each.deployment()) for each in (first, second)]
    applies = writes("apply")

    outcomes = [first.reconcile(), second.reconcile(), first.reconcile(), second.reconcile()]

    assert [outcome.result for outcome in outcomes] == ["reconciled"] * 4
    assert writes("apply") == applies  # nothing to change: no flapping between the two
    for each, before in zip((first, second), deployments, strict=True):
        now = _metadata(each.deployment())
        assert now["resourceVersion"] == before["resourceVersion"]
        (owner,) = now["ownerReferences"]
        assert (owner["name"], owner["uid"]) == (each.name, each.gemma()["metadata"]["uid"])
        assert each.condition("Stalled")["status"] == "False"


# --- the operator process: its indexes, hostile pods, and its memory after all of it -------------------------


def _forged_replica_set(gemma: Gemma, name: str, template_hash: str) -> None:
    """A ReplicaSet named as the Deployment's would be (`<deployment>-<hash>`) that is not the Deployment's; its
    pods carry the serving pods' labels and a controller reference of the right name. Its own labels do not
    match the Deployment's selector, or the Deployment controller would adopt it."""
    deployment = gemma.deployment(name)
    labels = {**deployment.spec.template.metadata.labels, "pod-template-hash": template_hash}
    body = {
        "metadata": {"name": f"{child_name(name)}-{template_hash}", "labels": {"app": "impostor"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "server", "image": "example.invalid/impostor"}]},
            },
        },
    }
    gemma.apps.create_namespaced_replica_set(gemma.namespace, body)


def test_a_pod_with_a_controller_reference_forged_by_name_is_not_counted(
    plane: Plane, namespace: str, operator: OperatorProcess
) -> None:
    gemma = Gemma(plane.api, namespace)
    gemma.create(manifest("chat", **SMALL))
    gemma.wait("chat", "Ready", timeout=120)
    _forged_replica_set(gemma, "chat", "f0c3d")
    wait_for(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for pod in gemma.pods("chat")
            if pod.metadata.owner_references[0].name == "chat-f0c3d"
            for c in pod.status.conditions or []
        ),
        timeout=90,
        message="the impostor pod Ready",
    )
    assert len(gemma.pods("chat")) == 2

    gemma.patch_spec("chat", {"replicas": 2})  # a reconcile that must count the pods again

    status = gemma.wait("chat", "Ready", timeout=120, generation=2)["status"]
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert len(gemma.pods("chat")) == 3  # the impostor runs on; it is not counted


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, list[str]]]:
    """A second loopback server a hostile pod redirects to; the list records every request (there must be none)."""
    received: list[str] = []

    class Recording(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._record()

        def do_POST(self) -> None:
            self._record()

        def _record(self) -> None:
            received.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


# Windows shortened as in test_autoscaling.py; the operator under test scrapes every 2 s.
AUTOSCALING = {"enabled": True, "minReplicas": 1, "maxReplicas": 2, "stableWindowSeconds": 4, "panicWindowSeconds": 2}
TOO_LARGE_ANSWER = "the answer is larger than 65536 bytes"
REDIRECT_REFUSED = "HTTP 307: redirects are refused"
# Per behaviour: what Verified says after a new smoke check (None: not rechecked), and what ScalingActive says
# (None: the metrics are left alone). A slow loris's smoke check takes its four 30 s attempts: not waited for.
HOSTILE: dict[str, tuple[str | None, str | None]] = {
    "huge-reply": (TOO_LARGE_ANSWER, "page larger than 2097152 bytes"),
    "redirect": (REDIRECT_REFUSED, REDIRECT_REFUSED),
    "slow-loris": (None, "no answer within 5s"),
    "garbage-metrics": (None, "in the page"),
    "long-model": (TOO_LARGE_ANSWER, None),
}


@pytest.mark.parametrize("behaviour", list(HOSTILE))
def test_a_hostile_pod_is_reported_in_bounded_words(
    plane: Plane,
    simulated_llamacpp: str,
    operator: OperatorProcess,
    servingsim: ServingSim,
    elsewhere: tuple[str, list[str]],
    behaviour: str,
) -> None:
    namespace = simulated_llamacpp  # the simulator misbehaves on the pod's behalf
    verified_words, scaling_words = HOSTILE[behaviour]
    gemma = Gemma(plane.api, namespace)
    gemma.create(manifest("chat", model={"variant": "e2b"}, autoscaling=AUTOSCALING))
    gemma.wait("chat", "Verified", timeout=120)
    gemma.wait("chat", "ScalingActive", timeout=60)
    (pod,) = gemma.pods("chat")
    location, received = elsewhere
    servingsim.set_hostile(namespace, pod.metadata.name, behaviour, location if behaviour == "redirect" else "")

    if verified_words is not None:  # a new generation, the same pod template: one more smoke check, of this pod
        gemma.patch_spec("chat", {"autoscaling": {**AUTOSCALING, "scaleDownDelaySeconds": 11}})
        verified = gemma.wait("chat", "Verified", status="False", timeout=60, generation=2)
        condition = next(c for c in verified["status"]["conditions"] if c["type"] == "Verified")
        assert condition["reason"] == Reason.NO_ANSWER
        assert verified_words in condition["message"]
        assert len(condition["message"]) <= MAX_MESSAGE
    if scaling_words is not None:
        scaling = gemma.wait("chat", "ScalingActive", status="False", timeout=60)
        condition = next(c for c in scaling["status"]["conditions"] if c["type"] == "ScalingActive")
        assert condition["reason"] == Reason.METRICS_UNAVAILABLE
        assert scaling_words in condition["message"]
        assert len(condition["message"]) <= MAX_MESSAGE
    else:
        assert gemma.condition("chat", "ScalingActive")["status"] == "True"

    served = servingsim.pod(namespace, pod.metadata.name)
    assert served is not None
    assert served["hostile"] == behaviour  # the same pod, still hostile: no rollout
    assert served["requests"]["total"] > 0
    assert received == []  # a redirect is answered, never followed
    assert operator.healthy()


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_the_operator_is_alive_and_bounded_after_all_of_it(operator: OperatorProcess) -> None:
    """Last in the module: whatever the cases above sent it, the operator process lives and stayed small."""
    assert operator.alive()
    assert operator.healthy()  # its liveness endpoint answers
    assert operator.process is not None
    assert _rss_mib(operator.process.pid) < MAX_RSS_MIB
