"""What each chaos scenario injected and measured, one JSON line per run in .e2e/chaos/results.jsonl."""

from __future__ import annotations

import json
import time
from typing import Any

from chaos.plane import CHAOS_DIR

RESULTS = CHAOS_DIR / "results.jsonl"


def record(scenario: str, scale: str, **facts: Any) -> None:
    line = {"scenario": scenario, "scale": scale, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **facts}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write(json.dumps(line) + "\n")
