"""rendering: any Unicode a user may write reaches the manifests unchanged (tojson's surrogate pairs broke libyaml)."""

from __future__ import annotations

from typing import Any

from gemma_operator.rendering import render

from .builders import deployment, fitted

# Past U+FFFF (emoji, CJK extension B, a flag), and the BMP characters YAML itself reads as line
# breaks or refuses raw: NEL, DEL, a C1 control, the line and paragraph separators, U+FFFF.
AWKWARD = "hi 🙂 𠜎 🇫🇷 \x85 \x7f \x9b \u2028 \u2029 \uffff end"
# A revision takes no spaces or controls (its pattern), but any other character.
NON_BMP = "🙂𠜎🇫🇷"


def test_every_user_string_reaches_the_manifests_unchanged() -> None:
    gd = deployment(
        model={"variant": "31b", "revision": f"refs/tags/{NON_BMP}"},
        serving={
            "extraArgs": ["--served-model-name", AWKWARD],
            "env": [
                {"name": "GREETING", "value": AWKWARD},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": AWKWARD}}},
            ],
        },
    )
    objects = render(gd, fitted(gd))
    workload = next(obj for obj in objects if obj["kind"] == "Deployment")
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--served-model-name", AWKWARD]
    assert f"refs/tags/{NON_BMP}" in container["args"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["GREETING"] == {"name": "GREETING", "value": AWKWARD}
    assert env["POD"] == {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": AWKWARD}}}


def test_a_string_utf8_cannot_encode_renders_too() -> None:
    # valueFrom is free-form, so nothing before the renderer refuses a lone surrogate (Python's json reads
    # "\ud800" as one); the templates' YAML round trip failed on it.
    gd = deployment(serving={"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "a\ud800b"}}}]})
    workload = next(obj for obj in render(gd, fitted(gd)) if obj["kind"] == "Deployment")
    env = workload["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "a\ud800b"}}} in env
