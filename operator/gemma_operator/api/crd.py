"""The CustomResourceDefinition, generated from the pydantic models so the two never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gemma_operator.api.base import ApiModel
from gemma_operator.api.resource import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from gemma_operator.api.spec import GemmaDeploymentSpec
from gemma_operator.api.status import GemmaDeploymentStatus

Schema = dict[str, Any]

_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Family", "type": "string", "jsonPath": ".spec.model.family", "priority": 1},
    {"name": "Variant", "type": "string", "jsonPath": ".spec.model.variant"},
    {"name": "Runtime", "type": "string", "jsonPath": ".status.plan.runtime.name"},
    {"name": "Accelerator", "type": "string", "jsonPath": ".status.plan.placement.acceleratorClass"},
    {"name": "GPUs", "type": "integer", "jsonPath": ".status.plan.placement.gpusPerReplica"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
]

# Keys of pydantic's JSON schema that a structural OpenAPI v3 schema keeps as they are.
_KEPT = {
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "format",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


def _exclusive_bounds(node: Schema) -> Schema:
    """pydantic's gt/lt (JSON Schema's numeric exclusiveMinimum/Maximum) as OpenAPI v3.0 writes them.

    A structural schema takes only the boolean form, next to minimum/maximum; the numeric one
    was dropped, so targetUtilization: 0 passed admission.
    """
    bounds: Schema = {}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if exclusive in node:
            bounds |= {bound: node[exclusive], exclusive: True}
    return bounds


def _key_rule(names: Schema) -> Schema:
    """A map's propertyNames, which Kubernetes lacks, as a CEL rule on the key lengths."""
    unsupported = set(names) - {"type", "minLength", "maxLength"}
    if unsupported:
        raise ValueError(f"cannot express map key constraints {sorted(unsupported)} in a CRD")
    low, high = names.get("minLength", 0), names["maxLength"]
    return {
        "rule": f"self.all(key, size(key) >= {low} && size(key) <= {high})",
        "message": f"keys must be {low} to {high} characters",
    }


def _structural(node: Schema, definitions: Mapping[str, Schema], *, field: bool = True) -> Schema:
    """Inline $refs, fold Optional[X] into X, and keep only what Kubernetes accepts.

    Every field must carry a description, so that `kubectl explain` is useful.
    """
    if "$ref" in node:
        referenced = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**referenced, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, definitions, field=field)
    if "anyOf" in node:
        non_null = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        merged = {**non_null[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _structural(merged, definitions, field=field)

    # type and description first: the generated YAML is read by people too.
    result: Schema = {key: node[key] for key in ("type", "description") if key in node}
    result.update((key, value) for key, value in sorted(node.items()) if key in _KEPT and key not in result)
    result.update(_exclusive_bounds(node))
    if "propertyNames" in node:
        result["x-kubernetes-validations"] = [
            *result.get("x-kubernetes-validations", []),
            _key_rule(node["propertyNames"]),
        ]
    if node.get("default") is not None:
        default = node["default"]
        # An object default of {} lets the API server apply the defaults nested inside it.
        result["default"] = {} if isinstance(default, dict) else default
    if "properties" in node:
        result = {"type": "object", **result}
        result["properties"] = {name: _structural(child, definitions) for name, child in node["properties"].items()}
        if node.get("required"):
            result["required"] = list(node["required"])
    elif isinstance(node.get("additionalProperties"), dict):
        result["additionalProperties"] = _structural(node["additionalProperties"], definitions, field=False)
    if "items" in node:
        result["items"] = _structural(node["items"], definitions, field=False)
    if field and "description" not in result:
        raise ValueError(f"schema node without a description: {node}")
    return result


def model_schema(model: type[ApiModel]) -> Schema:
    """The structural schema of a model: the CRD's top-level ones, or another wire shape the docs describe."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def _object_defaults(spec_model: type[GemmaDeploymentSpec], schema: Schema) -> None:
    """Sections built by default_factory get `default: {}`, so their own defaults apply server-side."""
    for name, field in spec_model.model_fields.items():
        if field.default_factory is not None and schema["properties"][field.alias or name]["type"] == "object":
            schema["properties"][field.alias or name]["default"] = {}


def _catalog_rules(
    variants: Mapping[str, Sequence[str]], gpu_only: Mapping[str, Sequence[str]]
) -> tuple[list[Schema], list[Schema]]:
    """CEL rules that come from the catalog: valid variants per family, and GPU-only variants."""

    def cel_list(items: Sequence[str]) -> str:
        return "[" + ", ".join(f"'{item}'" for item in items) + "]"

    per_family = " || ".join(
        f"(self.family == '{family}' && self.variant in {cel_list(names)})" for family, names in variants.items()
    )
    listing = "; ".join(f"{family}: {', '.join(names)}" for family, names in variants.items())
    model_rules = [
        {
            "rule": per_family,
            "messageExpression": f"'variant ' + self.variant + ' is not a ' + self.family + ' variant ({listing})'",
            "fieldPath": ".variant",
            "reason": "FieldValueInvalid",
        }
    ]
    spec_rules = [
        {
            "rule": (
                f"!(self.model.family == '{family}' && self.model.variant in {cel_list(names)}"
                " && has(self.placement.target) && self.placement.target in ['cpu', 'edge'])"
            ),
            "messageExpression": (
                f"'{family} ' + self.model.variant + ' runs on GPUs only; placement.target ' + "
                "self.placement.target + ' cannot host it (use gpu or auto)'"
            ),
            "fieldPath": ".placement.target",
            "reason": "FieldValueInvalid",
        }
        for family, names in gpu_only.items()
        if names
    ]
    return model_rules, spec_rules


def build_crd(variants: Mapping[str, Sequence[str]], gpu_only: Mapping[str, Sequence[str]]) -> Schema:
    """The GemmaDeployment CRD; catalog facts come in as arguments, as the api layer sits below the catalog."""
    spec = model_schema(GemmaDeploymentSpec)
    _object_defaults(GemmaDeploymentSpec, spec)
    model_rules, spec_rules = _catalog_rules(variants, gpu_only)
    spec["properties"]["model"]["x-kubernetes-validations"] = model_rules
    # The catalog's rules, then the spec model's own.
    rules = [*spec_rules, *spec.get("x-kubernetes-validations", [])]
    if rules:
        spec["x-kubernetes-validations"] = rules
    status = model_schema(GemmaDeploymentStatus)

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["gemma", "all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "GemmaDeployment runs a Gemma model as a right-sized inference service.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version of this object."},
                                "kind": {"type": "string", "description": "Kind of this object."},
                                # The API server owns metadata's schema and rejects anything more here.
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                }
            ],
        },
    }
