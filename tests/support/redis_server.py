"""Real `redis-server` processes for tests, on a free TCP port or a unix socket in a tmp dir.

Used by `tests/controller/store/` and by any later test that needs Redis (the relay, the
reconcile loop), through the `redis_server` (TCP) and `redis_unix` fixtures: bind them in
the test module (`redis_server = redis_servers.redis_server`). Each test gets its own server,
with no persistence, so nothing leaks between tests. `RedisServer.kill()` SIGKILLs it and
`restart()` starts a fresh process on the same port or socket, which is how tests lose
Redis under a running client. Every process is reaped and every client handed out by
`client()` is closed when the fixture ends (warnings are errors, so a leaked socket fails).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

from tests.support.git_servers import free_port

_START_TIMEOUT = 10.0

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not on PATH"
)


class RedisServer:
    """One redis-server. `tls=True` expects `--tls-*` file options in `args`."""

    def __init__(
        self, workdir: Path, *, unix: bool = False, tls: bool = False, args: Sequence[str] = ()
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.unix = unix
        self.tls = tls
        self.args = list(args)
        self.port = 0 if unix else free_port()
        self.socket_path = workdir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []
        self.starts = 0

    @property
    def address(self) -> str:
        """`host:port`, as `redis.address` spells it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        if self.unix:
            return f"unix://{self.socket_path}"
        return f"{'rediss' if self.tls else 'redis'}://{self.address}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        listen = ["--port", "0"] if self.tls or self.unix else ["--port", str(self.port)]
        if self.tls:
            listen += ["--tls-port", str(self.port)]
        if self.unix:
            listen += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        return [
            "redis-server",
            *listen,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
            *self.args,
        ]  # fmt: skip

    def start(self) -> None:
        assert self._process is None, "already running"
        self.socket_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.starts += 1
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")
                self._process = None
                raise AssertionError(f"redis-server exited at start:\n{log[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"redis-server did not listen within {_START_TIMEOUT} s")
            time.sleep(0.01)

    def _answers(self) -> bool:
        """Whether the server accepts a connection (and, without TLS, replies to PING;
        `-NOAUTH` counts: the server is up, the test's client will log in)."""
        family = socket.AF_UNIX if self.unix else socket.AF_INET
        target: str | tuple[str, int] = (
            str(self.socket_path) if self.unix else ("127.0.0.1", self.port)
        )
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(target)
                if self.tls:
                    return True
                probe.sendall(b"PING\r\n")
                return probe.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL and reap: the data is gone, clients see broken connections."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """A fresh, empty server on the same port or socket."""
        self.kill()
        self.start()

    def client(self, **kwargs: object) -> redis.Redis:
        """A plain client (closed when the fixture ends), decoding nothing."""
        if self.unix:
            made = redis.Redis(unix_socket_path=str(self.socket_path), **kwargs)  # type: ignore[arg-type]
        else:
            made = redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]
        self._clients.append(made)
        return made

    def close(self) -> None:
        for made in self._clients:
            made.close()
        self._clients.clear()
        self.kill()


def running(workdir: Path, **options: object) -> Iterator[RedisServer]:
    server = RedisServer(workdir, **options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on 127.0.0.1 and a free port, for this test only."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    yield from running(tmp_path / "redis")


@pytest.fixture
def redis_unix() -> Iterator[RedisServer]:
    """A fresh redis-server on a unix socket only, for this test only.

    The socket lives in a short /tmp folder: pytest's tmp_path can exceed the 107 bytes a
    socket path may have."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    with tempfile.TemporaryDirectory(prefix="redis-", dir="/tmp") as short:
        yield from running(Path(short), unix=True)
