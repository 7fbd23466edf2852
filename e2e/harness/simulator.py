"""Client of the serving simulator's control API (e2e/servingsim): set a pod's load, read what it served."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.http import http_json, require_loopback_url
from harness.waiting import wait_for


class ServingSim:
    """The simulator behind one plane, at the control URL ``up`` wrote to <state>/servingsim.url."""

    def __init__(self, url: str) -> None:
        self.url = require_loopback_url(url.rstrip("/"))

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The simulated pod (load, request counts, listening ports), or None if unknown."""
        status, doc = http_json("GET", f"{self.url}/pods/{namespace}/{name}")
        if status == 404:
            return None
        assert status == 200, doc
        return dict(doc)

    def set_load(self, namespace: str, name: str, **load: Any) -> dict[str, Any]:
        """PUT waiting/running/latencySeconds/healthy/loading/kvCacheUsage (partial)."""
        status, doc = http_json("PUT", f"{self.url}/pods/{namespace}/{name}", load)
        if status != 200:
            raise AssertionError(f"servingsim refused load {load} for {namespace}/{name}: {status} {doc}")
        return dict(doc)

    def set_hostile(self, namespace: str, name: str, behaviour: str | None, location: str = "") -> dict[str, Any]:
        """Make one pod misbehave (e2e/servingsim/hostile.py lists how); None makes it behave again."""
        body = {"hostile": behaviour} | ({"location": location} if location else {})
        status, doc = http_json("PUT", f"{self.url}/pods/{namespace}/{name}/hostile", body)
        if status != 200:
            raise AssertionError(f"servingsim refused {body} for {namespace}/{name}: {status} {doc}")
        return dict(doc)

    def start_traffic(self, namespace: str, instance: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Feed requests to the pods of one GemmaDeployment over time (e2e/servingsim/traffic.py)."""
        status, doc = http_json("PUT", f"{self.url}/traffic/{namespace}/{instance}", dict(body), timeout=30.0)
        if status != 200:
            raise AssertionError(f"servingsim refused traffic for {namespace}/{instance}: {status} {doc}")
        return dict(doc)

    def traffic(self, namespace: str, instance: str) -> dict[str, Any]:
        """Where the traffic stands: requests arrived and finished, each pod's queue, and a per-second history."""
        status, doc = http_json("GET", f"{self.url}/traffic/{namespace}/{instance}")
        assert status == 200, doc
        return dict(doc)

    def stop_traffic(self, namespace: str, instance: str) -> None:
        status, doc = http_json("DELETE", f"{self.url}/traffic/{namespace}/{instance}")
        assert status == 200, doc

    def llama_server(self) -> str | None:
        """The real llama-server's build (its --version line) that serves llama.cpp pods, or None."""
        status, doc = http_json("GET", f"{self.url}/healthz")
        assert status == 200, doc
        build = doc.get("llamaServer")
        return str(build) if build else None

    def serve_llamacpp(self, namespace: str, mode: str) -> None:
        """ "simulated": llama.cpp pods that start in the namespace from now on are simulated, so that their load can
        be set; "real" (the default): each runs the real llama-server."""
        status, doc = http_json("PUT", f"{self.url}/namespaces/{namespace}", {"llamaServer": mode})
        assert status == 200, doc

    def wait_for_pod(self, namespace: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the simulator serves the pod on all its ports."""

        def ready() -> dict[str, Any] | None:
            pod = self.pod(namespace, name)
            if pod and pod["listening"] and sorted(pod["listening"]) == sorted(pod["ports"]):
                return pod
            return None

        return wait_for(ready, timeout=timeout, message=f"servingsim to serve pod {namespace}/{name}")


def base_url(pod: Mapping[str, Any], port: int | None = None) -> str:
    """http://podIP:port of a simulated pod (from ServingSim.pod)."""
    chosen = port if port is not None else int(pod["ports"][0])
    return require_loopback_url(f"http://{pod['ip']}:{chosen}")
