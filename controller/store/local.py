"""The built-in Redis: a private `redis-server` on a unix socket in the server's data dir.

Where it sits: `gitops serve` with no `redis.address` (DESIGN.md section 4) wraps its run in
`with LocalRedis(data_dir) as local:` and connects with
`controller.store.connect.connect(values.redis, secrets, unix_socket=local.socket_path)`.
The process listens on no TCP port (`--port 0`), keeps nothing on disk (`--save ""`,
`--appendonly no`: the cache is rebuilt from agents, and safe mode covers the gap) and
never evicts (`noeviction`: an evicted input hash would look like deleted objects).

`stop` always reaps the process: `SHUTDOWN NOSAVE`, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from controller.store.transactions import StoreError

__all__ = ["LocalRedis"]

#: sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class LocalRedis:
    """A private redis-server; a context manager that starts it and always stops it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket_path = data_dir / "redis.sock"
        self.log_path = data_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start redis-server and wait (at most 10 s) until it answers PING."""
        if self._process is not None:
            raise StoreError("the built-in Redis is already running")
        executable = shutil.which("redis-server")
        if executable is None:
            raise StoreError(
                "redis-server is not on PATH: install Redis (e.g. apt-get install "
                "redis-server) or set redis.address to an external Redis"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        socket_bytes = len(str(self.socket_path.absolute()).encode())
        if socket_bytes > MAX_SOCKET_PATH:
            raise StoreError(
                f"the built-in Redis socket path {self.socket_path} is {socket_bytes} bytes, "
                f"longer than a unix socket allows ({MAX_SOCKET_PATH}); use a shorter data dir"
            )
        self.socket_path.unlink(missing_ok=True)  # left by a crash; it would confuse PING
        command = [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket_path.absolute()),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--maxmemory-policy", "noeviction",
            "--dir", str(self.data_dir.absolute()),
            "--logfile", str(self.log_path.absolute()),
            "--daemonize", "no",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own process group: Ctrl-C at a terminal reaches the server, which stops
            # Redis last (after releasing the leader lock), not Redis first.
            process_group=0,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        client = self._client()
        try:
            while True:
                if self._process.poll() is not None:
                    raise StoreError(
                        f"the built-in Redis exited at start (code {self._process.returncode}): "
                        f"{self._log_tail()}"
                    )
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the built-in Redis did not answer within {_START_TIMEOUT:.0f} s: "
                        f"{self._log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _client(self) -> redis.Redis:
        # No redis-py retries (10 by default, with backoff): the loops here poll on their own.
        return redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )

    def _log_tail(self) -> str:
        lines: list[str] = []
        process = self._process
        if process is not None and process.stderr is not None and process.poll() is not None:
            lines += process.stderr.read().decode(errors="replace").splitlines()
        with contextlib.suppress(OSError):
            lines += self.log_path.read_text(errors="replace").splitlines()
        tail = [line for line in lines if line.strip()][-3:]
        return " | ".join(tail) or f"see {self.log_path}"

    def stop(self) -> None:
        """Shut Redis down without saving; terminate or kill it if it lingers. Always reaps."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                client = self._client()
                try:
                    client.shutdown(nosave=True)
                except redis.RedisError:
                    pass  # the reply never comes: the server closed the socket while exiting
                finally:
                    client.close()
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    try:
                        process.wait(_STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
            self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
