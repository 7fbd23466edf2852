"""spec.routing.inferencePool: the InferencePool and its endpoint picker, rendered, and refused where the picker
cannot read the runtime's metrics."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.api import Reason, Runtime
from gemma_operator.catalog import default_accelerator_classes, endpoint_picker, runtimes
from gemma_operator.planning import Plan, Refused, plan
from gemma_operator.rendering import optional_children, render
from gemma_operator.rendering.routing import routing_refs

from .builders import deployment, fitted

KUBERNETES_VERSION = "1.36.0"
ROUTED: dict[str, Any] = {"model": {"variant": "26b-a4b"}, "routing": {"inferencePool": True}, "replicas": 2}


def rendered(name: str = "chat", **spec: Any) -> list[dict[str, Any]]:
    gd = deployment(name=name, **{**ROUTED, **spec})
    return render(gd, fitted(gd))


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_pool_selects_exactly_the_serving_pods_on_the_runtimes_port() -> None:
    objects = rendered()
    pool = one(objects, "InferencePool", "chat")
    serving = one(objects, "Deployment", "chat")
    picker = one(objects, "Deployment", "chat-epp")
    selector = pool["spec"]["selector"]["matchLabels"]
    assert selector == serving["spec"]["selector"]["matchLabels"] == one(objects, "Service", "chat")["spec"]["selector"]
    assert matches(selector, serving["spec"]["template"]["metadata"]["labels"])
    # The picker's own pods are no members of the pool, nor of the serving Service.
    assert not matches(selector, picker["spec"]["template"]["metadata"]["labels"])
    served_port = serving["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert pool["spec"]["targetPorts"] == [{"number": served_port}] == [{"number": runtimes()[Runtime.VLLM].port}]


def test_the_pool_points_at_the_pickers_service_and_the_service_at_its_pods() -> None:
    objects = rendered()
    reference = one(objects, "InferencePool", "chat")["spec"]["endpointPickerRef"]
    service = one(objects, "Service", reference["name"])
    assert reference["kind"] == "Service"
    ports = {port["port"]: port["targetPort"] for port in service["spec"]["ports"]}
    assert ports[reference["port"]["number"]] == "grpc"
    pods = one(objects, "Deployment", reference["name"])["spec"]["template"]
    assert matches(service["spec"]["selector"], pods["metadata"]["labels"])
    container_ports = {port["name"]: port["containerPort"] for port in pods["spec"]["containers"][0]["ports"]}
    assert container_ports["grpc"] == reference["port"]["number"]


def test_the_picker_runs_as_its_account_with_its_config_for_its_pool() -> None:
    objects = rendered(name="chat")
    picker = one(objects, "Deployment", "chat-epp")["spec"]["template"]["spec"]
    (container,) = picker["containers"]
    args = container["args"]
    flag = {name: args[args.index(name) + 1] for name in ("--pool-name", "--pool-namespace", "--pool-group")}
    assert flag == {"--pool-name": "chat", "--pool-namespace": "ml", "--pool-group": "inference.networking.k8s.io"}
    binding = one(objects, "RoleBinding", "chat-epp")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": picker["serviceAccountName"], "namespace": "ml"}]
    assert one(objects, "Role", binding["roleRef"]["name"])
    one(objects, "ServiceAccount", picker["serviceAccountName"])
    (volume,) = picker["volumes"]
    (mount,) = container["volumeMounts"]
    config_path = args[args.index("--config-file") + 1]
    config_map = one(objects, "ConfigMap", volume["configMap"]["name"])
    assert config_path.removeprefix(mount["mountPath"] + "/") in config_map["data"]
    config = yaml.safe_load(config_map["data"][config_path.rsplit("/", 1)[1]])
    extractor = next(p for p in config["plugins"] if p["type"] == "core-metrics-extractor")
    assert extractor["parameters"]["defaultEngine"] == endpoint_picker().engines[Runtime.VLLM]
    scored = {ref["pluginRef"] for ref in config["schedulingProfiles"][0]["plugins"]}
    assert scored <= {p["type"] for p in config["plugins"]}


def test_the_picker_reads_only_what_it_needs() -> None:
    rules = one(rendered(), "Role", "chat-epp")["rules"]
    assert {verb for rule in rules for verb in rule["verbs"]} == {"get", "list", "watch"}
    assert "secrets" not in {resource for rule in rules for resource in rule["resources"]}


@pytest.mark.parametrize("kind", ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"])
def test_the_pickers_children_validate_against_kubernetes_schemas(kind: str) -> None:
    kubernetes_validate.validate(one(rendered(), kind, "chat-epp"), KUBERNETES_VERSION, strict=True)


def test_the_picker_passes_pod_security_restricted() -> None:
    pod = one(rendered(), "Deployment", "chat-epp")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_routing_children_are_exactly_the_optional_group_in_its_order() -> None:
    gd = deployment(**ROUTED)
    routed = [
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in render(gd, fitted(gd))
        if (o["apiVersion"], o["kind"], o["metadata"]["name"]) in set(routing_refs(gd))
    ]
    assert tuple(routed) == routing_refs(gd)
    off = deployment(**{**ROUTED, "routing": {"inferencePool": False}})
    rendered_off = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in render(off, fitted(off))}
    assert not rendered_off & set(routing_refs(off))


def test_every_child_that_is_not_always_rendered_is_one_the_reconciler_prunes() -> None:
    everything = deployment(**ROUTED, monitoring={"serviceMonitor": True})
    plain = deployment(**{**ROUTED, "routing": {"inferencePool": False}, "replicas": 1})
    refs = lambda gd: {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in render(gd, fitted(gd))}  # noqa: E731
    prunable = {ref for group in optional_children(everything) for ref in group}
    assert refs(everything) - refs(plain) == prunable


@given(st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", fullmatch=True))
def test_names_fit_their_limits_for_any_owner_name(name: str) -> None:
    for ref in routing_refs(deployment(name=name, **ROUTED)):
        assert 1 <= len(ref[2]) <= 63


@pytest.mark.parametrize(
    ("spec", "runtime"),
    [
        ({"model": {"family": "gemma-3", "variant": "27b"}, "serving": {"runtime": "tgi"}}, "tgi"),
        ({"model": {"variant": "e2b"}, "placement": {"target": "cpu"}}, "llamacpp"),
    ],
)
def test_a_runtime_whose_metrics_the_picker_cannot_read_is_refused(spec: dict[str, Any], runtime: str) -> None:
    result = plan(deployment(**{**spec, "routing": {"inferencePool": True}}), default_accelerator_classes())
    assert isinstance(result, Refused)
    assert result.reason is Reason.UNSATISFIABLE
    assert f"reads no {runtime} metrics" in result.message
    assert isinstance(plan(deployment(**spec), default_accelerator_classes()), Plan)


def test_runtime_auto_takes_vllm_where_tgi_would_be_first() -> None:
    gemma3 = {"model": {"family": "gemma-3", "variant": "12b"}}
    unrouted = plan(deployment(**gemma3), default_accelerator_classes())
    routed = plan(deployment(**gemma3, routing={"inferencePool": True}), default_accelerator_classes())
    assert isinstance(unrouted, Plan)
    assert isinstance(routed, Plan)
    assert (unrouted.runtime.name, routed.runtime.name) == (Runtime.TGI, Runtime.VLLM)
    assert "reads no tgi metrics" in (routed.runtime.auto_choice or "")
