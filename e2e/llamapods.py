"""Pods served by the real llama-server on the plane (e2e/servingsim/realllama.py): what its own log says."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import requests

from gemma_operator.api import Runtime, parse_deployment
from gemma_operator.catalog import default_accelerator_classes
from gemma_operator.planning import Plan, plan
from gemma_operator.rendering.render import render
from harness.simulator import ServingSim
from harness.waiting import wait_for
from realruntime import llamaserver

THREADS = re.compile(r"system_info: n_threads = (\d+) \(n_threads_batch = (\d+)\)")
SLOTS = re.compile(r"n_slots = (\d+), n_ctx_slot = (\d+)")
KV_CACHE = re.compile(r"llama_kv_cache: size = .*")


@dataclass(frozen=True)
class RealPod:
    """A pod's real llama-server: the args it got and its startup log."""

    served: dict[str, Any]
    log: str

    @property
    def args(self) -> list[str]:
        return list(self.served["real"]["args"])

    def threads(self) -> tuple[int, int]:
        found = THREADS.search(self.log)
        assert found, f"no system_info line in the llama-server log:\n{self.log}"
        return int(found[1]), int(found[2])

    def slots(self) -> tuple[int, int]:
        found = SLOTS.search(self.log)
        assert found, f"no n_slots line in the llama-server log:\n{self.log}"
        return int(found[1]), int(found[2])

    def kv_cache_lines(self) -> list[str]:
        return KV_CACHE.findall(self.log)


def rendered_args(variant: str) -> list[str]:
    """The serving container's args the operator renders for a gemma-4 variant on CPU."""
    gd = parse_deployment(
        {
            "apiVersion": "serving.gemma.dev/v1alpha1",
            "kind": "GemmaDeployment",
            "metadata": {"name": variant, "namespace": "ml"},
            "spec": {"model": {"variant": variant}},
        }
    )
    fitted = plan(gd, default_accelerator_classes())
    assert isinstance(fitted, Plan), fitted
    assert fitted.runtime.name is Runtime.LLAMACPP
    [deployment] = [m for m in render(gd, fitted) if m["kind"] == "Deployment"]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def real_pod(servingsim: ServingSim, namespace: str, name: str, timeout: float = 60.0) -> RealPod:
    """The pod, once its real llama-server answers /health with 200 (it is the real one, not the simulator)."""

    def ready() -> dict[str, Any] | None:
        served = servingsim.pod(namespace, name)
        return served if served and served.get("real") and served["real"]["health"] == "ok" else None

    served = wait_for(ready, timeout=timeout, message=f"the real llama-server of {namespace}/{name} answering")
    return RealPod(served, Path(served["real"]["log"]).read_text(encoding="utf-8", errors="replace"))


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def assert_serves_the_pod_as_rendered(pod: Any, real: RealPod) -> None:
    """The real server got the pod's args with only -hf made -m (a tiny GGUF), --host the pod IP and -lv 4 (its
    log); it took -t/-tb from the pod's CPU request, and split -c over -np as the plan said."""
    (container,) = pod.spec.containers
    rendered: list[str] = list(container.args)
    model = Path(flag(real.args, "-m"))
    assert real.args == llamaserver.listening_args(
        llamaserver.with_model(rendered, model), pod.status.pod_ip, int(flag(rendered, "--port"))
    )
    cpus = int(container.resources.requests["cpu"])
    assert real.threads() == (cpus, cpus), real.log
    context, parallel = int(flag(rendered, "-c")), int(flag(rendered, "-np"))
    assert real.slots() == (parallel, context // parallel), real.log


class Requests:
    """Clients that each send chat completions to one URL, one after another, until stopped."""

    def __init__(self, url: str, clients: int, max_tokens: int) -> None:
        self.url, self.max_tokens = url, max_tokens
        self.stop = threading.Event()
        self.statuses: Counter[int] = Counter()
        self.threads = [threading.Thread(target=self._ask, daemon=True) for _ in range(clients)]

    def _ask(self) -> None:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": "Count to ten."}],
            "max_tokens": self.max_tokens,
        }
        with requests.Session() as session:
            while not self.stop.is_set():
                reply = session.post(f"{self.url}/v1/chat/completions", json=body, timeout=60)
                self.statuses[reply.status_code] += 1

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
