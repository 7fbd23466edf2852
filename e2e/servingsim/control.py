"""The control API tests use to read and set each simulated pod's load."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .fleet import REAL, SIMULATED, Fleet, RealServerPod, UnknownPod
from .hostile import parse_hostility
from .state import LoadFieldError, parse_load_update
from .traffic import Traffics, parse_traffic

FLEET_KEY = web.AppKey("fleet", Fleet)
TRAFFIC_KEY = web.AppKey("traffic", Traffics)


def _json(status: int, document: Any) -> web.Response:
    return web.json_response(document, status=status)


def _not_found(namespace: str, name: str) -> web.Response:
    return _json(
        404,
        {"error": f"pod {namespace}/{name} is not simulated (not Running with a 127.x IP, or unknown)"},
    )


async def healthz(request: web.Request) -> web.Response:
    fleet = request.app[FLEET_KEY]
    refused = [{"namespace": r.namespace, "name": r.name, "reason": r.reason} for r in fleet.refused.values()]
    return _json(
        200,
        {
            "ok": True,
            "synced": fleet.synced,
            "pods": len(fleet.entries),
            "refused": refused,
            "llamaServer": fleet.llama.build if fleet.llama is not None else None,
        },
    )


async def list_pods(request: web.Request) -> web.Response:
    fleet = request.app[FLEET_KEY]
    return _json(200, [entry.describe() for _, entry in sorted(fleet.entries.items())])


async def get_pod(request: web.Request) -> web.Response:
    fleet = request.app[FLEET_KEY]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        return _json(200, fleet.get(namespace, name).describe())
    except UnknownPod:
        return _not_found(namespace, name)


async def put_pod(request: web.Request) -> web.Response:
    fleet = request.app[FLEET_KEY]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        document = json.loads(await request.read())
    except ValueError as exc:
        return _json(400, {"error": f"body is not valid JSON: {exc}", "field": "(body)"})
    try:
        update = parse_load_update(document)
    except LoadFieldError as exc:
        return _json(400, {"error": str(exc), "field": exc.field})
    try:
        entry = await fleet.update_load(namespace, name, update)
    except UnknownPod:
        return _not_found(namespace, name)
    except RealServerPod as exc:
        return _json(409, {"error": str(exc)})
    return _json(200, entry.describe())


async def put_hostile(request: web.Request) -> web.Response:
    """Make one pod misbehave (servingsim/hostile.py), or behave again with {"hostile": null}."""
    fleet = request.app[FLEET_KEY]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        hostility = parse_hostility(json.loads(await request.read()))
    except ValueError as exc:  # LoadFieldError included
        return _json(400, {"error": str(exc), "field": getattr(exc, "field", "(body)")})
    try:
        entry, server = fleet.simulated(namespace, name)
    except UnknownPod:
        return _not_found(namespace, name)
    except RealServerPod as exc:
        return _json(409, {"error": str(exc)})
    server.hostility = hostility
    return _json(200, entry.describe())


async def put_namespace(request: web.Request) -> web.Response:
    """{"llamaServer": "simulated" | "real"}: how the namespace's llama.cpp pods that start from now on are served."""
    fleet = request.app[FLEET_KEY]
    try:
        document = json.loads(await request.read())
    except ValueError as exc:
        return _json(400, {"error": f"body is not valid JSON: {exc}", "field": "(body)"})
    mode = document.get("llamaServer") if isinstance(document, dict) else None
    if mode not in (SIMULATED, REAL) or len(document) != 1:
        return _json(400, {"error": f'expected {{"llamaServer": "{SIMULATED}" | "{REAL}"}}', "field": "llamaServer"})
    namespace = request.match_info["namespace"]
    fleet.set_namespace_mode(namespace, mode)
    return _json(200, {"namespace": namespace, "llamaServer": mode})


async def put_traffic(request: web.Request) -> web.Response:
    """Feed requests to the pods of one GemmaDeployment over time (servingsim/traffic.py), replacing any before."""
    namespace, instance = request.match_info["namespace"], request.match_info["instance"]
    try:
        document = json.loads(await request.read())
    except ValueError as exc:
        return _json(400, {"error": f"body is not valid JSON: {exc}", "field": "(body)"})
    try:
        plan = parse_traffic(document)
    except LoadFieldError as exc:
        return _json(400, {"error": str(exc), "field": exc.field})
    traffic = await request.app[TRAFFIC_KEY].start(namespace, instance, plan)
    return _json(200, traffic.describe())


async def get_traffic(request: web.Request) -> web.Response:
    namespace, instance = request.match_info["namespace"], request.match_info["instance"]
    traffic = request.app[TRAFFIC_KEY].get(namespace, instance)
    if traffic is None:
        return _json(404, {"error": f"no traffic for {namespace}/{instance}"})
    return _json(200, traffic.describe())


async def delete_traffic(request: web.Request) -> web.Response:
    namespace, instance = request.match_info["namespace"], request.match_info["instance"]
    await request.app[TRAFFIC_KEY].stop(namespace, instance)
    return _json(200, {"namespace": namespace, "instance": instance})


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(exc.status, {"error": f"{exc.reason}: {request.method} {request.path}"})


def make_app(fleet: Fleet) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[FLEET_KEY] = fleet
    traffics = Traffics(fleet.ready_pods)
    app[TRAFFIC_KEY] = traffics

    async def stop_traffic(_: web.Application) -> None:
        await traffics.close()

    app.on_cleanup.append(stop_traffic)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", list_pods)
    app.router.add_get("/pods/{namespace}/{name}", get_pod)
    app.router.add_put("/pods/{namespace}/{name}", put_pod)
    app.router.add_put("/pods/{namespace}/{name}/hostile", put_hostile)
    app.router.add_put("/namespaces/{namespace}", put_namespace)
    app.router.add_put("/traffic/{namespace}/{instance}", put_traffic)
    app.router.add_get("/traffic/{namespace}/{instance}", get_traffic)
    app.router.add_delete("/traffic/{namespace}/{instance}", delete_traffic)
    return app
