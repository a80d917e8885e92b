"""`controller.server.api_auth.guarded` on the real API app and a real listener (httpx).

The guarded endpoint records every call, so "refused" always also means "the endpoint
did not run". The end-to-end side (a real server, `POST /api/sync`, `gitops sync`) is
`tests/controller/runtime/test_api_sync_auth.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.secrets import SecretError, SecretsDir
from controller.server.api_auth import guarded
from controller.server.http import api_app
from controller.server.listeners import HttpListeners
from gitops.helm.gitops_block import Api
from tests.controller.loop.test_webhooks import NoView

TOKEN = "api-token-5f1c0e7a"


@dataclass
class Served:
    client: httpx.Client
    secrets: SecretsDir
    calls: list[str] = field(default_factory=list)


@contextmanager
def _serve(secrets: SecretsDir, settings: Api) -> Iterator[Served]:
    served_calls: list[str] = []

    async def write(request: Request) -> Response:
        served_calls.append(request.url.path)
        return JSONResponse({"done": True}, status_code=HTTPStatus.ACCEPTED)

    endpoint = guarded("POST /api/write", write, secrets, settings)
    app = api_app(NoView(), extra_routes=[Route("/api/write", endpoint, methods=["POST"])])
    with HttpListeners() as listeners:
        port = listeners.start("api", app, "127.0.0.1:0")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Served(client, secrets, served_calls)


@pytest.fixture
def secrets(tmp_path: Path) -> SecretsDir:
    made = SecretsDir(tmp_path / "secrets")
    made.write("api-token", "token", f"{TOKEN}\n".encode())
    return made


@pytest.fixture
def api(secrets: SecretsDir) -> Iterator[Served]:
    with _serve(secrets, Api(token_secret="api-token")) as served:
        yield served


def _refused(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "detail": detail}
    assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_token_the_write_is_refused_and_does_not_run(api: Served) -> None:
    _refused(api.client.post("/api/write"), "missing Authorization: Bearer header")
    assert api.calls == []


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer x", f"bearer  {TOKEN.upper()}"],
)
def test_a_wrong_token_is_refused(api: Served, header: str) -> None:
    _refused(
        api.client.post("/api/write", headers={"Authorization": header}), "token does not match"
    )
    assert api.calls == []


@pytest.mark.parametrize("header", [f"Basic {TOKEN}", TOKEN, "Bearer", "Token abc"])
def test_a_token_not_sent_as_bearer_is_missing(api: Served, header: str) -> None:
    response = api.client.post("/api/write", headers={"Authorization": header})
    _refused(response, "missing Authorization: Bearer header")
    assert api.calls == []


def test_the_right_token_runs_the_endpoint(api: Served) -> None:
    response = api.client.post("/api/write", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202
    assert response.json() == {"done": True}
    # The scheme is case-insensitive (RFC 7235).
    response = api.client.post("/api/write", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 202
    assert api.calls == ["/api/write", "/api/write"]


def test_a_rotated_token_applies_without_a_restart(api: Served) -> None:
    api.secrets.write("api-token", "token", b"rotated-token")
    old = api.client.post("/api/write", headers={"Authorization": f"Bearer {TOKEN}"})
    _refused(old, "token does not match")
    new = api.client.post("/api/write", headers={"Authorization": "Bearer rotated-token"})
    assert new.status_code == 202
    assert api.calls == ["/api/write"]


def test_a_token_that_becomes_unreadable_refuses_every_write(api: Served) -> None:
    api.secrets.path("api-token", "token").unlink()
    response = api.client.post("/api/write", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailable"
    api.secrets.write("api-token", "token", b"")
    # An empty key would match an empty token: it matches nothing.
    response = api.client.post("/api/write", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    assert api.calls == []


def test_read_endpoints_stay_open(api: Served) -> None:
    response = api.client.get("/api/clusters")
    assert response.status_code == 200
    body = response.json()
    assert (body["clusters"], body["revision"], body["leader"]) == ([], None, True)


def test_the_token_is_never_logged(api: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.client.post("/api/write", headers={"Authorization": "Bearer guessed-wrong-token"})
    api.client.post("/api/write", headers={"Authorization": f"Bearer {TOKEN}"})
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "POST /api/write" in refusals[0] and "127.0.0.1" in refusals[0]
    assert "guessed-wrong-token" not in caplog.text
    assert TOKEN not in caplog.text


def test_without_a_token_secret_the_write_is_open_and_a_warning_says_so(
    secrets: SecretsDir, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.server.api_auth")
    with _serve(secrets, Api()) as served:
        assert served.client.post("/api/write").status_code == 202
        assert served.calls == ["/api/write"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "the API's write endpoint POST /api/write is unauthenticated (gitops.api.tokenSecret "
        "is not set): keep the API listener private"
    ]


def test_a_missing_or_empty_token_key_stops_the_start(tmp_path: Path) -> None:
    async def write(request: Request) -> Response:
        raise AssertionError("never served")

    empty = SecretsDir(tmp_path / "secrets")
    with pytest.raises(SecretError, match="Secret api-token has no key token"):
        guarded("POST /api/write", write, empty, Api(token_secret="api-token"))
    empty.write("api-token", "token", b" \n")
    with pytest.raises(SecretError, match="Secret api-token key token is empty"):
        guarded("POST /api/write", write, empty, Api(token_secret="api-token"))
    with pytest.raises(SecretError, match="needs --secrets DIR"):
        guarded("POST /api/write", write, None, Api(token_secret="api-token"))


def test_an_open_write_endpoint_on_loopback_only_is_not_a_warning(
    secrets: SecretsDir, caplog: pytest.LogCaptureFixture
) -> None:
    # The demo listens on 127.0.0.1: nobody else can reach the endpoint.
    async def write(request: Request) -> Response:
        raise AssertionError("not served here")

    caplog.set_level(logging.INFO, logger="controller.server.api_auth")
    for listen in ("127.0.0.1:8080", "[::1]:0", "localhost:0"):
        guarded("POST /api/write", write, secrets, Api(), listen=listen)
    guarded("POST /api/write", write, secrets, Api(), listen="0.0.0.0:8080")
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.INFO] * 3 + [logging.WARNING]
