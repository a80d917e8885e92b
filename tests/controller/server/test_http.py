"""The health and API apps, served by real listeners and read with httpx.

The server is stood in for by `FakeView`, a small implementation of our own `ServerView`
Protocol whose fields each test sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.server.http import api_app, health_app, rfc3339
from controller.server.listeners import HttpListeners
from controller.server.view import ClusterState, SafeModeState

#: 2024-05-01T12:00:00Z
NOON = 1714564800.0

OPEN = SafeModeState(active=False, awaited=(), window_expires=None, reason="all pushed")
WAITING = SafeModeState(
    active=True,
    awaited=("cluster2", "cluster3"),
    window_expires=NOON + 90,
    reason="start window: waiting up to 90s more for cluster2, cluster3",
)


@dataclass
class FakeView:
    redis: bool = True
    safe: SafeModeState = OPEN
    states: list[ClusterState] = field(default_factory=list)
    revision: str | None = "0123abcd"
    broken: bool = False

    def redis_ok(self) -> bool:
        return self.redis

    def safe_mode(self) -> SafeModeState:
        return self.safe

    def clusters(self) -> list[ClusterState]:
        if self.broken:
            raise RuntimeError("fleet state unavailable")
        return list(self.states)

    def config_revision(self) -> str | None:
        return self.revision

    def leader(self) -> bool:
        return True


@dataclass
class Served:
    view: FakeView
    health: httpx.Client
    api: httpx.Client


def cluster(name: str, **changes: object) -> ClusterState:
    values: dict[str, object] = {
        "name": name,
        "connected": True,
        "last_snapshot": NOON,
        "output_version": 7,
        "applied_version": 6,
        "drift": 0,
        "awaited": False,
    }
    values.update(changes)
    return ClusterState(**values)  # type: ignore[arg-type]


@pytest.fixture
def served() -> Iterator[Served]:
    view = FakeView()
    with HttpListeners() as listeners:
        health = listeners.start("health", health_app(view), "127.0.0.1:0")
        api = listeners.start("api", api_app(view), "127.0.0.1:0")
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{health}") as health_client,
            httpx.Client(base_url=f"http://127.0.0.1:{api}") as api_client,
        ):
            yield Served(view, health_client, api_client)


def test_healthz_is_ok_whatever_redis_and_safe_mode_say(served: Served) -> None:
    served.view.redis = False
    served.view.safe = WAITING
    response = served.health.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_redis_answers_and_safe_mode_is_satisfied(served: Served) -> None:
    response = served.health.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "redis": True,
        "leader": True,
        "safeMode": {"active": False, "awaited": [], "windowExpires": None, "reason": "all pushed"},
    }


def test_readyz_is_503_naming_the_awaited_clusters_in_safe_mode(served: Served) -> None:
    served.view.safe = WAITING
    response = served.health.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "ready": False,
        "redis": True,
        "leader": True,
        "safeMode": {
            "active": True,
            "awaited": ["cluster2", "cluster3"],
            "windowExpires": "2024-05-01T12:01:30Z",
            "reason": "start window: waiting up to 90s more for cluster2, cluster3",
        },
    }


def test_readyz_is_503_while_redis_is_unreachable(served: Served) -> None:
    served.view.redis = False
    response = served.health.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert response.json()["redis"] is False
    assert response.json()["safeMode"]["active"] is False


def test_readyz_follows_the_view_from_request_to_request(served: Served) -> None:
    served.view.safe = WAITING
    assert served.health.get("/readyz").status_code == 503
    served.view.safe = OPEN
    assert served.health.get("/readyz").status_code == 200


def test_awaited_clusters_with_a_start_window_over_stay_unready_only_while_active(
    served: Served,
) -> None:
    # Window over: translation runs without cluster2, which gets no pushes. The server is
    # ready; the cluster's own row says it is frozen.
    served.view.safe = SafeModeState(False, ("cluster2",), NOON, "start window over")
    served.view.states = [cluster("cluster2", awaited=True, pushes_frozen=True)]
    assert served.health.get("/readyz").status_code == 200
    row = served.api.get("/api/clusters/cluster2").json()
    assert (row["awaited"], row["pushesFrozen"]) == (True, True)


def test_api_lists_clusters_sorted_by_name_with_the_revision(served: Served) -> None:
    served.view.states = [
        cluster(
            "cluster2",
            connected=False,
            last_snapshot=None,
            output_version=None,
            applied_version=None,
            awaited=True,
        ),
        cluster("cluster1", drift=3, last_snapshot=NOON + 0.75),
    ]
    response = served.api.get("/api/clusters")
    assert response.status_code == 200
    assert response.json() == {
        "clusters": [
            {
                "name": "cluster1",
                "connected": True,
                "lastSnapshot": "2024-05-01T12:00:00Z",
                "outputVersion": 7,
                "appliedVersion": 6,
                "drift": 3,
                "awaited": False,
                "pushesFrozen": False,
                "objects": 0,
                "errors": 0,
                "publishedRevision": None,
                "appliedRevision": None,
                "refused": None,
                "heldRevision": None,
            },
            {
                "name": "cluster2",
                "connected": False,
                "lastSnapshot": None,
                "outputVersion": None,
                "appliedVersion": None,
                "drift": 0,
                "awaited": True,
                "pushesFrozen": False,
                "objects": 0,
                "errors": 0,
                "publishedRevision": None,
                "appliedRevision": None,
                "refused": None,
                "heldRevision": None,
            },
        ],
        "revision": "0123abcd",
        "leader": True,
        "safeMode": {"active": False, "awaited": [], "windowExpires": None, "reason": "all pushed"},
    }


def test_api_with_nothing_loaded_yet(served: Served) -> None:
    served.view.revision = None
    body = served.api.get("/api/clusters").json()
    assert (body["clusters"], body["revision"]) == ([], None)


def test_api_returns_one_cluster(served: Served) -> None:
    served.view.states = [cluster("cluster1"), cluster("cluster2", drift=2)]
    response = served.api.get("/api/clusters/cluster2")
    assert response.status_code == 200
    assert response.json()["name"] == "cluster2"
    assert response.json()["drift"] == 2


def test_an_unknown_cluster_is_a_json_404_naming_it(served: Served) -> None:
    served.view.states = [cluster("cluster1")]
    response = served.api.get("/api/clusters/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "NotFound",
        "detail": "no registered cluster named 'nope'",
    }


@pytest.mark.parametrize("path", ["/", "/api", "/api/clusters/a/b", "/healthz"])
def test_unknown_api_routes_are_json_404s(served: Served, path: str) -> None:
    response = served.api.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": f"GET {path}"}


def test_unknown_health_routes_are_json_404s(served: Served) -> None:
    response = served.health.get("/api/clusters")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"


def test_a_wrong_method_is_a_json_405_with_allow(served: Served) -> None:
    response = served.api.post("/api/clusters", json={})
    assert response.status_code == 405
    assert response.json() == {"error": "MethodNotAllowed", "detail": "POST /api/clusters"}
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_a_failing_view_is_a_json_500(served: Served) -> None:
    served.view.broken = True
    response = served.api.get("/api/clusters")
    assert response.status_code == 500
    assert response.json()["error"] == "InternalServerError"
    # Internals stay in the server's log, not in the answer.
    assert "fleet state unavailable" not in response.text


def test_extra_routes_are_served_beside_the_api() -> None:
    async def hook(request: Request) -> Response:
        return JSONResponse({"accepted": (await request.json())["ref"]}, status_code=202)

    app = api_app(FakeView(), extra_routes=[Route("/hooks/generic", hook, methods=["POST"])])
    with HttpListeners() as listeners:
        port = listeners.start("api", app, "127.0.0.1:0")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            hooked = client.post("/hooks/generic", json={"ref": "main"})
            listed = client.get("/api/clusters")
    assert (hooked.status_code, hooked.json()) == (202, {"accepted": "main"})
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (None, None),
        (0.0, "1970-01-01T00:00:00Z"),
        (NOON, "2024-05-01T12:00:00Z"),
        (NOON + 59.999, "2024-05-01T12:00:59Z"),
    ],
)
def test_rfc3339_is_utc_whole_seconds_with_z(epoch: float | None, text: str | None) -> None:
    assert rfc3339(epoch) == text


def test_api_rows_say_what_was_published_applied_refused_and_held(served: Served) -> None:
    served.view.safe = WAITING
    served.view.states = [
        cluster(
            "cluster1",
            objects=11,
            errors=2,
            published_revision="a" * 40,
            applied_revision=None,
            refused="would prune every owned object",
            refused_revision="b" * 40,
            held_revision="c" * 40,
        )
    ]
    body = served.api.get("/api/clusters").json()
    row = body["clusters"][0]
    assert (row["objects"], row["errors"]) == (11, 2)
    assert (row["publishedRevision"], row["appliedRevision"]) == ("a" * 40, None)
    assert row["refused"] == {"revision": "b" * 40, "reason": "would prune every owned object"}
    assert row["heldRevision"] == "c" * 40
    assert body["safeMode"]["awaited"] == ["cluster2", "cluster3"]
    assert body["leader"] is True
