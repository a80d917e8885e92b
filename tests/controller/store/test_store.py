"""The Redis store against a real redis-server: layout, atomicity, generation, stream, outputs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from controller.store import (
    CacheLost,
    OutputWrite,
    Store,
    StoreError,
    connect,
    retrying_for,
)
from controller.store.keys import DIFF_STREAM, KEY_SET
from controller.store.transactions import encode, text
from gitops.helm.models import Redis, RedisConnection
from gitops.objects import ObjectId
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer

redis_server = redis_servers.redis_server


def service(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": name}},
    }


def deployment(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": {"app": name}}}},
    }


NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    values = Redis.model_validate({"address": redis_server.address})
    made = connect(values, None)
    yield made
    made.close()


@pytest.fixture
def store(client: redis.Redis) -> Store:
    made = Store(client, retrying=retrying_for(RedisConnection(max_retries=0)), stream_maxlen=64)
    made.ensure_generation()
    return made


def test_layout_is_glooes(store: Store, redis_server: RedisServer) -> None:
    store.replace_inputs(
        "cluster1",
        [service("bookinfo", "reviews"), deployment("bookinfo", "reviews"), NODE],
        now=1.0,
    )
    raw = redis_server.client(decode_responses=True)

    assert {"cluster1~~v1~Service", "cluster1~apps~v1~Deployment", "cluster1~~v1~Node"} <= set(
        raw.keys("*")
    )
    assert raw.smembers(KEY_SET) == {
        "cluster1~~v1~Service",
        "cluster1~apps~v1~Deployment",
        "cluster1~~v1~Node",
    }
    assert raw.hkeys("cluster1~~v1~Node") == ["/node-1"]
    stored = raw.hget("cluster1~~v1~Service", "bookinfo/reviews")
    assert str(stored).startswith('{"apiVersion":"v1","kind":"Service"')
    assert raw.type(DIFF_STREAM) == "stream"


def test_stream_is_bounded(store: Store, redis_server: RedisServer) -> None:
    for i in range(1000):
        store.update_inputs("cluster1", [service("ns", f"svc-{i}")], [], now=float(i))
    length = redis_server.client().xlen(DIFF_STREAM)

    # MAXLEN ~ 64 trims whole radix-tree nodes (100 entries each by default).
    assert 64 <= length < 300


def test_replace_is_a_full_replace_and_reads_are_sorted(store: Store) -> None:
    store.replace_inputs("c1", [service("b", "x"), service("a", "y"), deployment("a", "d")], now=1)
    store.replace_inputs("c1", [service("a", "y", v="2"), NODE], now=2)

    objects = store.inputs("c1")

    assert [ObjectId.of(o) for o in objects] == [
        ObjectId("", "v1", "Node", "", "node-1"),
        ObjectId("", "v1", "Service", "a", "y"),
    ]
    assert objects[1]["metadata"]["labels"] == {"v": "2"}
    assert store.inputs("other") == []


def test_update_inputs_applies_a_delta(store: Store) -> None:
    store.replace_inputs("c1", [service("a", "x"), service("a", "y")], now=1)
    store.update_inputs(
        "c1", [deployment("a", "d")], [ObjectId("", "v1", "Service", "a", "x")], now=5
    )

    assert [o["metadata"]["name"] for o in store.inputs("c1")] == ["d", "y"]  # by key
    status = store.input_status()["c1"]
    assert (status.updated, status.objects) == (5.0, 2)


def test_load_inputs_and_status(store: Store) -> None:
    store.replace_inputs("c1", [service("a", "x")], now=1)
    store.replace_inputs("c2", [], now=2)

    loaded, last_id = store.load_inputs()
    statuses = store.input_status()

    assert loaded == {"c1": [service("a", "x")], "c2": []}
    assert last_id != "0-0"
    generation = store.generation()
    assert generation is not None
    assert statuses["c1"].generation == generation
    assert (statuses["c1"].objects, statuses["c2"].objects, statuses["c2"].updated) == (1, 0, 2.0)


def test_objects_without_identity_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match=r"no metadata\.name"):
        store.replace_inputs("c1", [{"apiVersion": "v1", "kind": "Service"}], now=1)
    with pytest.raises(StoreError, match="not a cluster name"):
        store.replace_inputs("bad~name", [], now=1)


def test_readers_never_see_half_a_snapshot(store: Store, client: redis.Redis) -> None:
    def snapshot(version: str) -> list[dict[str, Any]]:
        objects = [service(f"ns-{i % 10}", f"svc-{i}", version=version) for i in range(2500)]
        return objects + [deployment(f"ns-{i % 10}", f"svc-{i}") for i in range(2500)]

    versions = {v: snapshot(v) for v in ("a", "b")}
    store.replace_inputs("c1", versions["a"], now=0)
    reader = Store(client)
    seen: list[tuple[int, frozenset[str]]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            objects = reader.inputs("c1")
            labels = frozenset(
                o["metadata"].get("labels", {}).get("version", "") for o in objects
            ) - {""}
            seen.append((len(objects), labels))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(12):
            store.replace_inputs("c1", versions["ab"[i % 2]], now=float(i))
    finally:
        done.set()
        thread.join()

    assert seen
    assert {count for count, _ in seen} == {5000}
    assert {labels for _, labels in seen} <= {frozenset("a"), frozenset("b")}


def test_flushall_is_cache_lost(store: Store, redis_server: RedisServer) -> None:
    store.replace_inputs("c1", [service("a", "x")], now=1)
    redis_server.client().flushall()

    with pytest.raises(CacheLost, match="no cache generation"):
        store.load_inputs()
    with pytest.raises(CacheLost):
        store.replace_inputs("c1", [service("a", "x")], now=2)
    assert redis_server.client().keys("*") == []  # the refused write wrote nothing

    generation, created = store.ensure_generation()
    assert created
    store.replace_inputs("c1", [service("a", "x")], now=3)
    assert store.input_status()["c1"].generation == generation


def test_restart_without_persistence_is_cache_lost(store: Store, redis_server: RedisServer) -> None:
    first, _ = store.ensure_generation()
    store.replace_inputs("c1", [service("a", "x")], now=1)
    redis_server.restart()

    with pytest.raises(CacheLost):
        store.inputs("c1")
    second, created = store.ensure_generation()
    assert created and second != first


def test_generation_replaced_by_another_server_is_cache_lost(
    store: Store, client: redis.Redis, redis_server: RedisServer
) -> None:
    redis_server.client().flushall()
    Store(client).ensure_generation()  # another server started a new generation

    with pytest.raises(CacheLost, match="generation changed"):
        store.outputs("c1")


def test_existing_generation_is_adopted(store: Store, client: redis.Redis) -> None:
    generation = store.generation()

    assert Store(client).ensure_generation() == (generation, False)


def test_follow_returns_deltas_then_nothing(store: Store) -> None:
    store.replace_inputs("c1", [service("a", "x")], now=1)
    _, last_id = store.load_inputs()
    store.update_inputs("c1", [service("a", "y")], [ObjectId("", "v1", "Service", "a", "x")], now=2)
    store.replace_inputs("c2", [], now=3)

    changes = store.follow(last_id, block_ms=10)

    assert changes is not None
    assert [(c.cluster, c.full) for c in changes] == [("c1", False), ("c2", True)]
    assert changes[0].upserted == [ObjectId("", "v1", "Service", "a", "y")]
    assert changes[0].removed == [ObjectId("", "v1", "Service", "a", "x")]
    assert store.follow(changes[-1].stream_id, block_ms=10) == []


def test_follow_waits_longer_than_the_read_timeout(redis_server: RedisServer) -> None:
    values = Redis.model_validate(
        {"address": redis_server.address, "connection": {"readTimeout": "100ms"}}
    )
    client = connect(values, None)
    try:
        store = Store(client, retrying=retrying_for(values.connection))
        store.ensure_generation()
        # A 300 ms block with a 100 ms read timeout: redis-py alone would raise TimeoutError.
        assert store.follow("0-0", block_ms=300) == []
    finally:
        client.close()


def test_follow_asks_for_a_reload_when_behind(store: Store, redis_server: RedisServer) -> None:
    store.replace_inputs("c1", [], now=0)
    _, last_id = store.load_inputs()
    for i in range(500):
        store.update_inputs("c1", [service("a", f"s{i}")], [], now=1)

    assert store.follow(last_id, block_ms=10) is None  # last_id was trimmed away
    assert store.follow("0-0", block_ms=10) is None  # a read of >= the bound (64)

    raw = redis_server.client()
    raw.delete(DIFF_STREAM)
    entry = raw.xadd(DIFF_STREAM, {"stream.diff.key": "not json"})
    assert store.follow("0-0", block_ms=10) is None
    assert store.follow(text(entry), block_ms=10) == []


def test_outputs_versions(store: Store) -> None:
    assert store.outputs("c1").version == 0
    assert store.outputs("c1").objects == []

    assert store.publish_outputs("c1", [service("a", "x")]) == 1
    assert store.publish_outputs("c1", [service("a", "y"), service("a", "z")]) == 2
    assert store.publish_outputs("c2", []) == 1

    published = store.outputs("c1")
    assert (published.version, [o["metadata"]["name"] for o in published.objects]) == (
        2,
        ["y", "z"],
    )
    assert store.output_clusters() == {"c1", "c2"}
    assert published.revision is None  # no commit named


def test_outputs_keep_the_commit_they_were_translated_from(store: Store) -> None:
    one, two = "1" * 40, "2" * 40
    store.write_outputs("c1", {}, replace=True, revision=one)
    assert (store.outputs("c1").version, store.outputs("c1").revision) == (1, one)
    store.write_outputs("c1", {}, revision=two)
    assert (store.outputs("c1").version, store.outputs("c1").revision) == (2, two)
    # A folder source has no commit: the last one named must not stand for it.
    store.write_outputs("c1", {})
    assert (store.outputs("c1").version, store.outputs("c1").revision) == (3, None)


def test_an_output_delta_writes_only_what_changed(store: Store, redis_server: RedisServer) -> None:
    a, b, c = service("a", "x"), service("a", "y"), service("a", "z")
    assert store.publish_outputs("c1", [a, b]) == 1
    client = redis_server.client()
    try:
        client.config_resetstat()
        changed = {**b, "spec": {"ports": [{"port": 81}]}}
        version = store.write_outputs(
            "c1",
            {ObjectId.of(changed): encode(changed), ObjectId.of(c): encode(c)},
            [ObjectId.of(a)],
            revision="c" * 40,
        )
        writes = client.info("commandstats")
        fields = sorted(f.decode() for f in client.hkeys("outputs#c1#objects"))
    finally:
        client.close()
    assert version == 2
    # One HSET of the two changed objects (and one of the commit beside the version) and
    # one HDEL: never the whole set again.
    assert writes["cmdstat_hset"]["calls"] == 2 and writes["cmdstat_hdel"]["calls"] == 1
    assert fields == ["~v1~Service~a/y", "~v1~Service~a/z"]
    assert store.outputs("c1").revision == "c" * 40
    published = store.outputs("c1")
    assert [o["metadata"]["name"] for o in published.objects] == ["y", "z"]
    assert published.objects[0]["spec"] == {"ports": [{"port": 81}]}


def test_publishes_to_many_clusters_are_one_transaction(
    store: Store, redis_server: RedisServer
) -> None:
    a, b = service("a", "x"), service("a", "y")
    store.publish_outputs("c1", [a])
    client = redis_server.client()
    try:
        client.config_resetstat()
        versions = store.write_many(
            {
                "c1": OutputWrite({ObjectId.of(b): encode(b)}, [ObjectId.of(a)]),
                "c2": OutputWrite({ObjectId.of(a): encode(a)}, replace=True),
            }
        )
        stats = client.info("commandstats")
    finally:
        client.close()
    assert versions == {"c1": 2, "c2": 1}
    assert stats["cmdstat_exec"]["calls"] == 1
    assert [o["metadata"]["name"] for o in store.outputs("c1").objects] == ["y"]
    assert [o["metadata"]["name"] for o in store.outputs("c2").objects] == ["x"]


def test_reports_replace_the_whole_set(store: Store, redis_server: RedisServer) -> None:
    store.write_reports(
        {
            ("RouteTable", "bookinfo", "reviews"): {"state": "ACCEPTED"},
            ("Workspace", "gloo-mesh", "ws"): {"state": "ACCEPTED"},
        }
    )
    store.write_reports({("RouteTable", "bookinfo", "reviews"): {"state": "INVALID"}})

    assert store.report("RouteTable", "bookinfo", "reviews") == {"state": "INVALID"}
    assert store.report("Workspace", "gloo-mesh", "ws") is None
    assert redis_server.client().keys("reports#*") == [b"reports#RouteTable#bookinfo#reviews"]
    store.write_reports({})
    assert redis_server.client().keys("reports#*") == []


def test_agents_and_clean(store: Store, redis_server: RedisServer) -> None:
    for cluster in ("c1", "c2", "c3"):
        store.replace_inputs(cluster, [service("a", "x")], now=1)
    store.publish_outputs("c2", [])
    store.record_agent("c2", {"version": "1.0", "address": "10.0.0.2"})
    store.record_agent("c4", {"version": "1.1"})
    _, last_id = store.load_inputs()

    assert store.agent("c2") == {"address": "10.0.0.2", "version": "1.0"}
    assert store.clean({"c1"}) == ["c2", "c3", "c4"]

    loaded, _ = store.load_inputs()
    assert list(loaded) == ["c1"]
    assert (store.agent("c2"), store.outputs("c2").version) == ({}, 0)
    assert store.output_clusters() == set()
    assert set(store.input_status()) == {"c1"}
    keys = {text(k) for k in redis_server.client().keys("*")}
    assert not any(k.startswith(("c2", "c3", "outputs#c2", "agents#")) for k in keys)
    changes = store.follow(last_id, block_ms=10)
    assert changes is not None
    assert [(c.cluster, c.full) for c in changes] == [("c2", True), ("c3", True), ("c4", True)]
    assert store.clean({"c1"}) == []


def test_eviction_policy_must_be_noeviction(store: Store, redis_server: RedisServer) -> None:
    store.check_eviction_policy()
    redis_server.client().config_set("maxmemory-policy", "allkeys-lru")

    with pytest.raises(StoreError, match=r"allkeys-lru.*CONFIG SET maxmemory-policy noeviction"):
        store.check_eviction_policy()
