"""reconcile/kube.py: the server-side apply body holds any Unicode the spec may, in a form YAML reads."""

from __future__ import annotations

import json

import yaml

from gemma_operator.reconcile.kube import apply_body


def test_the_apply_body_is_json_that_yaml_reads_back_whatever_the_characters() -> None:
    value = "gemma 🙂 𠜎𠜱 \u202e del\x7f c1\x85 nonchar\ufffe tab\t"
    manifest = {"spec": {"args": ["--alias", value]}}
    body = apply_body(manifest)
    assert json.loads(body) == manifest
    assert yaml.safe_load(body) == manifest
    assert "🙂".encode() in body  # as UTF-8, not as a surrogate pair, which YAML refuses
    assert b"\\ud83d" not in body
    assert b"\\u007f" in body
