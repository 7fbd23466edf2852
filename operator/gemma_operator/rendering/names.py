"""Names and labels of child objects, valid however long the GemmaDeployment's name is, and distinct for
distinct GemmaDeployments."""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63
HASH_LENGTH = 8
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Marks a changed child name. A kept name never contains it (names that do are changed too), so no
# GemmaDeployment can be named after another one's changed child name and take over its children.
_CHANGED_NAME_MARK = "--"
# Marks a shortened label value: a GemmaDeployment's name cannot contain "_", so none can be named after it.
_SHORTENED_LABEL_MARK = "_"


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def child_name(owner: str, suffix: str = "") -> str:
    """A DNS-1035 label (what a Service name must be) derived from the owner's name.

    A name that already is one, fits with the suffix and has no "--" is kept. Any other is changed: dots
    and dashes become one dash, a leading digit gets a letter in front, it is truncated to fit, and "--"
    and a hash of the full name follow, which keeps distinct names apart.
    """
    wanted = f"{owner}-{suffix}" if suffix else owner
    if _DNS_1035_LABEL.fullmatch(owner) and _CHANGED_NAME_MARK not in owner and len(wanted) <= DNS_LABEL_MAX:
        return wanted
    base = re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")
    if not base[:1].isalpha():
        base = f"g-{base}".rstrip("-")
    tail = f"{_CHANGED_NAME_MARK}{_stable_hash(owner)}" + (f"-{suffix}" if suffix else "")
    return base[: DNS_LABEL_MAX - len(tail)].rstrip("-") + tail


def label_value(value: str) -> str:
    """A valid label value (63 characters at most) standing for `value`."""
    if len(value) <= DNS_LABEL_MAX:
        return value
    tail = f"{_SHORTENED_LABEL_MARK}{_stable_hash(value)}"
    return value[: DNS_LABEL_MAX - len(tail)].rstrip("-._") + tail
