"""A stand-in for the Git hosts' commit-status APIs (GitHub, Gitea, GitLab), for tests.

This is not GitHub, Gitea or GitLab: it is a small real HTTP server (ThreadingHTTPServer on
127.0.0.1 and a free port) that speaks the documented wire protocol of the statuses
endpoints only, so `controller.status` is tested through its real HTTP client
(DESIGN.md section 13: Git host status APIs are stood in for, never patched):

    POST /repos/{owner}/{repo}/statuses/{sha}                       GitHub, Gitea
    GET  /repos/{owner}/{repo}/commits/{sha}/statuses               newest first, Link pages
    POST /projects/{id}/statuses/{sha}                              GitLab (`name`)
    GET  /projects/{id}/repository/commits/{sha}/statuses           latest per name

It checks the token (GitHub `Bearer`, Gitea `token`, GitLab `PRIVATE-TOKEN`; 401 otherwise),
answers 422 past `max_per_context` statuses per sha+context (GitHub's "too many
statuses"), and plays queued failures (`fail`) before serving: 5xx, 429, a rate-limit 403
with `X-RateLimit-Remaining: 0` and `Retry-After`. Every request is logged in `calls`;
`posted` is the (sha, context, state) sequence it accepted.

Use the `git_host` fixture (bind it in a test module: `git_host = git_host.git_host`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

TOKEN = "tok-SECRET-4f1c9e"

_GH_POST = re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/([^/]*)$")
_GH_LIST = re.compile(r"^/repos/([^/]+)/([^/]+)/commits/([^/]*)/statuses$")
_GL_POST = re.compile(r"^/projects/([^/]+)/statuses/([^/]*)$")
_GL_LIST = re.compile(r"^/projects/([^/]+)/repository/commits/([^/]*)/statuses$")


@dataclass(frozen=True)
class Call:
    """One request as received: method, path (as sent, still encoded), query and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    code: int


@dataclass
class Failure:
    """A canned answer played instead of serving, `times` times, to matching methods."""

    code: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"message": "stand-in failure"}'
    method: str | None = None


class GitHost:
    """The stand-in's state; `url` is its API base (`prefix` mimics `/api/v3`, `/api/v4`)."""

    def __init__(self, token: str = TOKEN, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix
        self.max_per_context = 1000
        self.calls: list[Call] = []
        self.posted: list[tuple[str, str, str]] = []
        self._failures: list[Failure] = []
        #: (repository-or-project, sha) -> list of stored statuses, oldest first.
        self._statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ids = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{prefix}"

    def fail(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)

    def seed(self, repo: str, sha: str, **status: Any) -> None:
        """Store a status as if someone else had posted it (GitHub/GitLab shape keys)."""
        with self._lock:
            self._store(repo, sha, dict(status))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- serving (called by the handler, under the lock) ------------------------------------

    def _store(self, repo: str, sha: str, status: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        status["id"] = self._ids
        self._statuses.setdefault((repo, sha), []).append(status)
        return status

    def serve(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        # Matched undecoded, as GitLab does: `group%2Fproject` is one path segment.
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        payload = json.loads(body) if body else None
        code, answer, extra = self._answer(method, path, query, headers, payload)
        with self._lock:
            self.calls.append(Call(method, path, query, payload, code))
        return code, answer, extra

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: Any, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith(self.prefix):
            return 404, {"message": "Not Found"}, {}
        path = path[len(self.prefix) :]
        if headers.get("Authorization") not in (f"Bearer {self.token}", f"token {self.token}") and (
            headers.get("PRIVATE-TOKEN") != self.token
        ):
            return 401, {"message": "Bad credentials"}, {}
        with self._lock:
            for failure in self._failures:
                if failure.times > 0 and failure.method in (None, method):
                    failure.times -= 1
                    return failure.code, json.loads(failure.body), dict(failure.headers)
            if method == "POST" and (m := _GH_POST.match(path)):
                return self._post(f"{unquote(m[1])}/{unquote(m[2])}", m[3], payload, "context")
            if method == "GET" and (m := _GH_LIST.match(path)):
                repo = f"{unquote(m[1])}/{unquote(m[2])}"
                return self._list(repo, m[3], query, path, newest_first=True)
            if method == "POST" and (m := _GL_POST.match(path)):
                return self._post(unquote(m[1]), m[2], payload, "name")
            if method == "GET" and (m := _GL_LIST.match(path)):
                return self._list(unquote(m[1]), m[2], query, path, newest_first=False)
        return 404, {"message": "Not Found"}, {}

    def _post(self, repo: str, sha: str, payload: Any, key: str) -> tuple[int, Any, dict[str, str]]:
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            return 404, {"message": "No commit found for SHA"}, {}
        context = str(payload.get(key) or "default")
        same = [s for s in self._statuses.get((repo, sha), []) if s[key] == context]
        if len(same) >= self.max_per_context:
            return 422, {"message": "Validation Failed", "errors": [{"code": "custom"}]}, {}
        state = str(payload["state"])
        stored = {
            key: context,
            "state" if key == "context" else "status": state,
            "description": payload.get("description"),
            "target_url": payload.get("target_url"),
        }
        self.posted.append((sha, context, state))
        return 201, self._store(repo, sha, stored), {}

    def _list(
        self, repo: str, sha: str, query: dict[str, str], path: str, *, newest_first: bool
    ) -> tuple[int, Any, dict[str, str]]:
        items = list(self._statuses.get((repo, sha), []))
        if newest_first:
            items.reverse()
        elif query.get("all") != "true":
            latest: dict[str, dict[str, Any]] = {}
            for item in items:
                latest[item["name"]] = item
            items = sorted(latest.values(), key=lambda s: s["id"])
        size = int(query.get("per_page") or query.get("limit") or 30)
        page = int(query.get("page") or 1)
        chunk = items[(page - 1) * size : page * size]
        extra: dict[str, str] = {}
        if page * size < len(items):
            size_key = "limit" if "limit" in query else "per_page"
            nxt = f"{self.url}{path}?{size_key}={size}&page={page + 1}"
            extra["Link"] = f'<{nxt}>; rel="next"'
        return 200, chunk, extra


def _handler_for(host: GitHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            code, answer, extra = host.serve(self.command, self.path, self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # the test log is enough
            pass

    return Handler


@pytest.fixture
def git_host() -> Iterator[GitHost]:
    host = GitHost()
    try:
        yield host
    finally:
        host.close()
