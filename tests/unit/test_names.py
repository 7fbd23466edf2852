"""Child names: valid, stable, equal to the GemmaDeployment's name when that is already valid, and
collision-free between distinct names (issue #14)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gemma_operator.rendering import child_name, label_value

DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SUFFIXES = ["", "cache"]

# What the API server accepts as a GemmaDeployment's name: a DNS-1123 subdomain, dot-separated labels, 253 at most.
_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
subdomains = st.lists(_label, min_size=1, max_size=12).map(".".join).filter(lambda name: len(name) <= 253)
long_subdomains = st.builds(lambda head, tail: (head * 253)[: 253 - len(tail) - 1] + "." + tail, _label, _label)
names = st.one_of(subdomains, long_subdomains)


def test_a_valid_name_is_kept() -> None:
    assert child_name("chat") == "chat"
    assert child_name("chat", "cache") == "chat-cache"
    assert label_value("chat.v2") == "chat.v2"


def test_a_changed_name_cannot_be_chosen_by_another_deployment() -> None:
    # A name that is the changed form of another is itself a valid name: it must not get the same children.
    for original in ("my.model", "9lives", "a" * 80, "x" * 253):
        changed = child_name(original)
        assert child_name(changed) != child_name(original)
    # A shortened label value is no name a GemmaDeployment can have.
    assert "_" in label_value("x" * 253)


@given(names, st.sampled_from(SUFFIXES))
def test_child_names_are_valid_labels(name: str, suffix: str) -> None:
    child = child_name(name, suffix)
    assert DNS_1035_LABEL.fullmatch(child), child
    assert len(child) <= 63
    assert len(label_value(name)) <= 63


@given(names, names, st.sampled_from(SUFFIXES))
def test_distinct_names_get_distinct_child_names(first: str, second: str, suffix: str) -> None:
    if first != second:
        assert child_name(first, suffix) != child_name(second, suffix)
        assert label_value(first) != label_value(second)


@given(names, st.sampled_from(SUFFIXES))
def test_no_name_collides_with_the_child_name_of_another(name: str, suffix: str) -> None:
    # The adversarial pair: a second deployment named after the first one's (changed) child name.
    impostor = child_name(name, suffix)
    if impostor != name and len(impostor) <= 253:
        assert child_name(impostor, suffix) != child_name(name, suffix)
    impostor_label = label_value(name)
    if impostor_label != name and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", impostor_label):
        assert label_value(impostor_label) != label_value(name)
