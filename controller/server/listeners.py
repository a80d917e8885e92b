"""Run the server's HTTP apps on uvicorn, each in a background thread, and report the ports.

DESIGN.md section 11 and `gitops.listen.*` (`gitops.helm.gitops_block.Listen`). The serve
command starts one listener per app (`health`, `metrics`, `api`) with `HttpListeners`,
collects the bound ports together with the relay's and registration's gRPC ports, and
writes them with `write_ports` to `<dataDir>/ports.json`, where tests, the demo and
operators find servers started with port 0.

We bind each socket ourselves and hand it to uvicorn instead of letting uvicorn bind: a
busy port then fails in the caller's thread with an error naming the listener, where
uvicorn would log and `sys.exit` inside its thread; and the bound port (the answer to
port 0) is known without parsing logs. Uvicorn runs without signal handlers (the serve
command owns SIGTERM), without access logs, and without touching logging configuration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["HttpListeners", "ListenError", "Listener", "split_address", "write_ports"]

log = logging.getLogger(__name__)

#: How long `start` waits for uvicorn to come up on an already bound socket. Start-up is
#: milliseconds; this only bounds a hang (an app whose lifespan start-up never returns).
_START_TIMEOUT = 30.0
#: Requests still running at `stop` get this long before they are cancelled: readiness
#: probes and API reads are short, and shutdown must not wait on a stuck client.
_GRACE_SECONDS = 5


class ListenError(RuntimeError):
    """A listener could not start: the address is taken, unusable, or the app failed."""


@dataclass
class Listener:
    """One running HTTP listener."""

    #: `health`, `metrics`, `api`: the `gitops.listen` key it serves.
    name: str
    #: The configured `host:port` (port possibly 0).
    address: str
    #: The port actually bound.
    port: int


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is up, and leaves signals to its owner."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = threading.Event()
        self.failure: BaseException | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Uvicorn would install SIGINT/SIGTERM handlers when run from the main thread; the
        # serve command stops every listener itself, in order, on its own signals.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()

    def run_on(self, sock: socket.socket) -> None:
        """Thread body: serve on `sock` until `should_exit`, recording why it stopped early."""
        try:
            self.run(sockets=[sock])
        except (Exception, SystemExit) as exc:  # uvicorn exits on a failed lifespan start-up
            self.failure = exc
        finally:
            sock.close()
            self.up.set()


class HttpListeners:
    """The HTTP listeners of one server: start them, know their ports, stop them together."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self._running: list[tuple[_Server, threading.Thread]] = []

    def start(self, name: str, app: ASGIApp, address: str) -> int:
        """Serve `app` on `address` (`host:port`, port 0 = any free port); the bound port.

        Returns once the server accepts requests. Raises `ListenError` naming the
        listener and the address when the address cannot be bound or the app fails to start.
        """
        if any(listener.name == name for listener in self.listeners):
            raise ValueError(f"listener {name!r} is already running")
        sock = _bind(name, address)
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="auto",
            # None: leave the process's logging configuration alone (uvicorn's default
            # would dictConfig its own handlers over ours).
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=_GRACE_SECONDS,
        )
        server = _Server(config)
        thread = threading.Thread(
            target=server.run_on, args=(sock,), name=f"gitops-http-{name}", daemon=True
        )
        thread.start()
        if not server.up.wait(_START_TIMEOUT) or not server.started:
            server.should_exit = True
            thread.join(_GRACE_SECONDS)
            raise ListenError(f"cannot listen for {name} on {address}: {_why(server)}")
        self._running.append((server, thread))
        self.listeners.append(Listener(name, address, port))
        log.info("listening for %s on %s (port %d)", name, address, port)
        return port

    def ports(self) -> dict[str, int]:
        """Bound port by listener name, for `write_ports`."""
        return {listener.name: listener.port for listener in self.listeners}

    def stop(self) -> None:
        """Stop every listener: finish running requests (up to a grace period), join threads."""
        for server, _ in self._running:
            server.should_exit = True
        for server, thread in self._running:
            # Uvicorn gives requests `_GRACE_SECONDS`, then cancels them; the extra second
            # covers its 0.1 s ticks. Past that something is stuck: force it.
            thread.join(_GRACE_SECONDS + 1)
            if thread.is_alive():
                server.force_exit = True
                thread.join()
        self._running.clear()
        self.listeners.clear()

    def __enter__(self) -> HttpListeners:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def split_address(address: str) -> tuple[str, int]:
    """`host:port` -> (host, port); IPv6 hosts in brackets (`[::1]:0`) come out bare."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not a host:port address (port 0 picks a free one)")
    return host, int(port)


def write_ports(data_dir: Path, ports: Mapping[str, int]) -> Path:
    """Write `ports` to `<data_dir>/ports.json` atomically; the file's path.

    Readers poll for this file to find a server started on port 0, so they must never
    see it half written: write a temporary file beside it, then rename over.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "ports.json"
    text = json.dumps(dict(ports), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".ports.", suffix=".json", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _why(server: _Server) -> str:
    if isinstance(server.failure, SystemExit):
        # Uvicorn has logged the app's own exception; its exit code says nothing.
        return "the app failed its start-up (lifespan); see the log above"
    if server.failure is not None:
        return f"{type(server.failure).__name__}: {server.failure}"
    return f"not serving after {_START_TIMEOUT:.0f}s"


def _bind(name: str, address: str) -> socket.socket:
    """A listening TCP socket on `address`, or `ListenError` naming `name` and `address`."""
    try:
        host, port = split_address(address)
    except ValueError as exc:
        raise ListenError(f"cannot listen for {name}: {exc}") from exc
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"cannot listen for {name} on {address}: {exc}") from exc
    try:
        # Lets a restarted server rebind while old connections sit in TIME_WAIT; on
        # Linux it does not let two servers share a port that is still listening.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen for {name} on {address}: {exc}") from exc
    return sock
