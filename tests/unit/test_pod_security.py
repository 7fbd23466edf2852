"""Serving pods meet the Pod Security Standards' "restricted" profile, checked by rule (issue #14).

The rules are those of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the
Baseline policy, which Restricted includes, then Restricted's own), applied to the pod spec the
operator renders. Each check names the rule it implements.
"""

from __future__ import annotations

from typing import Any

import pytest

from gemma_operator.api import Family, InvalidSpec, Runtime, Target
from gemma_operator.catalog import runtimes
from gemma_operator.rendering import render

from .builders import MATRIX_PRECISION, MATRIX_VARIANTS, SERVED, SERVED_IDS, deployment, fitted

# Restricted, "Volume Types": only these volume sources.
RESTRICTED_VOLUME_SOURCES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Baseline, "Capabilities": what may be added (Restricted narrows it to NET_BIND_SERVICE).
RESTRICTED_ADDABLE_CAPABILITIES = {"NET_BIND_SERVICE"}
# Baseline, "Sysctls": the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Baseline, "SELinux": the allowed types.
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Every rule of the restricted profile that `pod` (a PodSpec) breaks, by the rule's name in the docs."""
    problems: list[str] = []
    pod_context = pod.get("securityContext", {})
    containers = [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]
    contexts = [(c["name"], c.get("securityContext", {})) for c in containers]

    # Baseline.
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"Host Namespaces: {field}")
    for name, context in [("pod", pod_context), *contexts]:
        if context.get("windowsOptions", {}).get("hostProcess"):
            problems.append(f"HostProcess: {name}")
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            problems.append(f"SELinux: {name}")
        if context.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"AppArmor: {name}")
    for name, context in contexts:
        if context.get("privileged"):
            problems.append(f"Privileged Containers: {name}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"/proc Mount Type: {name}")
    for container in containers:
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"Host Ports: {container['name']}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"Sysctls: {sysctl['name']}")

    # Restricted.
    for volume in pod.get("volumes", []):
        sources = set(volume) - {"name"}
        if not sources <= RESTRICTED_VOLUME_SOURCES:
            problems.append(f"Volume Types: {volume['name']} uses {sorted(sources - RESTRICTED_VOLUME_SOURCES)}")
    for name, context in contexts:
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"Privilege Escalation: {name} must set allowPrivilegeEscalation false")
        # Running as Non-root: true at pod level unless a container says false; else true in every container.
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"Running as Non-root: {name}")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"Running as Non-root user: {name} runs as UID 0")
        # Seccomp: RuntimeDefault or Localhost at pod level, or in every container; Unconfined nowhere.
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"Seccomp: {name} has {seccomp}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"Capabilities: {name} must drop ALL")
        if not set(capabilities.get("add", [])) <= RESTRICTED_ADDABLE_CAPABILITIES:
            problems.append(f"Capabilities: {name} adds {capabilities['add']}")
    if pod_context.get("runAsUser") == 0:
        problems.append("Running as Non-root user: the pod runs as UID 0")
    return problems


def serving_pod(**spec: Any) -> dict[str, Any]:
    gd = deployment(**spec)
    (workload,) = [obj for obj in render(gd, fitted(gd)) if obj["kind"] == "Deployment"]
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    return pod


def test_the_checker_catches_what_the_profile_forbids() -> None:
    assert restricted_violations({"containers": [{"name": "c"}]}) == [
        "Privilege Escalation: c must set allowPrivilegeEscalation false",
        "Running as Non-root: c",
        "Seccomp: c has None",
        "Capabilities: c must drop ALL",
    ]
    assert "Volume Types: h uses ['hostPath']" in restricted_violations({"volumes": [{"name": "h", "hostPath": {}}]})
    assert "Host Namespaces: hostNetwork" in restricted_violations({"hostNetwork": True})


@pytest.mark.parametrize(("runtime", "family", "target"), SERVED, ids=SERVED_IDS)
@pytest.mark.parametrize("cache", [None, {"size": "200Gi"}], ids=["emptydir", "claim"])
def test_every_serving_pod_meets_the_restricted_profile(
    runtime: Runtime, family: Family, target: Target, cache: dict[str, str] | None
) -> None:
    pod = serving_pod(
        model={"family": family.value, "variant": MATRIX_VARIANTS[(family, target)], "precision": MATRIX_PRECISION},
        serving={"runtime": runtime.value, **({"cache": cache} if cache else {})},
        placement={"target": target.value},
    )
    assert restricted_violations(pod) == []
    # Not part of the profile: the serving container has no use for the API server.
    assert pod["automountServiceAccountToken"] is False


def test_the_runtimes_run_as_a_numeric_non_root_user_with_a_writable_home() -> None:
    for runtime, family, target in SERVED:
        pod = serving_pod(
            model={"family": family.value, "variant": MATRIX_VARIANTS[(family, target)], "precision": MATRIX_PRECISION},
            serving={"runtime": runtime.value},
            placement={"target": target.value},
        )
        context = pod["securityContext"]
        # The images' USER is root (a name the kubelet cannot check against runAsNonRoot): a UID is needed.
        assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == 1000
        (container,) = pod["containers"]
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        cache_dir = next(iter(runtimes()[runtime].cache_env.values()))
        # The images' HOME is /root, which UID 1000 cannot write: caches under ~ go to the cache volume.
        assert env["HOME"] == cache_dir
        assert {"name": "model-cache", "mountPath": cache_dir} in container["volumeMounts"]


def test_an_image_with_its_own_user_gets_it_from_the_spec() -> None:
    pod = serving_pod(serving={"securityContext": {"runAsUser": 2000, "runAsGroup": 3000, "fsGroup": 4000}})
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (2000, 3000, 4000)
    assert context["runAsNonRoot"] is True
    assert restricted_violations(pod) == []


def test_root_is_possible_only_by_saying_so() -> None:
    with pytest.raises(InvalidSpec, match="runAsUser 0 needs runAsNonRoot false"):
        deployment(serving={"securityContext": {"runAsUser": 0}})
    pod = serving_pod(serving={"securityContext": {"runAsUser": 0, "runAsNonRoot": False}})
    assert pod["securityContext"]["runAsUser"] == 0
    assert "Running as Non-root user: the pod runs as UID 0" in restricted_violations(pod)


@pytest.mark.parametrize("field", ["runAsUser", "runAsGroup", "fsGroup"])
@pytest.mark.parametrize("value", [-1, 2**31])
def test_ids_are_bounded(field: str, value: int) -> None:
    with pytest.raises(InvalidSpec):
        deployment(serving={"securityContext": {field: value, "runAsNonRoot": False}})
