"""Every reason the operator writes into a condition or an Event. One enum, so that status, Events, docs and
tests name the same things (docs/troubleshooting.md explains each one; a test fails when one is missing)."""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Reason(StrEnum):
    # Stalled: the spec cannot be served as it stands.
    INVALID_SPEC = "InvalidSpec"
    UNSATISFIABLE = "Unsatisfiable"
    DOES_NOT_FIT = "DoesNotFit"
    NO_NODE_FITS = "NoNodeFits"
    SECRET_NOT_FOUND = "SecretNotFound"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    NAME_IN_USE = "NameInUse"
    INVALID_CHILD = "InvalidChild"
    OWNED_FLAG = "OwnedFlag"
    INFERENCE_POOL_UNAVAILABLE = "InferencePoolUnavailable"
    # Rollout progress (Ready, Reconciling, Available, Scheduled).
    READY = "Ready"
    ROLLING_OUT = "RollingOut"
    UNSCHEDULABLE = "Unschedulable"
    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    NODE_LOST = "NodeLost"
    REPLICA_FAILURE = "ReplicaFailure"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
    SCALED_TO_ZERO = "ScaledToZero"
    # Reconciling: a template change the operator made on its own (an upgrade) waits for a rollout slot.
    OPERATOR_UPGRADE_PENDING = "OperatorUpgradePending"
    # Reconciling (and Ready, for a spec change): a new template waits for free GPUs for a surge pod.
    WAITING_FOR_CAPACITY = "WaitingForCapacity"
    # Planned.
    PLANNED = "Planned"
    NOT_PLANNED = "NotPlanned"
    # Verified: the post-rollout smoke check.
    WAITING_FOR_ROLLOUT = "WaitingForRollout"
    VERIFYING = "Verifying"
    ANSWERED = "Answered"
    NO_ANSWER = "NoAnswer"
    # ScalingActive and ScalingLimited: the built-in autoscaler.
    WAITING_FOR_METRICS = "WaitingForMetrics"
    NO_READY_PODS = "NoReadyPods"
    METRICS_AVAILABLE = "MetricsAvailable"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    NODE_CAPACITY = "NodeCapacity"
    WITHIN_LIMITS = "WithinLimits"
    # Events only.
    API_ERROR = "ApiError"
    SERVICE_MONITOR_UNAVAILABLE = "ServiceMonitorUnavailable"
    OPERATOR_UPGRADE_TIMED_OUT = "OperatorUpgradeTimedOut"


# Refusals that a change in the cluster (not the spec) can lift: retried with backoff.
RETRYABLE_REFUSALS = frozenset({Reason.NO_NODE_FITS})
