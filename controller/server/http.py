"""The management server's HTTP apps: health probes and the JSON API.

DESIGN.md section 11. The serve command builds these once at start-up from its
`ServerView` (`controller.server.view`) and runs each on its own listener
(`controller.server.listeners`): `health_app` on `gitops.listen.health` (8090),
`api_app` on `gitops.listen.api` (8080). The metrics app lives with the metrics
(`controller.server.metrics.metrics_app`, re-exported here so the serve command finds
every app in one module). `docs/endpoints.md` documents the responses.

Endpoints that read the view are plain functions, so starlette runs them in a worker
thread: a view call may block on Redis, and must not stall the listener's event loop.
Every error, including unknown routes, is a JSON body `{"error": <CamelCase>, "detail": …}`
so clients parse one shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from controller.server.metrics import metrics_app
from controller.server.view import ClusterState, SafeModeState, ServerView

__all__ = ["api_app", "api_routes", "health_app", "metrics_app", "rfc3339"]


def health_app(view: ServerView) -> Starlette:
    """`/healthz` (liveness) and `/readyz` (readiness) over `view`."""

    async def healthz(request: Request) -> Response:
        # Liveness only says the process still serves requests: restarting the server
        # because Redis is down or a cluster is awaited would not fix either.
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> Response:
        # Ready means "may be sent traffic that needs the store and fresh config":
        # Redis reachable and the safe-mode gate open (DESIGN.md sections 4 and 11).
        redis = view.redis_ok()
        safe = view.safe_mode()
        ready = redis and not safe.active
        body = {
            "ready": ready,
            "redis": redis,
            "leader": view.leader(),
            "safeMode": _safe_mode_json(safe),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return _app(routes)


def api_routes(view: ServerView) -> list[BaseRoute]:
    """The API's routes. Webhooks and reports are added here as later issues build them."""

    def list_clusters(request: Request) -> Response:
        clusters = sorted(view.clusters(), key=lambda c: c.name)
        return JSONResponse(
            {
                "clusters": [_cluster_json(c) for c in clusters],
                "revision": view.config_revision(),
                "leader": view.leader(),
                "safeMode": _safe_mode_json(view.safe_mode()),
            }
        )

    def get_cluster(request: Request) -> Response:
        name = request.path_params["name"]
        for cluster in view.clusters():
            if cluster.name == name:
                return JSONResponse(_cluster_json(cluster))
        return _error(HTTPStatus.NOT_FOUND, f"no registered cluster named {name!r}")

    return [
        Route("/api/clusters", list_clusters, methods=["GET"]),
        Route("/api/clusters/{name}", get_cluster, methods=["GET"]),
    ]


def api_app(view: ServerView, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The JSON API (`/api/...`) over `view`, plus `extra_routes` mounted beside it."""
    return _app([*api_routes(view), *extra_routes])


def rfc3339(epoch: float | None) -> str | None:
    """`epoch` seconds as RFC 3339 UTC to the second (`2024-05-01T12:00:00Z`), or None.

    Whole seconds in `Z` form, as Kubernetes writes timestamps, so API clients can
    parse both with one format.
    """
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cluster_json(cluster: ClusterState) -> dict[str, Any]:
    return {
        "name": cluster.name,
        "connected": cluster.connected,
        "lastSnapshot": rfc3339(cluster.last_snapshot),
        "outputVersion": cluster.output_version,
        "appliedVersion": cluster.applied_version,
        "drift": cluster.drift,
        "awaited": cluster.awaited,
        "pushesFrozen": cluster.pushes_frozen,
        "objects": cluster.objects,
        "errors": cluster.errors,
        "publishedRevision": cluster.published_revision,
        "appliedRevision": cluster.applied_revision,
        "refused": (
            {"revision": cluster.refused_revision, "reason": cluster.refused}
            if cluster.refused
            else None
        ),
        "heldRevision": cluster.held_revision,
    }


def _safe_mode_json(safe: SafeModeState) -> dict[str, Any]:
    return {
        "active": safe.active,
        "awaited": list(safe.awaited),
        "windowExpires": rfc3339(safe.window_expires),
        "reason": safe.reason,
    }


def _app(routes: Sequence[BaseRoute]) -> Starlette:
    return Starlette(
        routes=list(routes),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )


def _error(status: HTTPStatus, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    # `NotFound`, `MethodNotAllowed`: the status phrase in the CamelCase reason style.
    reason = status.phrase.title().replace(" ", "").replace("-", "")
    return JSONResponse(
        {"error": reason, "detail": detail}, status_code=status.value, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    detail = exc.detail if exc.detail != status.phrase else f"{request.method} {request.url.path}"
    return _error(status, detail, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after answering, so uvicorn logs the traceback; the client only
    # learns that it was our fault.
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "the server failed to answer; see its log")
