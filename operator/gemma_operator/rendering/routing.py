"""spec.routing.inferencePool: an InferencePool of the serving pods, and the endpoint picker (EPP) a Gateway asks
which pod takes each request, with its ServiceAccount, Role, RoleBinding and configuration.

Built after the Gateway API Inference Extension's own chart at the pinned picker version (catalog
endpoint_picker.yaml): config/charts/epplib/templates/{_deployment,_service,_config,_rbac}.yaml and
config/charts/inferencepool/templates/{inferencepool,rbac}.yaml. What needs a cluster-wide object there (the
ClusterRole that lets Prometheus authenticate to the picker's /metrics) is left out: every child here is namespaced
and owned by the GemmaDeployment, so the picker serves its metrics without authentication
(--metrics-endpoint-auth=false, as the chart does when monitoring.prometheus.auth is off).
"""

from __future__ import annotations

from typing import Final

import yaml

from gemma_operator.api import GemmaDeployment, Runtime
from gemma_operator.catalog import EndpointPicker, endpoint_picker
from gemma_operator.rendering.deployment import TERMINATION_GRACE_SECONDS
from gemma_operator.rendering.identity import INSTANCE_LABEL, Identity, Manifest
from gemma_operator.rendering.names import child_name

# The picker's pods must not match the serving pods' selector (app.kubernetes.io/name=gemma), which the
# InferencePool, the Service and the PodDisruptionBudget use.
PICKER_APP_NAME: Final = "gemma-endpoint-picker"
PICKER_COMPONENT: Final = "endpoint-picker"
PICKER_SUFFIX: Final = "epp"
PICKER_CONTAINER: Final = "epp"
CONFIG_FILE: Final = "default-plugins.yaml"
CONFIG_DIR: Final = "/config"
CONFIG_VOLUME: Final = "plugins-config"
# The picker's gRPC health service (pkg/epp/server/runserver.go registers it; the chart's probes ask for it).
HEALTH_SERVICE: Final = "inference-extension"
# When the picker does not answer, the Gateway still sends the request to some pod of the pool: the serving
# pods stay reachable while the picker restarts (the API's default is FailClose: requests fail).
FAILURE_MODE: Final = "FailOpen"
RBAC_API_VERSION: Final = "rbac.authorization.k8s.io/v1"
# What the picker reads (config/charts/epplib/templates/_rbac.yaml and inferencepool/templates/rbac.yaml): its
# pool, the pods the pool selects, and InferenceObjectives and InferenceModelRewrites, where their CRDs exist
# (pkg/epp/server/controller_config.go looks them up by discovery).
READ: Final = ["get", "watch", "list"]
OBJECTIVES_GROUP: Final = "inference.networking.x-k8s.io"

ChildRef = tuple[str, str, str]  # apiVersion, kind, name


def picker_name(gd: GemmaDeployment) -> str:
    return child_name(gd.metadata.name, PICKER_SUFFIX)


def picker_identity(identity: Identity, gd: GemmaDeployment) -> Identity:
    """The picker's names and labels: the GemmaDeployment's instance and manager, its own name and component."""
    selector = {"app.kubernetes.io/name": PICKER_APP_NAME, INSTANCE_LABEL: identity.selector[INSTANCE_LABEL]}
    labels = {**identity.labels, **selector, "app.kubernetes.io/component": PICKER_COMPONENT}
    return Identity(picker_name(gd), identity.namespace, labels, selector)


def routing_refs(gd: GemmaDeployment) -> tuple[ChildRef, ...]:
    """The children routing_children renders, in its order (the order they are applied in)."""
    picker, pool = endpoint_picker(), Identity.of(gd).name
    name = picker_name(gd)
    return (
        ("v1", "ServiceAccount", name),
        (RBAC_API_VERSION, "Role", name),
        (RBAC_API_VERSION, "RoleBinding", name),
        ("v1", "ConfigMap", name),
        ("apps/v1", "Deployment", name),
        ("v1", "Service", name),
        (picker.pool_api_version, "InferencePool", pool),
    )


def routing_children(identity: Identity, gd: GemmaDeployment, runtime: Runtime, port: int) -> list[Manifest]:
    """The picker's children, then the InferencePool of the serving pods (listening on `port`)."""
    picker, own = endpoint_picker(), picker_identity(identity, gd)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": own.metadata()},
        _role(own, picker),
        _role_binding(own),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": own.metadata(),
            "data": {CONFIG_FILE: _config(picker, runtime)},
        },
        _deployment(own, identity, picker),
        _service(own, picker),
        _inference_pool(identity, own, picker, port),
    ]


def _pool_group(picker: EndpointPicker) -> str:
    return picker.pool_api_version.split("/")[0]


