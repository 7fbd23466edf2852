"""drifted and merge_patch: what counts as a change of ours, and the RFC 7386 patch that makes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.reconcile.diffing import drifted, merge_patch

RENDERED: dict[str, Any] = {
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [{"name": "vllm", "args": ["--port", "8000"]}],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": ""}],
            }
        },
    }
}
# What the API server returns for RENDERED: defaults, status and metadata added, the empty toleration value dropped.
LIVE: dict[str, Any] = {
    "metadata": {"resourceVersion": "41", "uid": "u-1"},
    "spec": {
        "replicas": 2,
        "revisionHistoryLimit": 10,
        "template": {
            "spec": {
                "containers": [{"name": "vllm", "args": ["--port", "8000"], "imagePullPolicy": "IfNotPresent"}],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                "dnsPolicy": "ClusterFirst",
            }
        },
    },
    "status": {"readyReplicas": 2},
}


def test_fields_the_api_server_adds_are_not_drift() -> None:
    assert not drifted(RENDERED, LIVE)


def test_a_changed_value_of_ours_is_drift() -> None:
    assert drifted({**RENDERED, "spec": {**RENDERED["spec"], "replicas": 3}}, LIVE)


def test_a_missing_field_of_ours_is_drift() -> None:
    assert drifted({"spec": {"paused": True}}, LIVE)


@pytest.mark.parametrize(
    ("desired", "live"),
    [
        (["--port", "8000"], ["--port", "8000", "--extra"]),
        (["--port", "8000"], ["--port"]),
        (["--port", "8000"], ["--port", "8001"]),
        ([{"name": "a"}], [{"name": "b"}]),
    ],
    ids=["entry-added", "entry-removed", "entry-changed", "nested-entry-changed"],
)
def test_lists_must_match_element_by_element(desired: list[Any], live: list[Any]) -> None:
    assert drifted(desired, live)


def test_list_entries_may_carry_defaults() -> None:
    assert not drifted([{"name": "a"}], [{"name": "a", "protocol": "TCP"}])


@pytest.mark.parametrize("empty", ["", [], {}])
def test_empty_values_the_api_server_omits_are_not_drift(empty: Any) -> None:
    assert not drifted({"value": empty}, {})


def test_an_empty_value_contradicted_live_is_drift() -> None:
    assert drifted({"value": ""}, {"value": "x"})


@pytest.mark.parametrize(
    ("desired", "live"),
    [({"a": 1}, [1]), ([1], {"a": 1}), ({"a": 1}, "a"), ("1", 1), (["a"], "a")],
    ids=["map-vs-list", "list-vs-map", "map-vs-scalar", "string-vs-number", "list-vs-scalar"],
)
def test_type_mismatches_are_drift(desired: Any, live: Any) -> None:
    assert drifted(desired, live)


def test_merge_patch_of_equal_objects_is_empty() -> None:
    assert merge_patch(LIVE, LIVE) == {}


def test_merge_patch_nulls_removed_keys_and_replaces_lists_whole() -> None:
    current = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}}
    wanted = {"metadata": {"labels": {"a": "1"}}, "spec": {"args": ["x"]}}
    assert merge_patch(current, wanted) == {"metadata": {"labels": {"b": None}}, "spec": {"args": ["x"]}}


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, as its pseudocode reads."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# JSON documents without nulls (a null in `wanted` cannot be said in a merge patch), on a few keys so that they overlap.
scalars = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["", "a", "b"]))
keys = st.sampled_from(["a", "b", "c", "d"])
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)
objects = st.dictionaries(keys, documents, max_size=4)


@given(objects, objects)
def test_applying_the_merge_patch_to_current_gives_wanted(current: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert apply_merge_patch(current, merge_patch(current, wanted)) == wanted


@given(objects, objects)
def test_the_merge_patch_is_empty_exactly_when_nothing_changes(current: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert (merge_patch(current, wanted) == {}) == (current == wanted)


@given(objects)
def test_a_merge_patch_from_nothing_is_the_object_itself(wanted: dict[str, Any]) -> None:
    assert merge_patch({}, wanted) == wanted


def test_a_key_added_to_an_atomic_map_is_drift_and_elsewhere_is_not() -> None:
    desired = {"spec": {"selector": {"app": "chat"}, "template": {"metadata": {"labels": {"app": "chat"}}}}}
    live = {
        "spec": {
            "selector": {"app": "chat", "x": "y"},
            "template": {"metadata": {"labels": {"app": "chat", "added": "by-someone"}}},
        }
    }
    assert drifted(desired, live, atomic={("spec", "selector")})
    assert not drifted(desired, live)  # without the schema's word, an extra key is someone else's field
    untouched = {"spec": {"selector": {"app": "chat"}, "template": live["spec"]["template"]}}
    assert not drifted(desired, untouched, atomic={("spec", "selector")})
