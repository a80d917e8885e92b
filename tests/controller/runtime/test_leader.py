"""End to end: two server replicas on one Redis. Only the leader publishes; agents
connected to the follower still get the outputs; the follower takes over when the leader
stops; a replica whose lock is taken stops publishing at once; a webhook or a manual sync
sent to the follower reaches the leader (`gitops#triggers`), with no poll to help."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
import pytest

from controller.server.app import Server
from controller.server.fleet_view import FleetView
from controller.store import NotLeader, OutputWrite, Store
from controller.store.keys import LEADER, TRIGGERS, output_key
from controller.store.leader import Forwarded, forward, forwarded_done, marks
from controller.store.transactions import encode
from gitops.objects import ObjectId
from tests.support.redis_server import RedisServer
from tests.support.runtime import (
    ALL_SUCCESS,
    CLUSTERS,
    Installation,
    commit,
    owned_files,
    retry_attempts,
    states_on,
    wait_until,
)

RETRIES = "bookinfo/policies/retry-timeout.yaml"
#: Short, so a takeover test waits seconds; renewals every second.
LEASE = {"gitops": {"leader": {"lease": "3s"}, "repo": {"interval": "1s"}}}


def _more_retries(install: Installation) -> str:
    text = (install.repo / RETRIES).read_text()
    assert "attempts: 3" in text
    return commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )


def test_a_follower_serves_the_leaders_outputs_and_takes_over_when_it_stops(
    install: Installation, redis: RedisServer
) -> None:
    install.server_overrides = LEASE
    leader = install.start_server()
    follower = install.start_replica()
    assert leader.fleet.leading and not follower.fleet.leading
    assert FleetView(follower.fleet).leader() is False
    assert follower.metrics.registry.get_sample_value("mesh_gitops_leader") == 0
    assert leader.metrics.registry.get_sample_value("mesh_gitops_leader") == 1

    # Both agents talk to the follower only.
    for cluster in CLUSTERS:
        install.start_agent(cluster, install.agent_values_raw(cluster, server=follower))
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: install.converged(c), what=f"{cluster} converged")
    assert retry_attempts(install.cluster_dir("cluster1")) == {3}

    # Only the leader translated and published; the follower holds the same versions.
    assert follower.fleet.session is None and follower.fleet.translated is None
    raw = redis.client(decode_responses=True)
    for cluster in CLUSTERS:
        version = leader.fleet.clusters[cluster].version
        assert raw.hget(output_key(cluster), "version") == str(version)
        assert follower.fleet.clusters[cluster].version == version
        assert dict(follower.fleet.clusters[cluster].outputs) == dict(
            leader.fleet.clusters[cluster].outputs
        )
        # And the commit they came from, read from Redis beside the version.
        revision = leader.fleet.clusters[cluster].published_revision
        assert revision is not None
        assert follower.fleet.clusters[cluster].published_revision == revision
    # The leader saw the inputs agents pushed to the follower, and their ACKs.
    assert all(leader.fleet.clusters[c].complete for c in CLUSTERS)
    before = {c: leader.fleet.clusters[c].version for c in CLUSTERS}

    # The leader stops (releasing the lock): the follower takes over and publishes.
    install.server = None
    leader.stop()
    install.replicas.remove(follower)
    install.server = follower
    wait_until(lambda: follower.fleet.leading, timeout=10, what="the follower to lead")
    assert follower.metrics.registry.get_sample_value("mesh_gitops_leader") == 1

    sha = _more_retries(install)
    wait_until(
        lambda: all(follower.fleet.clusters[c].published_revision == sha for c in CLUSTERS),
        what="the new leader to publish the commit",
    )
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: install.converged(c), what=f"{cluster} converged again")
        assert follower.fleet.clusters[cluster].version > before[cluster]
    assert retry_attempts(install.cluster_dir("cluster1")) == {6}
    wait_until(
        lambda: states_on(install.repo, sha) == ALL_SUCCESS, what="statuses from the new leader"
    )


def test_a_replica_whose_lock_is_taken_stops_publishing_at_once(
    install: Installation, redis: RedisServer
) -> None:
    install.server_overrides = LEASE
    server = install.start_synced()
    fleet = server.fleet
    raw = redis.client(decode_responses=True)
    versions = {c: raw.hget(output_key(c), "version") for c in CLUSTERS}
    files = {c: owned_files(install.cluster_dir(c)) for c in CLUSTERS}

    raw.set(LEADER, "another-replica")  # no TTL: it stays taken until the test frees it

    # The very next publish is refused by Redis, before any renewal noticed anything.
    obj = dict(next(iter(fleet.clusters["cluster1"].outputs.values())))
    with pytest.raises(NotLeader):
        fleet.store.write_many({"cluster1": OutputWrite({ObjectId.of(obj): encode(obj)})})
    wait_until(lambda: not fleet.leading, timeout=10, what="the replica to stop leading")

    sha = _more_retries(install)
    wait_until(lambda: server.bundle is not None and server.bundle.revision == sha, what="load")
    # A reconcile now (as the worker would run it) publishes nothing.
    with pytest.raises(NotLeader):
        fleet.reconcile()
    assert {c: raw.hget(output_key(c), "version") for c in CLUSTERS} == versions
    assert {c: owned_files(install.cluster_dir(c)) for c in CLUSTERS} == files
    assert fleet.clusters["cluster1"].published_revision != sha

    # The other replica goes away: this one takes the lock again and publishes the commit.
    raw.delete(LEADER)
    wait_until(lambda: fleet.leading, timeout=10, what="the replica to lead again")
    wait_until(
        lambda: fleet.clusters["cluster1"].published_revision == sha,
        what="the commit published",
    )
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: install.converged(c), what=f"{cluster} converged")
    assert retry_attempts(install.cluster_dir("cluster1")) == {6}


# -- triggers a follower receives reach the leader ---------------------------------------------

HOOK_KEY = b"hook-key-5c0e19"
#: An hour: within a test, only a forwarded trigger can make the leader fetch a new commit.
NO_POLL = {"interval": "1h"}


def _github_push(client: httpx.Client, ref: str, sha: str) -> httpx.Response:
    body = json.dumps({"ref": ref, "after": sha}).encode()
    signature = hmac.new(HOOK_KEY, body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return client.post("/hooks/github", content=body, headers=headers)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_webhook_delivered_to_a_follower_reaches_the_leader(
    install: Installation, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.server")
    install.secrets.write("gitops-webhooks", "github", HOOK_KEY + b"\n")
    install.server_overrides = {
        "gitops": {
            # file://: no local file watch either.
            "repo": {"url": f"file://{install.repo}", **NO_POLL},
            "webhooks": {"secretName": "gitops-webhooks"},
        }
    }
    leader = install.start_server()
    follower = install.start_replica()
    assert leader.fleet.leading and not follower.fleet.leading
    assert leader.loop is not None and leader.loop.watch is None
    for cluster in CLUSTERS:
        install.start_agent(cluster, install.agent_values_raw(cluster, server=follower))
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: install.converged(c), what=f"{cluster} converged")
    before = {c: leader.fleet.clusters[c].version for c in CLUSTERS}

    sha = _more_retries(install)
    with httpx.Client(base_url=f"http://127.0.0.1:{follower.ports['api']}", timeout=30) as api:
        accepted = _github_push(api, "refs/heads/main", sha)
    assert accepted.status_code == 202

    # Published by the leader (the only one that translates), followed by the follower.
    wait_until(
        lambda: all(leader.fleet.clusters[c].published_revision == sha for c in CLUSTERS),
        what="the leader to publish the commit",
    )
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: install.converged(c), what=f"{cluster} converged again")
        assert leader.fleet.clusters[cluster].version > before[cluster]
        assert follower.fleet.clusters[cluster].version == leader.fleet.clusters[cluster].version
    assert retry_attempts(install.cluster_dir("cluster1")) == {6}
    assert follower.fleet.session is None  # the follower translated nothing itself
    messages = _messages(caplog)
    assert "reload: forwarded:webhook:github" in messages
    assert any(m.startswith("forwarded webhook:github to the leader") for m in messages)
    # The leader deleted the entry once it had acted on it.
    assert redis.client().xlen(TRIGGERS) == 0


def _held_leader(install: Installation, caplog: pytest.LogCaptureFixture) -> Server:
    """A leader with `automated: false` whose first commit waits, held, on both clusters."""
    caplog.set_level(logging.INFO, logger="controller.server")
    install.server_overrides = {
        "gitops": {
            "sync": {"automated": False},
            "repo": {"url": f"file://{install.repo}", **NO_POLL},
        }
    }
    leader = install.start_server()
    for cluster in CLUSTERS:
        install.start_agent(cluster)
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: leader.fleet.clusters[c].held_revision, what=f"{cluster} held")
    return leader


def test_a_manual_sync_sent_to_a_follower_is_approved_and_published_by_the_leader(
    install: Installation, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    leader = _held_leader(install, caplog)
    follower = install.start_replica()
    assert not follower.fleet.leading
    first = leader.bundle.revision if leader.bundle is not None else None
    assert first is not None

    with httpx.Client(base_url=f"http://127.0.0.1:{follower.ports['api']}", timeout=30) as api:
        answer = api.post("/api/sync")
        assert answer.status_code == 202
        assert answer.json() == {"revision": first, "forwarded": True}
        install.wait_synced()
        assert leader.fleet.approved == first
        assert all(leader.fleet.clusters[c].published_revision == first for c in CLUSTERS)

        # A new commit the leader has not even fetched (no poll, no watch): the sync sent
        # to the follower makes the leader fetch it, approve it and publish it.
        sha = _more_retries(install)
        assert leader.bundle is not None and leader.bundle.revision == first
        answer = api.post("/api/sync")
        assert answer.status_code == 202
        assert answer.json() == {"revision": sha, "forwarded": True}
    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: (
                leader.fleet.clusters[c].published_revision == sha and install.converged(c)
            ),
            what=f"{cluster} synced at the commit",
        )
    assert leader.fleet.approved == sha
    assert retry_attempts(install.cluster_dir("cluster1")) == {6}
    assert follower.fleet.session is None
    messages = _messages(caplog)
    assert "reload: forwarded:sync" in messages
    assert f"forwarded sync: approved {sha}" in messages


def test_a_forwarded_sync_of_a_commit_the_leader_did_not_load_approves_nothing(
    install: Installation, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    leader = _held_leader(install, caplog)
    stale = "0" * 40  # e.g. a follower's approval of a head the branch has moved past
    forward(redis.client(), "another-replica", "sync", approve=stale)

    wait_until(
        lambda: any("is not approved" in m for m in _messages(caplog)),
        what="the leader to act on the forwarded sync",
    )
    assert leader.loop is not None and leader.loop.trigger.wait_idle(timeout=30)
    assert leader.fleet.approved is None
    assert all(leader.fleet.clusters[c].version == 0 for c in CLUSTERS)
    assert "reload: forwarded:sync" in _messages(caplog)
    wait_until(lambda: redis.client().xlen(TRIGGERS) == 0, what="the entry deleted")


def test_forwarded_triggers_are_read_with_the_marks_in_order_and_deleted_when_done(
    redis: RedisServer,
) -> None:
    client = redis.client()
    store = Store(client)
    store.ensure_generation()
    first = forward(client, "replica-b", "webhook:gitlab")
    second = forward(client, "replica-c", "sync", approve="a" * 40)

    assert marks(store).forwarded == ()  # followers do not ask
    found = marks(store, forwarded=True).forwarded
    assert found == (
        Forwarded(first, "webhook:gitlab", None, "replica-b"),
        Forwarded(second, "sync", "a" * 40, "replica-c"),
    )
    forwarded_done(client, [first])
    assert [f.id for f in marks(store, forwarded=True).forwarded] == [second]
    forwarded_done(client, [second])
    assert marks(store, forwarded=True).forwarded == ()
