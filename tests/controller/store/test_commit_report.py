"""Commit reports in a real redis-server: the store's pair of methods, and `CommitReports`
(memory first, Redis behind) as a restarted server or another replica sees them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from controller.server.commit_reports import CommitReports, Section
from controller.store import Store, StoreError, connect, retrying_for
from controller.store.keys import COMMIT_REPORT_SECONDS
from gitops.helm.models import Redis, RedisConnection
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer

redis_server = redis_servers.redis_server

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    made = connect(Redis.model_validate({"address": redis_server.address}), None)
    yield made
    made.close()


def store_on(client: redis.Redis) -> Store:
    return Store(client, retrying=retrying_for(RedisConnection(max_retries=0)))


def test_a_report_round_trips_under_its_key_and_expires(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    store = store_on(client)
    store.ensure_generation()
    document = {"sha": SHA, "sections": {"sync": {"document": {"clusters": {"c1": {"n": 1}}}}}}

    store.write_commit_report(SHA, document)

    assert store.commit_report(SHA) == document
    assert store.commit_report(OTHER) is None
    raw = redis_server.client(decode_responses=True)
    ttl = raw.ttl(f"gitops#commit#{SHA}")
    assert 0 < ttl <= COMMIT_REPORT_SECONDS


def test_reports_do_not_depend_on_the_cache_generation(client: redis.Redis) -> None:
    # Another replica (no generation adopted yet), and a cache lost underneath: a report
    # describes a commit, so it is still written and read.
    writer = store_on(client)
    writer.write_commit_report(SHA, {"sha": SHA, "sections": {}})
    assert store_on(client).commit_report(SHA) == {"sha": SHA, "sections": {}}


def test_a_malformed_sha_is_refused_on_write_and_unknown_on_read(client: redis.Redis) -> None:
    store = store_on(client)
    with pytest.raises(StoreError, match="not a full commit SHA"):
        store.write_commit_report("HEAD", {"sha": "HEAD"})
    with pytest.raises(StoreError, match="not a full commit SHA"):
        store.write_commit_report(SHA.upper(), {})
    assert store.commit_report("abc#def") is None


def test_another_replica_serves_what_one_wrote(client: redis.Redis) -> None:
    one = CommitReports(store=store_on(client))
    one.put(SHA, "translation", {"counts": {"ACCEPTED": 3}})
    one.put(SHA, "preview", {"clusters": []}, markdown="# preview\n")

    other = CommitReports(store=store_on(client))

    assert other.get(SHA) == {
        "preview": Section({"clusters": []}, "# preview\n"),
        "translation": Section({"counts": {"ACCEPTED": 3}}),
    }
    assert other.get(OTHER) is None


def test_a_write_redis_refused_is_kept_in_memory_and_stored_by_flush(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    reports = CommitReports(store=store_on(client))
    redis_server.kill()

    reports.put(SHA, "sync", {"clusters": {"c1": {"state": "success"}}})  # does not raise

    assert reports.get(SHA) == {"sync": Section({"clusters": {"c1": {"state": "success"}}})}
    with pytest.raises(StoreError):
        CommitReports(store=store_on(client)).get(SHA)  # only Redis could answer
    reports.flush()  # still down: kept for later
    redis_server.start()
    assert CommitReports(store=store_on(client)).get(SHA) is None
    reports.flush()
    assert CommitReports(store=store_on(client)).get(SHA) == {
        "sync": Section({"clusters": {"c1": {"state": "success"}}})
    }


def test_memory_is_bounded_and_redis_keeps_the_older_ones(client: redis.Redis) -> None:
    memory_only = CommitReports(limit=1)
    backed = CommitReports(limit=1, store=store_on(client))
    for reports in (memory_only, backed):
        reports.put(SHA, "sync", {"n": 1})
        reports.put(OTHER, "sync", {"n": 2})

    assert memory_only.get(SHA) is None
    assert memory_only.get(OTHER) == {"sync": Section({"n": 2})}
    assert backed.get(SHA) == {"sync": Section({"n": 1})}
