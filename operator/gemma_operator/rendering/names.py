"""Names and labels of child objects, valid however long the GemmaDeployment's name is."""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63
HASH_LENGTH = 8


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def child_name(owner: str, suffix: str = "") -> str:
    """A DNS-1035 label (what a Service name must be) derived from the owner's name.

    Dots become dashes and a leading digit gets a letter in front. When the result
    would be too long it is truncated and a hash of the full name keeps it unique.
    """
    base = re.sub(r"[^a-z0-9-]", "-", owner.lower())
    if not base[:1].isalpha():
        base = "g-" + base
    wanted = f"{base}-{suffix}" if suffix else base
    if len(wanted) <= DNS_LABEL_MAX and base == owner:
        return wanted
    tail = f"-{_stable_hash(owner)}" + (f"-{suffix}" if suffix else "")
    return base[: DNS_LABEL_MAX - len(tail)].rstrip("-") + tail


def label_value(value: str) -> str:
    """A valid label value (63 characters at most) standing for `value`."""
    if len(value) <= DNS_LABEL_MAX:
        return value
    tail = f"-{_stable_hash(value)}"
    return value[: DNS_LABEL_MAX - len(tail)].rstrip("-._") + tail
