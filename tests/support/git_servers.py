"""Real Git servers for tests: `git daemon` (git://) and `git http-backend` behind HTTP.

Used by `tests/controller/test_sources_git.py`, and by any later test that needs a remote
(the reconcile loop, status writers), through the `git_daemon_server` and `git_http_server`
fixtures: bind them in the test module (`git_http_server = git_servers.git_http_server`)
or list this module in the root conftest's `pytest_plugins`. Both servers export every
repository under `GitServer.base` (bare or working copies) on 127.0.0.1 and a free port,
and stop when the test ends. `run_git` runs the git CLI with a fixed identity and without
user or system configuration, so tests behave the same on every machine.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
_START_TIMEOUT = 10.0


def git_env() -> dict[str, str]:
    """The environment every git process in the tests runs with."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull, **_GIT_ENV}


def run_git(cwd: Path, *args: str) -> str:
    """Run `git ARGS` in `cwd`; return stdout (stripped); raise with stderr on failure."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class GitServer:
    """A running server: `base` is the folder it serves, `url` the URL of that folder."""

    base: Path
    url: str

    def url_for(self, name: str) -> str:
        return f"{self.url}/{name}"


def free_port() -> int:
    """A port nobody listens on right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def git_daemon(base: Path) -> Iterator[GitServer]:
    """`git daemon` exporting every repository under `base`, until the block ends."""
    port = free_port()
    log = base.parent / f"git-daemon-{port}.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                "--reuseaddr",
                "--informative-errors",
                f"--base-path={base}",
                "--listen=127.0.0.1",
                f"--port={port}",
                str(base),
            ],
            env=git_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_for_port(port, process, log)
        yield GitServer(base=base, url=f"git://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"git daemon exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"git daemon did not listen on port {port}")


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, base: Path, auth: tuple[str, str] | None) -> None:
        super().__init__(("127.0.0.1", 0), _CGIHandler)
        self.base = base
        self.auth = auth


class _CGIHandler(BaseHTTPRequestHandler):
    """Runs `git http-backend` as a CGI program for each request (smart HTTP)."""

    server: _GitHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._run_backend()

    def do_POST(self) -> None:
        self._run_backend()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean; failures show up as git errors

    def _run_backend(self) -> None:
        body = self._read_body()
        if not self._authorized():
            self._reply(401, [("WWW-Authenticate", 'Basic realm="git"')], b"")
            return
        path, _, query = self.path.partition("?")
        env = {
            **git_env(),
            "GIT_PROJECT_ROOT": str(self.server.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": self.server.auth[0] if self.server.auth else "",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        status, headers, payload = _parse_cgi(done.stdout)
        self._reply(status, headers, payload)

    def _authorized(self) -> bool:
        if self.server.auth is None:
            return True
        expected = base64.b64encode(":".join(self.server.auth).encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF that ends each chunk
            # Skip trailers up to the blank line that ends the body.
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Split CGI output into status, headers and body (`Status:` sets the code)."""
    status = 200
    headers: list[tuple[str, str]] = []
    rest = output
    while rest:
        line, _, rest = rest.partition(b"\n")
        line = line.rstrip(b"\r")
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers, rest


@contextmanager
def git_http_backend(base: Path, auth: tuple[str, str] | None = None) -> Iterator[GitServer]:
    """Smart-HTTP server for every repository under `base`; Basic auth if `auth` is given."""
    server = _GitHTTPServer(base, auth)
    # A short poll interval keeps `shutdown()` (and so each test's teardown) fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="git-http", daemon=True
    )
    thread.start()
    try:
        port = server.server_address[1]
        yield GitServer(base=base, url=f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def git_daemon_server(tmp_path: Path) -> Iterator[GitServer]:
    """A `git daemon` serving `tmp_path/served` (create repositories in `server.base`)."""
    base = tmp_path / "served"
    base.mkdir()
    with git_daemon(base) as server:
        yield server


@pytest.fixture
def git_http_server(tmp_path: Path) -> Iterator[GitServer]:
    """A smart-HTTP server serving `tmp_path/served-http`, without authentication."""
    base = tmp_path / "served-http"
    base.mkdir()
    with git_http_backend(base) as server:
        yield server
