"""Documents kept in memory as compact JSON text: parsed, a Kubernetes object takes about five times the memory."""

from __future__ import annotations

import json
from typing import Any


def pack(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def unpack(text: str) -> Any:
    return json.loads(text)
