"""The observed state of a GemmaDeployment: `status`."""

from __future__ import annotations

from pydantic import Field

from gemma_operator.api.base import ApiModel
from gemma_operator.api.plan import PlanReport
from gemma_operator.api.vocabulary import ConditionStatus


class Condition(ApiModel):
    """A kstatus-style condition (metav1.Condition)."""

    type: str = Field(description="Condition type: Ready, Reconciling, Stalled, or a domain condition.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="What a person should know, with the numbers.")
    last_transition_time: str = Field(default="", description="When status last changed (RFC 3339).")
    observed_generation: int = Field(default=0, description="metadata.generation this condition was computed from.")


class ScalingDecision(ApiModel):
    """One change of the autoscaler's replica count, and why."""

    time: str = Field(description="When it was decided (RFC 3339).")
    replicas: int = Field(description="Replicas decided.")
    reason: str = Field(description="The load and the rule that led to it.")


class RuntimeStatus(ApiModel):
    """What the live serving pods run, read from the Deployment once its template is rolled out."""

    image: str = Field(description="The serving container's image.")
    args: list[str] = Field(default_factory=list, description="The serving container's launch arguments.")
    operator_version: str = Field(
        default="",
        description="The gemma-operator version that rendered the live template (empty: a release that did not "
        "record it).",
    )


class GemmaDeploymentStatus(ApiModel):
    """Observed state of a GemmaDeployment."""

    observed_generation: int = Field(default=0, description="metadata.generation that the status describes.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled and domain conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    plan: PlanReport | None = Field(default=None, description="The plan in effect.")
    replicas: int = Field(default=0, description="Serving pods that exist.")
    ready_replicas: int = Field(default=0, description="Serving pods that are ready.")
    selector: str = Field(default="", description="Label selector of the serving pods, for the scale subresource.")
    endpoint: str = Field(default="", description="In-cluster URL of the OpenAI-compatible endpoint.")
    adapters: list[str] = Field(
        default_factory=list,
        description="Model names of the LoRA adapters the plan in effect serves; a request names one as its model.",
    )
    runtime: RuntimeStatus | None = Field(
        default=None,
        description="The image and arguments the serving pods run, and the operator version that rendered them: "
        "those of the last template rolled out to every replica.",
    )
    desired_replicas: int | None = Field(
        default=None, description="Replicas the built-in autoscaler asks for (only with autoscaling.enabled)."
    )
    last_scale_time: str = Field(default="", description="When the autoscaler last changed the replica count.")
    decisions: list[ScalingDecision] = Field(
        default_factory=list, description="The autoscaler's last few changes, newest last."
    )
