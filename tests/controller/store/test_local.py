"""The built-in Redis: a private redis-server on a unix socket, always reaped."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.store import LocalRedis, Store, StoreError, connect
from controller.store.transactions import text
from gitops.helm.models import Redis


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short on purpose: pytest's tmp_path can be longer than a socket path may be.
    with tempfile.TemporaryDirectory(prefix="local-", dir="/tmp") as short:
        yield Path(short) / "data"


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"redis-server" in cmdline


def test_start_serve_and_stop_without_leftovers(data_dir: Path) -> None:
    with LocalRedis(data_dir) as local:
        pid = local.pid
        assert pid is not None and _alive(pid)
        assert local.socket_path.is_socket()
        assert oct(local.socket_path.stat().st_mode & 0o777) == "0o700"
        client = connect(Redis(), None, unix_socket=local.socket_path)
        try:
            store = Store(client)
            store.ensure_generation()
            store.check_eviction_policy()
            store.replace_inputs(
                "c1", [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}], now=1
            )
            assert len(store.inputs("c1")) == 1
            config = {**client.config_get("port"), **client.config_get("save")}
            assert {text(k): text(v) for k, v in config.items() if k and v is not None} == {
                "port": "0",
                "save": "",
            }
        finally:
            client.close()

    assert not local.running
    assert not _alive(pid)
    assert not local.socket_path.exists()
    assert not any(p.suffix in (".rdb", ".aof") for p in data_dir.iterdir())
    local.stop()  # stopping twice is harmless


def test_stop_reaps_a_server_that_is_already_gone(data_dir: Path) -> None:
    local = LocalRedis(data_dir)
    local.start()
    pid = local.pid
    assert pid is not None
    os.kill(pid, 9)

    local.stop()

    assert not local.running and not _alive(pid)


def test_socket_path_too_long(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(StoreError, match="longer than a unix socket allows"):
        LocalRedis(deep).start()


def test_redis_server_not_on_path(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(data_dir.parent))

    with pytest.raises(StoreError, match="redis-server is not on PATH"):
        LocalRedis(data_dir).start()


def test_a_server_that_cannot_start_is_explained(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "redis.log").mkdir()  # redis-server cannot open its log file

    with pytest.raises(StoreError, match="exited at start"):
        LocalRedis(data_dir).start()
