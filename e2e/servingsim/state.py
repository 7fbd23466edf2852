"""Per-pod simulated state: the load a test sets, and the requests the pod served."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class LoadFieldError(ValueError):
    """A load update named an unknown field or gave a field the wrong type."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"field {field_name!r}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class Load:
    """What a test says the pod is doing.

    waiting/running are the queued and in-batch requests the runtime reports (the
    requests actually in flight against the simulator are added to ``running``);
    latencySeconds delays every completion; healthy=false makes /health fail;
    loading=true simulates model loading (TGI and vLLM close their port, llama.cpp
    answers 503 "Loading model"); kvCacheUsage (0..1) overrides the derived KV-cache
    usage that vLLM reports.
    """

    waiting: int = 0
    running: int = 0
    latency_seconds: float = 0.0
    healthy: bool = True
    loading: bool = False
    kv_cache_usage: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "running": self.running,
            "latencySeconds": self.latency_seconds,
            "healthy": self.healthy,
            "loading": self.loading,
            "kvCacheUsage": self.kv_cache_usage,
        }

    def apply(self, update: LoadUpdate) -> None:
        if update.waiting is not None:
            self.waiting = update.waiting
        if update.running is not None:
            self.running = update.running
        if update.latency_seconds is not None:
            self.latency_seconds = update.latency_seconds
        if update.healthy is not None:
            self.healthy = update.healthy
        if update.loading is not None:
            self.loading = update.loading
        if update.kv_cache_usage_set:
            self.kv_cache_usage = update.kv_cache_usage


@dataclass(frozen=True)
class LoadUpdate:
    """A validated, partial change to a Load (None means "leave as is")."""

    waiting: int | None = None
    running: int | None = None
    latency_seconds: float | None = None
    healthy: bool | None = None
    loading: bool | None = None
    kv_cache_usage: float | None = None
    kv_cache_usage_set: bool = False


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoadFieldError(name, f"must be an integer, got {type(value).__name__}")
    if value < 0:
        raise LoadFieldError(name, f"must be >= 0, got {value}")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoadFieldError(name, f"must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise LoadFieldError(name, f"must be a finite number >= 0, got {value}")
    return number


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LoadFieldError(name, f"must be true or false, got {type(value).__name__}")
    return value


def parse_load_update(document: object) -> LoadUpdate:
    """Validate the JSON body of ``PUT /pods/{ns}/{name}``; raise LoadFieldError."""
    if not isinstance(document, dict):
        raise LoadFieldError("(body)", "must be a JSON object")
    known = {
        "waiting",
        "running",
        "latencySeconds",
        "healthy",
        "loading",
        "kvCacheUsage",
    }
    for key in document:
        if key not in known:
            raise LoadFieldError(str(key), f"unknown field; known fields: {', '.join(sorted(known))}")
    kv: float | None = None
    kv_set = "kvCacheUsage" in document
    if kv_set and document["kvCacheUsage"] is not None:
        kv = _number("kvCacheUsage", document["kvCacheUsage"])
        if kv > 1.0:
            raise LoadFieldError("kvCacheUsage", f"must be between 0 and 1, got {kv}")
    return LoadUpdate(
        waiting=_count("waiting", document["waiting"]) if "waiting" in document else None,
        running=_count("running", document["running"]) if "running" in document else None,
        latency_seconds=(
            _number("latencySeconds", document["latencySeconds"]) if "latencySeconds" in document else None
        ),
        healthy=_flag("healthy", document["healthy"]) if "healthy" in document else None,
        loading=_flag("loading", document["loading"]) if "loading" in document else None,
        kv_cache_usage=kv,
        kv_cache_usage_set=kv_set,
    )


@dataclass
class RequestStats:
    """Requests a simulated pod answered, by "METHOD /path", plus completions served, by the model they named."""

    by_route: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    completions: int = 0
    failures: int = 0
    in_flight: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_route.values()),
            "completions": self.completions,
            "failures": self.failures,
            "inFlight": self.in_flight,
            "byRoute": dict(sorted(self.by_route.items())),
            "byModel": dict(sorted(self.by_model.items())),
        }
