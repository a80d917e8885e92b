"""The leader lock and its fencing token against a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from controller.store import Lease, NotLeader, OutputWrite, Store, connect, retrying_for
from controller.store.keys import LEADER, LEADER_FENCE, output_key, output_objects_key
from controller.store.leader import marks
from controller.store.transactions import encode
from gitops.helm.models import Redis, RedisConnection
from gitops.objects import ObjectId
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer
from tests.support.runtime import wait_until

redis_server = redis_servers.redis_server

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "reviews", "namespace": "bookinfo"},
    "spec": {"ports": [{"port": 9080}]},
}


class Clock:
    """A monotonic clock a test moves by hand (a paused process, seen from inside)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    made = connect(Redis.model_validate({"address": redis_server.address}), None)
    yield made
    made.close()


def new_store(client: redis.Redis) -> Store:
    made = Store(client, retrying=retrying_for(RedisConnection(max_retries=0)))
    made.ensure_generation()
    return made


def publish(store: Store, obj: dict[str, Any]) -> dict[str, int]:
    return store.write_many({"cluster1": OutputWrite({ObjectId.of(obj): encode(obj)})})


def test_first_contender_gets_the_lock_and_a_token_the_second_waits(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    a = Lease(client, "replica-a", 30)
    b = Lease(client, "replica-b", 30)

    assert a.acquire()
    assert not b.acquire()

    raw = redis_server.client(decode_responses=True)
    assert raw.get(LEADER) == "replica-a"
    assert raw.get(LEADER_FENCE) == "1"
    assert 0 < raw.pttl(LEADER) <= 30_000
    assert a.valid() and a.fence.token == 1
    assert not b.valid() and b.fence.token == 0


def test_renewal_extends_the_lease_only_while_the_lock_is_ours(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    clock = Clock()
    a = Lease(client, "replica-a", 10, clock=clock)
    assert a.acquire()
    raw = redis_server.client(decode_responses=True)
    raw.pexpire(LEADER, 2_000)
    clock.now += 6  # before the deadline (10s after acquiring)

    assert a.renew()
    assert raw.pttl(LEADER) > 2_000
    clock.now += 6  # 12s after acquiring: still valid, the renewal moved the deadline on
    assert a.valid()

    raw.set(LEADER, "intruder")
    assert not a.renew()
    assert not a.valid()
    assert raw.get(LEADER) == "intruder"  # compare-and-delete left it alone


def test_a_paused_process_knows_it_lost_by_its_own_clock(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    clock = Clock()
    a = Lease(client, "replica-a", 10, clock=clock)
    assert a.acquire()

    clock.now += 11  # the process slept past its deadline; Redis may still hold the key

    assert not a.valid()
    assert not a.renew()
    assert redis_server.client().get(LEADER) is None  # released for the next replica


def test_after_expiry_another_replica_takes_over_with_a_newer_token(client: redis.Redis) -> None:
    a = Lease(client, "replica-a", 0.2)
    b = Lease(client, "replica-b", 30)
    assert a.acquire()

    wait_until(b.acquire, timeout=10, what="replica-b to take the expired lock")

    assert b.fence.token == a.fence.token + 1
    assert not a.renew()


def test_release_hands_over_at_once(client: redis.Redis, redis_server: RedisServer) -> None:
    a = Lease(client, "replica-a", 30)
    b = Lease(client, "replica-b", 30)
    assert a.acquire()

    a.release()

    assert not a.valid()
    assert b.acquire()
    assert redis_server.client(decode_responses=True).get(LEADER) == "replica-b"


def test_a_write_with_an_old_token_raises_not_leader_and_changes_nothing(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    store_a, store_b = new_store(client), new_store(client)
    a = Lease(client, "replica-a", 0.2)
    b = Lease(client, "replica-b", 30)
    assert a.acquire()
    store_a.fence = a.fence
    assert publish(store_a, SERVICE) == {"cluster1": 1}
    wait_until(b.acquire, timeout=10, what="replica-b to take the expired lock")
    store_b.fence = b.fence
    raw = redis_server.client()
    before = (raw.hgetall(output_key("cluster1")), raw.hgetall(output_objects_key("cluster1")))
    changed = {**SERVICE, "spec": {"ports": [{"port": 9081}]}}

    with pytest.raises(NotLeader, match="replica-a no longer holds the leader lock"):
        publish(store_a, changed)
    with pytest.raises(NotLeader):
        store_a.write_reports({("RetryTimeoutPolicy", "bookinfo", "retry"): {"state": "ACCEPTED"}})

    after = (raw.hgetall(output_key("cluster1")), raw.hgetall(output_objects_key("cluster1")))
    assert after == before
    assert raw.exists("gitops#reports#keys") == 0
    # Inputs are every replica's to write (agents may connect to any of them).
    store_a.replace_inputs("cluster1", [SERVICE], now=2.0)
    assert store_a.inputs("cluster1") == [SERVICE]
    # The new leader publishes.
    assert publish(store_b, changed) == {"cluster1": 2}


def test_a_taken_lock_refuses_the_next_write_before_any_renewal(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    store = new_store(client)
    a = Lease(client, "replica-a", 30)
    assert a.acquire()
    store.fence = a.fence
    redis_server.client().set(LEADER, "intruder")

    with pytest.raises(NotLeader):
        publish(store, SERVICE)

    assert redis_server.client().exists(output_key("cluster1")) == 0


def test_a_replica_that_never_led_cannot_publish(client: redis.Redis) -> None:
    store = new_store(client)
    follower = Lease(client, "replica-b", 30)
    store.fence = follower.fence  # token 0

    with pytest.raises(NotLeader):
        publish(store, SERVICE)


def test_marks_name_each_clusters_last_input_write_output_version_and_agent_facts(
    client: redis.Redis,
) -> None:
    store = new_store(client)
    generation = store.generation()
    store.replace_inputs("cluster1", [SERVICE], now=12.5)
    publish(store, SERVICE)
    publish(store, SERVICE)
    store.record_agent("cluster1", {"applied": f"{generation}:2", "drift": "1", "errors": "0"})

    found = marks(store)

    assert found.inputs == {"cluster1": (generation, 12.5)}
    assert found.outputs == {"cluster1": 2}
    assert found.agents == {"cluster1": {"applied": f"{generation}:2", "drift": "1"}}
