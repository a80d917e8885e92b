"""Snapshot directories <-> Redis: export/import round trips and the `gitops snapshot` CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner

from controller.commands.snapshot import redact, snapshot_group
from controller.sources.snapshots import read_snapshot_dir
from controller.store import Store, StoreError, export_snapshots, import_snapshots
from gitops.discovery import ClusterInputs, load_cluster
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer

redis_server = redis_servers.redis_server
redis_unix = redis_servers.redis_unix
DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "clusters"


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Store]:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    made = Store(client)
    made.ensure_generation()
    yield made
    client.close()


@pytest.fixture
def other_store(redis_unix: RedisServer) -> Iterator[Store]:
    client = redis.Redis(unix_socket_path=str(redis_unix.socket_path))
    made = Store(client)
    made.ensure_generation()
    yield made
    client.close()


def _without_sources(inputs: ClusterInputs) -> ClusterInputs:
    return dataclasses.replace(
        inputs, services=tuple(dataclasses.replace(s, source=None) for s in inputs.services)
    )


def test_round_trip_through_two_redis_servers(
    store: Store, other_store: Store, tmp_path: Path
) -> None:
    imported = import_snapshots(store, DEMO, now=1.0)
    out = tmp_path / "export"
    exported = export_snapshots(store, out)
    again = import_snapshots(other_store, out, now=2.0)

    assert set(imported) == {"cluster1", "cluster2"}
    assert imported == exported == again
    assert all(count > 20 for count in imported.values())
    assert other_store.load_inputs()[0] == store.load_inputs()[0]

    original, copy = read_snapshot_dir(DEMO), read_snapshot_dir(out)
    for cluster in ("cluster1", "cluster2"):
        before = load_cluster(cluster, original[cluster])
        after = load_cluster(cluster, copy[cluster])
        assert before.services and before.workloads and before.nodes
        assert after.diagnostics == ()
        assert _without_sources(after) == _without_sources(before)


def test_export_layout_is_deterministic(store: Store, tmp_path: Path) -> None:
    import_snapshots(store, DEMO, now=1.0)
    export_snapshots(store, tmp_path / "a")
    export_snapshots(store, tmp_path / "b")

    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.yaml"))
    assert Path("cluster1/_cluster/node.v1.yaml") in files
    assert Path("cluster1/bookinfo-backends/deployment.v1.apps.yaml") in files
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )


def test_export_refuses_a_non_empty_directory(store: Store, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")

    with pytest.raises(StoreError, match="not an empty directory"):
        export_snapshots(store, tmp_path)


def test_import_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    good = tmp_path / "snap" / "east" / "ok.yaml"
    good.parent.mkdir(parents=True)
    good.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n")
    (tmp_path / "snap" / "west").mkdir()
    (tmp_path / "snap" / "west" / "bad.yaml").write_text("kind: Service\nmetadata: {name: x}\n")

    with pytest.raises(
        StoreError, match=r"west/bad.yaml:1: not a Kubernetes object \(object has no apiVersion\)"
    ):
        import_snapshots(store, tmp_path / "snap", now=1.0)
    assert store.load_inputs()[0] == {}


def test_import_unwraps_lists(store: Store, tmp_path: Path) -> None:
    listed = tmp_path / "snap" / "east" / "list.yaml"
    listed.parent.mkdir(parents=True)
    listed.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n"
    )

    assert import_snapshots(store, tmp_path / "snap", now=1.0) == {"east": 2}


def test_cli_import_then_export(redis_server: RedisServer, tmp_path: Path) -> None:
    runner = CliRunner()
    group: click.Group = snapshot_group

    imported = runner.invoke(group, ["import", str(DEMO), "--redis", redis_server.url])
    exported = runner.invoke(
        group, ["export", "--redis", redis_server.url, "-o", str(tmp_path / "o")]
    )

    assert imported.exit_code == 0, imported.output
    assert "imported" in imported.output and "cluster1:" in imported.output
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "o" / "cluster2" / "_cluster" / "node.v1.yaml").is_file()


def test_cli_errors_exit_2_without_the_password(redis_server: RedisServer, tmp_path: Path) -> None:
    url = f"redis://user:hunter2@{redis_server.address}/0"
    redis_server.kill()

    result = CliRunner().invoke(
        snapshot_group, ["export", "--redis", url, "-o", str(tmp_path / "o")]
    )

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "hunter2" not in result.output and "user:***@" in result.stderr


def test_redact() -> None:
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1") == "redis://h:1"
