"""The children of a GemmaDeployment, built as data from its plan: no value, however written, can change a
manifest's structure, and no text is parsed back. Pure: data in, fresh dicts out."""

from __future__ import annotations

from gemma_operator.api import GemmaDeployment
from gemma_operator.catalog import runtimes
from gemma_operator.planning import Plan
from gemma_operator.rendering.claim import claim_to_create, persistent_volume_claim
from gemma_operator.rendering.deployment import deployment
from gemma_operator.rendering.disruption import pod_disruption_budget
from gemma_operator.rendering.identity import Identity, Manifest
from gemma_operator.rendering.monitor import service_monitor
from gemma_operator.rendering.routing import ChildRef, routing_children, routing_refs
from gemma_operator.rendering.service import service


def render(gd: GemmaDeployment, plan: Plan, replicas: int | None = None) -> list[Manifest]:
    """The children the operator applies, in apply order. `replicas` overrides spec.replicas (the autoscaler's)."""
    identity = Identity.of(gd)
    facts = runtimes()[plan.runtime.name]
    count = gd.spec.replicas if replicas is None else replicas
    cache = claim_to_create(gd)
    children = [persistent_volume_claim(identity, gd, cache)] if cache is not None else []
    children += [deployment(identity, gd, plan, facts, count), service(identity, facts.port)]
    if count > 1:
        children.append(pod_disruption_budget(identity))
    if gd.spec.monitoring.service_monitor:
        children.append(service_monitor(identity))
    if gd.spec.routing.inference_pool:
        children += routing_children(identity, gd, plan.runtime.name, facts.port)
    return children


def optional_children(gd: GemmaDeployment) -> tuple[tuple[ChildRef, ...], ...]:
    """Every child that only some specs have, in groups rendered together and in order: a child not rendered is
    deleted. A group's later children are never created before its first, so the first one's absence stands for
    the whole group's."""
    name = Identity.of(gd).name
    return (
        (("policy/v1", "PodDisruptionBudget", name),),
        (("monitoring.coreos.com/v1", "ServiceMonitor", name),),
        routing_refs(gd),
    )
