"""HTTP listeners: real uvicorn servers on loopback, their ports, errors, shutdown, ports.json."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from controller.server.listeners import (
    HttpListeners,
    Listener,
    ListenError,
    split_address,
    write_ports,
)


def hello(text: str) -> Starlette:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(text)

    return Starlette(routes=[Route("/", endpoint)])


def get(port: int, host: str = "127.0.0.1") -> str:
    with httpx.Client() as client:
        return client.get(f"http://{host}:{port}/").text


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port)):
            return False
    except ConnectionRefusedError:
        return True


def our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gitops-http-")]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0:9900", ("0.0.0.0", 9900)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:8080", ("localhost", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("[::]:9091", ("::", 9091)),
        ("::1:8090", ("::1", 8090)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    "address", ["9900", ":9900", "host:", "host:http", "host:65536", "[::1]", "[::1]9900", "[]:1"]
)
def test_split_address_refuses_what_is_not_host_port(address: str) -> None:
    with pytest.raises(ValueError, match="is not a host:port address"):
        split_address(address)


def test_start_returns_the_bound_port_of_port_0_and_serves() -> None:
    with HttpListeners() as listeners:
        port = listeners.start("api", hello("api here"), "127.0.0.1:0")
        assert port != 0
        assert get(port) == "api here"
        assert listeners.listeners == [Listener("api", "127.0.0.1:0", port)]
        assert listeners.ports() == {"api": port}


def test_two_sets_of_listeners_at_once_get_different_ports() -> None:
    with HttpListeners() as first, HttpListeners() as second:
        health = first.start("health", hello("first health"), "127.0.0.1:0")
        api = first.start("api", hello("first api"), "127.0.0.1:0")
        other = second.start("health", hello("second health"), "127.0.0.1:0")
        assert len({health, api, other}) == 3
        assert [get(health), get(api), get(other)] == ["first health", "first api", "second health"]


def test_ipv6_loopback_in_brackets() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with HttpListeners() as listeners:
        port = listeners.start("api", hello("v6"), "[::1]:0")
        assert get(port, host="[::1]") == "v6"


def test_an_occupied_port_is_a_clear_error_naming_listener_and_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listeners = HttpListeners()
        with pytest.raises(ListenError) as error:
            listeners.start("health", hello("x"), f"127.0.0.1:{port}")
    message = str(error.value)
    assert message.startswith(f"cannot listen for health on 127.0.0.1:{port}: ")
    assert "Address already in use" in message
    assert listeners.listeners == []
    assert our_threads() == []


@pytest.mark.parametrize(
    ("address", "why"),
    [("127.0.0.1", "is not a host:port address"), ("no-such-host.invalid:0", "no-such-host")],
)
def test_an_unusable_address_is_a_clear_error(address: str, why: str) -> None:
    with pytest.raises(ListenError, match=f"cannot listen for metrics.*{why}"):
        HttpListeners().start("metrics", hello("x"), address)


def test_an_app_failing_its_start_up_is_a_clear_error_and_leaves_nothing_running() -> None:
    @contextlib.asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot open the report store")
        yield

    listeners = HttpListeners()
    expected = r"cannot listen for api on 127\.0\.0\.1:0: the app failed its start-up"
    with pytest.raises(ListenError, match=expected):
        listeners.start("api", Starlette(lifespan=broken), "127.0.0.1:0")
    assert our_threads() == []
    assert listeners.listeners == []


def test_a_name_is_started_once() -> None:
    with HttpListeners() as listeners:
        listeners.start("api", hello("x"), "127.0.0.1:0")
        with pytest.raises(ValueError, match="'api' is already running"):
            listeners.start("api", hello("y"), "127.0.0.1:0")


def test_stop_closes_the_ports_and_joins_every_thread() -> None:
    listeners = HttpListeners()
    ports = [listeners.start(name, hello(name), "127.0.0.1:0") for name in ("health", "api")]
    assert {t.name for t in our_threads()} == {"gitops-http-health", "gitops-http-api"}
    listeners.stop()
    assert our_threads() == []
    assert all(refused(port) for port in ports)
    assert listeners.listeners == []
    listeners.stop()  # idempotent


def test_stop_lets_a_running_request_finish() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        entered.set()
        release.wait()
        return PlainTextResponse("finished")

    listeners = HttpListeners()
    port = listeners.start("api", Starlette(routes=[Route("/", slow)]), "127.0.0.1:0")
    answers: list[str] = []
    client = threading.Thread(target=lambda: answers.append(get(port)))
    client.start()
    entered.wait()
    stopper = threading.Thread(target=listeners.stop)
    stopper.start()
    # Release the request only once shutdown has begun (the listening socket is closed),
    # so the answer below can only come from a graceful stop.
    while not refused(port):
        time.sleep(0.01)
    release.set()
    stopper.join()
    client.join()
    assert answers == ["finished"]
    assert our_threads() == []


def test_write_ports_writes_sorted_json_atomically(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {"relay": 41234, "api": 41238, "registration": 41235, "health": 41236, "metrics": 1}
    path = write_ports(data_dir, ports)
    assert path == data_dir / "ports.json"
    assert path.read_text() == (
        "{\n"
        '  "api": 41238,\n'
        '  "health": 41236,\n'
        '  "metrics": 1,\n'
        '  "registration": 41235,\n'
        '  "relay": 41234\n'
        "}\n"
    )
    write_ports(data_dir, {"api": 2})
    assert json.loads(path.read_text()) == {"api": 2}
    assert [p.name for p in data_dir.iterdir()] == ["ports.json"]


def test_ports_of_running_listeners_round_trip_through_ports_json(tmp_path: Path) -> None:
    with HttpListeners() as listeners:
        listeners.start("health", hello("h"), "127.0.0.1:0")
        listeners.start("api", hello("a"), "127.0.0.1:0")
        path = write_ports(tmp_path, {**listeners.ports(), "relay": 9900})
        written = json.loads(path.read_text())
        assert get(written["api"]) == "a"
        assert get(written["health"]) == "h"
        assert written["relay"] == 9900
