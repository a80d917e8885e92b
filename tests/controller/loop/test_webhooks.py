"""Webhook routes on the real API app and a real listener, driven by httpx and raw sockets.

Every test records the events `on_event` received, so "refused" always also means "no
event". The raw-socket tests send less body than they declare (or an endless chunked
body): a handler that read the whole body would never answer, so an answer proves it
stopped at the cap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from controller.loop.webhooks import HookEvent, webhook_routes
from controller.secrets import SecretsDir
from controller.server.http import api_app
from controller.server.listeners import HttpListeners
from controller.server.view import ClusterState, SafeModeState
from gitops.helm.gitops_block import Webhooks

SECRET = "s3cret-hook-key"
CAP = 4096
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
PUSH = json.dumps({"ref": "refs/heads/main", "after": SHA, "before": "0" * 40}).encode()


class NoView:
    def redis_ok(self) -> bool:
        return True

    def safe_mode(self) -> SafeModeState:
        return SafeModeState(active=False, awaited=(), window_expires=None, reason="")

    def clusters(self) -> list[ClusterState]:
        return []

    def config_revision(self) -> str | None:
        return None

    def leader(self) -> bool:
        return True


@dataclass
class Hooks:
    client: httpx.Client
    port: int
    events: list[HookEvent] = field(default_factory=list)


@contextmanager
def serve(secrets: SecretsDir | None, settings: Webhooks) -> Iterator[Hooks]:
    events: list[HookEvent] = []
    lock = threading.Lock()

    def on_event(event: HookEvent) -> None:
        with lock:
            events.append(event)

    app = api_app(NoView(), extra_routes=webhook_routes(secrets, settings, on_event))
    with HttpListeners() as listeners:
        port = listeners.start("api", app, "127.0.0.1:0")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Hooks(client, port, events)


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Hooks]:
    secrets = SecretsDir(tmp_path / "secrets")
    for provider in ("github", "gitea", "gitlab", "generic"):
        secrets.write("webhooks", provider, f"{SECRET}\n".encode())
    with serve(secrets, Webhooks(secret_name="webhooks", max_body_bytes=CAP)) as served:
        yield served


def sign(body: bytes, key: str = SECRET) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


# -- accepted -------------------------------------------------------------------------------


def test_github_push_with_a_valid_signature_is_one_event(hooks: Hooks) -> None:
    answer = hooks.client.post(
        "/hooks/github",
        content=PUSH,
        headers={"X-Hub-Signature-256": f"sha256={sign(PUSH)}", "X-GitHub-Event": "push"},
    )
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted", "ref": "refs/heads/main", "sha": SHA}
    assert hooks.events == [HookEvent("github", "refs/heads/main", SHA)]


@pytest.mark.parametrize("header", ["X-Gitea-Signature", "X-Hub-Signature-256"])
def test_gitea_accepts_its_own_header_and_githubs(hooks: Hooks, header: str) -> None:
    value = sign(PUSH) if header == "X-Gitea-Signature" else f"sha256={sign(PUSH)}"
    answer = hooks.client.post("/hooks/gitea", content=PUSH, headers={header: value})
    assert answer.status_code == 202
    assert hooks.events == [HookEvent("gitea", "refs/heads/main", SHA)]


def test_gitlab_push_with_the_token_is_one_event(hooks: Hooks) -> None:
    body = json.dumps({"ref": "refs/heads/dev", "checkout_sha": SHA, "after": "x"}).encode()
    answer = hooks.client.post("/hooks/gitlab", content=body, headers={"X-Gitlab-Token": SECRET})
    assert answer.status_code == 202
    assert hooks.events == [HookEvent("gitlab", "refs/heads/dev", SHA)]


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {SECRET}"}, {"X-Mesh-Gitops-Token": SECRET}],
    ids=["bearer", "token-header"],
)
def test_generic_accepts_either_token_header_and_an_empty_body(
    hooks: Hooks, headers: dict[str, str]
) -> None:
    assert hooks.client.post("/hooks/generic", headers=headers).status_code == 202
    body = json.dumps({"ref": "main", "sha": SHA}).encode()
    assert hooks.client.post("/hooks/generic", content=body, headers=headers).status_code == 202
    assert hooks.events == [HookEvent("generic", None, None), HookEvent("generic", "main", SHA)]


def test_a_github_ping_is_answered_but_starts_nothing(hooks: Hooks) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    headers = {"X-Hub-Signature-256": f"sha256={sign(body)}", "X-GitHub-Event": "ping"}
    assert hooks.client.post("/hooks/github", content=body, headers=headers).status_code == 200
    assert hooks.events == []


# -- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "headers"),
    [
        ("github", {}),
        ("github", {"X-Hub-Signature-256": f"sha256={sign(PUSH, 'wrong')}"}),
        ("github", {"X-Hub-Signature-256": sign(PUSH)}),  # no `sha256=` prefix
        ("gitea", {"X-Gitea-Signature": sign(PUSH + b" ")}),
        ("gitlab", {}),
        ("gitlab", {"X-Gitlab-Token": SECRET + "x"}),
        ("generic", {"Authorization": "Basic " + SECRET}),
        ("generic", {"X-Mesh-Gitops-Token": "nope"}),
    ],
)
def test_a_missing_or_wrong_signature_is_401_and_no_event(
    hooks: Hooks, provider: str, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    answer = hooks.client.post(f"/hooks/{provider}", content=PUSH, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthorized"
    assert hooks.events == []
    assert SECRET not in caplog.text and SECRET not in answer.text


def test_a_verified_body_that_is_not_json_is_400(hooks: Hooks) -> None:
    body = b"ref=main"
    headers = {"X-Hub-Signature-256": f"sha256={sign(body)}"}
    assert hooks.client.post("/hooks/github", content=body, headers=headers).status_code == 400
    assert hooks.events == []


def test_a_declared_oversize_body_is_413_before_it_is_sent(hooks: Hooks) -> None:
    answer = raw(hooks.port, "github", f"Content-Length: {CAP * 100}\r\n", b"x" * 100)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert hooks.events == []


def test_a_chunked_body_is_cut_off_at_the_cap(hooks: Hooks) -> None:
    # Never sends the final zero-length chunk: only a handler that stops counting at the
    # cap can answer.
    chunk = b"x" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(CAP // 1024 + 2))
    signature = f"X-Hub-Signature-256: sha256={sign(b'')}\r\n"
    answer = raw(hooks.port, "github", "Transfer-Encoding: chunked\r\n" + signature, body)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert hooks.events == []


def test_an_oversize_body_within_a_normal_client_is_413(hooks: Hooks) -> None:
    body = b"{" + b" " * CAP + b"}"
    headers = {"X-Hub-Signature-256": f"sha256={sign(body)}"}
    assert hooks.client.post("/hooks/github", content=body, headers=headers).status_code == 413
    assert hooks.events == []


def test_providers_without_a_key_are_404(tmp_path: Path) -> None:
    secrets = SecretsDir(tmp_path / "secrets")
    secrets.write("webhooks", "gitlab", SECRET.encode())
    with serve(secrets, Webhooks(secret_name="webhooks")) as served:
        github = {"X-Hub-Signature-256": f"sha256={sign(PUSH)}"}
        assert served.client.post("/hooks/github", content=PUSH, headers=github).status_code == 404
        gitlab = {"X-Gitlab-Token": SECRET}
        assert served.client.post("/hooks/gitlab", content=PUSH, headers=gitlab).status_code == 202
        assert [e.provider for e in served.events] == ["gitlab"]


def test_without_a_secret_every_hook_is_404() -> None:
    with serve(None, Webhooks()) as served:
        for provider in ("github", "gitea", "gitlab", "generic"):
            assert served.client.post(f"/hooks/{provider}", content=PUSH).status_code == 404
        assert served.client.get("/hooks/github").status_code == 405
        assert served.events == []


def raw(port: int, provider: str, headers: str, body: bytes) -> bytes:
    """POST by hand on a socket and return what the server answers before closing."""
    head = f"POST /hooks/{provider} HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    return received
