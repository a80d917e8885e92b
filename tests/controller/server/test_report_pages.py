"""`GET /reports/<sha>`, served by a real API listener and read with httpx: content
negotiation, the JSON shape, HTML escaping of hostile values, and the error answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from controller.server.commit_reports import CommitReports
from controller.server.http import api_app
from controller.server.listeners import HttpListeners
from controller.server.report_pages import base_url, report_routes, wants_json
from controller.store import Store, connect, retrying_for
from gitops.helm.models import Redis, RedisConnection
from tests.controller.server.test_http import FakeView
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer

redis_server = redis_servers.redis_server

SHA = "0123456789abcdef0123456789abcdef01234567"
HOSTILE = "<script>alert(1)</script>"

TRANSLATION = {
    "state": "failure",
    "description": "3 accepted, 1 invalid: RouteTable bookinfo/x",
    "summary": "3 accepted, 1 invalid",
    "counts": {"ACCEPTED": 3, "WARNING": 0, "FAILED": 0, "INVALID": 1},
    "resources": [
        {
            "kind": "RouteTable",
            "namespace": "bookinfo",
            "name": HOSTILE,
            "state": "INVALID",
            "file": "bookinfo/<b>routes</b>.yaml",
            "line": 7,
            "reasons": [{"reason": "DestinationNotFound", "message": f"no {HOSTILE}"}],
        }
    ],
    "diagnostics": [
        {"severity": "error", "reason": "ParseError", "message": "bad", "file": "x.yaml", "line": 1}
    ],
}
SYNC = {
    "clusters": {
        "cluster1": {
            "state": "failure",
            "description": "rejected version 4: boom",
            "publishedVersion": 4,
            "appliedVersion": 3,
            "objects": 12,
            "drift": 0,
            "errors": [{"object": "VirtualService bookinfo/a", "message": f"'{HOSTILE}' & more"}],
        },
        "cluster2": {
            "state": "success",
            "description": "12 objects applied, version 4",
            "publishedVersion": 4,
            "appliedVersion": 4,
            "objects": 12,
            "drift": 0,
            "errors": [],
        },
    }
}


@pytest.fixture
def reports() -> CommitReports:
    made = CommitReports()
    made.put(SHA, "translation", TRANSLATION)
    made.put(SHA, "sync", SYNC)
    made.put(SHA, "preview", {"summary": HOSTILE}, markdown=f"## {HOSTILE}\n<details>x</details>")
    return made


@contextmanager
def serve(reports: CommitReports) -> Iterator[httpx.Client]:
    with HttpListeners() as listeners:
        app = api_app(FakeView(), extra_routes=report_routes(reports))
        port = listeners.start("api", app, "127.0.0.1:0")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client


@pytest.fixture
def api(reports: CommitReports) -> Iterator[httpx.Client]:
    with serve(reports) as client:
        yield client


def test_json_by_suffix_or_accept_header_has_every_section(api: httpx.Client) -> None:
    by_suffix = api.get(f"/reports/{SHA}.json")
    by_header = api.get(f"/reports/{SHA}", headers={"Accept": "application/json"})

    for response in (by_suffix, by_header):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["vary"] == "Accept"
        assert response.json() == {
            "sha": SHA,
            "sections": {"translation": TRANSLATION, "sync": SYNC, "preview": {"summary": HOSTILE}},
            "markdown": {"preview": f"## {HOSTILE}\n<details>x</details>"},
        }
    assert list(by_suffix.json()["sections"]) == ["translation", "sync", "preview"]


def test_html_by_default_escapes_every_value(api: httpx.Client) -> None:
    for accept in (None, "*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
        headers = {"Accept": accept} if accept else {}
        response = api.get(f"/reports/{SHA}", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert "<script" not in page
        assert "<details>" not in page and "<b>routes" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "bookinfo/&lt;b&gt;routes&lt;/b&gt;.yaml:7" in page
        assert "&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27; &amp; more" in page
        for shown in ("cluster1", "cluster2", "DestinationNotFound", "ParseError", "INVALID"):
            assert shown in page
        assert "script-src" not in response.headers["content-security-policy"]
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_an_unknown_commit_is_404_and_a_malformed_one_400(api: httpx.Client) -> None:
    unknown = api.get(f"/reports/{'f' * 40}")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "NotFound", "detail": f"no report for commit {'f' * 40}"}
    for bad in ("HEAD", SHA[:12], f"{SHA}0", "g" * 40, f"{SHA}.html"):
        response = api.get(f"/reports/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"] == "BadRequest"
    assert api.get(f"/reports/{SHA.upper()}.json").json()["sha"] == SHA
    assert api.post(f"/reports/{SHA}").status_code == 405


def test_only_redis_could_answer_and_it_cannot_is_503(redis_server: RedisServer) -> None:
    client = connect(Redis.model_validate({"address": redis_server.address}), None)
    try:
        store = Store(client, retrying=retrying_for(RedisConnection(max_retries=0)))
        reports = CommitReports(store=store)
        redis_server.kill()
        with serve(reports) as api:
            response = api.get(f"/reports/{SHA}.json")
    finally:
        client.close()
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailable"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json, text/html;q=0.9", True),
        ("text/html, application/json", False),
        ("text/html;q=0.5, application/json;q=0.6", True),
        ("application/json;q=0", False),
        ("*/*", False),
        ("", False),
        ("application/json;q=oops", False),
    ],
)
def test_accept_header_ranking(accept: str, expected: bool) -> None:
    assert wants_json(accept) is expected


def test_base_url_prefers_the_setting_then_the_listener() -> None:
    assert base_url("https://gitops.example.com/", "0.0.0.0:8080", 8080) == (
        "https://gitops.example.com"
    )
    assert base_url(None, "127.0.0.1:0", 41238) == "http://127.0.0.1:41238"
    assert base_url(None, "0.0.0.0:8080", 8080) == f"http://{socket.gethostname()}:8080"
    assert base_url(None, "::1:8080", 8080) == "http://[::1]:8080"