def _role(own: Identity, picker: EndpointPicker) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": own.metadata(),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": list(READ)},
            {"apiGroups": [_pool_group(picker)], "resources": ["inferencepools"], "verbs": list(READ)},
            {
                "apiGroups": [OBJECTIVES_GROUP],
                "resources": ["inferenceobjectives", "inferencemodelrewrites"],
                "verbs": list(READ),
            },
        ],
    }


def _role_binding(own: Identity) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": own.metadata(),
        "subjects": [{"kind": "ServiceAccount", "name": own.name, "namespace": own.namespace}],
        "roleRef": {"apiGroup": RBAC_API_VERSION.split("/")[0], "kind": "Role", "name": own.name},
    }


def _config(picker: EndpointPicker, runtime: Runtime) -> str:
    """The chart's default EndpointPickerConfig (config/charts/epplib/templates/_config.yaml), with the runtime's
    engine named as the default one: the serving pods carry no engine-type label."""
    config = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [
            {"type": "queue-scorer"},
            {"type": "kv-cache-utilization-scorer"},
            {"type": "prefix-cache-scorer"},
            {
                "type": "metrics-data-source",
                "parameters": {"scheme": "http", "path": "/metrics", "insecureSkipVerify": True},
            },
            {"type": "core-metrics-extractor", "parameters": {"defaultEngine": picker.engines[runtime]}},
        ],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [
                    {"pluginRef": "queue-scorer", "weight": 2},
                    {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                    {"pluginRef": "prefix-cache-scorer", "weight": 3},
                ],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def picker_args(pool: str, namespace: str, picker: EndpointPicker) -> list[str]:
    """The picker's arguments (config/charts/epplib/templates/_deployment.yaml), its ports named explicitly."""
    ports = picker.ports
    return [
        *("--pool-name", pool, "--pool-namespace", namespace, "--pool-group", _pool_group(picker)),
        *("--grpc-port", str(ports.grpc), "--grpc-health-port", str(ports.grpc_health)),
        *("--metrics-port", str(ports.metrics)),
        *("--config-file", f"{CONFIG_DIR}/{CONFIG_FILE}", "--zap-encoder", "json", "--v", str(picker.verbosity)),
        "--tracing=false",
        "--metrics-endpoint-auth=false",
    ]


def _grpc_probe(picker: EndpointPicker) -> Manifest:
    return {"grpc": {"port": picker.ports.grpc_health, "service": HEALTH_SERVICE}}


def _deployment(own: Identity, identity: Identity, picker: EndpointPicker) -> Manifest:
    ports = picker.ports
    container = {
        "name": PICKER_CONTAINER,
        "image": picker.image,
        "args": picker_args(identity.name, identity.namespace, picker),
        "ports": [
            {"name": "grpc", "containerPort": ports.grpc, "protocol": "TCP"},
            {"name": "grpc-health", "containerPort": ports.grpc_health, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports.metrics, "protocol": "TCP"},
        ],
        "env": [
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": {kind: dict(amounts) for kind, amounts in picker.resources.items()},
        "livenessProbe": {**_grpc_probe(picker), "initialDelaySeconds": 5, "periodSeconds": 10},
        "readinessProbe": {**_grpc_probe(picker), "periodSeconds": 2},
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": own.metadata(),
        "spec": {
            # One picker: its prefix-cache scorer keeps state in memory, and Recreate lets a new one take over at
            # once (the chart's reasons).
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "strategy": {"type": "Recreate"},
            "selector": own.label_selector(),
            "template": {
                "metadata": {"labels": dict(own.labels)},
                "spec": {
                    "serviceAccountName": own.name,
                    "enableServiceLinks": False,
                    # The chart's advice: as long as the longest grace period of the pool's pods.
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": picker.run_as_user,
                        "runAsGroup": picker.run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": CONFIG_VOLUME, "configMap": {"name": own.name}}],
                },
            },
        },
    }


def _service(own: Identity, picker: EndpointPicker) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": own.metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(own.selector),
            "ports": [
                {"name": "grpc-ext-proc", "port": picker.ports.grpc, "targetPort": "grpc", "protocol": "TCP"},
                {"name": "http-metrics", "port": picker.ports.metrics, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def _inference_pool(identity: Identity, own: Identity, picker: EndpointPicker, port: int) -> Manifest:
    return {
        "apiVersion": picker.pool_api_version,
        "kind": "InferencePool",
        "metadata": identity.metadata(),
        "spec": {
            "selector": identity.label_selector(),
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {
                "kind": "Service",
                "name": own.name,
                "port": {"number": picker.ports.grpc},
                "failureMode": FAILURE_MODE,
            },
        },
    }
