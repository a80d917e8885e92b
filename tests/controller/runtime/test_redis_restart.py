"""End to end: Redis killed in the middle of a sync (right after a commit) and restarted
empty deletes nothing, and the commit still reaches both clusters.

`test_failures.py` covers losing Redis with the fleet at rest (and an agent missing while
it is down); this is the case where a new commit is being translated, published and
applied when the cache disappears. The test's own `redis-server` (the `redis` fixture,
no persistence) is SIGKILLed at two points of that sync (see the test's docstring) and
restarted empty on the same port. A `DeletionWatch` samples the clusters' owned files
throughout, so even a file deleted and written back between two checks fails the test.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from controller.server.fleet_view import FleetView
from tests.support.redis_server import RedisServer
from tests.support.runtime import (
    CLUSTERS,
    DeletionWatch,
    Installation,
    commit,
    owned_files,
    retry_attempts,
    wait_until,
)

RETRIES = "bookinfo/policies/retry-timeout.yaml"


def _readyz(install: Installation) -> httpx.Response:
    port = install.running.ports["health"]
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)


@pytest.mark.parametrize("stage", ["loaded", "published"])
def test_redis_killed_during_a_sync_deletes_nothing_and_the_commit_lands(
    install: Installation, redis: RedisServer, caplog: pytest.LogCaptureFixture, stage: str
) -> None:
    """`loaded`: killed as soon as the server has loaded the commit (before the reconcile
    worker published it, as measured); `published`: killed once the commit is published to
    cluster1, while the agents fetch and apply it."""
    caplog.set_level(logging.WARNING, logger="controller.server.fleet")
    server = install.start_synced()
    fleet = server.fleet
    view = FleetView(fleet)
    generation = fleet.generation
    full = {c: fleet.clusters[c].sent_full for c in CLUSTERS}
    snapshots = {c: fleet.clusters[c].last_snapshot for c in CLUSTERS}
    files = {c: set(owned_files(install.cluster_dir(c))) for c in CLUSTERS}
    assert all(retry_attempts(install.cluster_dir(c)) == {3} for c in CLUSTERS)

    with DeletionWatch(install.cluster_dir(c) for c in CLUSTERS) as watch:
        text = (install.repo / RETRIES).read_text()
        sha = commit(install.repo, "retries", {RETRIES: text.replace("attempts: 3", "attempts: 7")})
        assert server.reload() == sha  # the commit is loaded and handed to the worker
        if stage == "published":
            wait_until(
                lambda: fleet.clusters["cluster1"].published_revision == sha,
                what="the commit published to cluster1",
            )
        redis.kill()
        wait_until(lambda: not view.redis_ok(), what="the server to notice Redis is down")
        down = _readyz(install)
        assert down.status_code == 503
        assert down.json()["redis"] is False
        # Whatever the sync had got to, the clusters keep every file while Redis is down.
        assert {c: set(owned_files(install.cluster_dir(c))) for c in CLUSTERS} == files

        redis.restart()
        wait_until(lambda: fleet.generation != generation, what="a new cache generation")
        # Both agents push full snapshots into the empty cache; safe mode ends with them.
        for cluster in CLUSTERS:
            wait_until(
                lambda c=cluster: (
                    fleet.clusters[c].complete and fleet.clusters[c].last_snapshot != snapshots[c]
                ),
                what=f"{cluster} pushed again",
            )
        wait_until(lambda: not view.safe_mode().active, what="safe mode to end")
        for cluster in CLUSTERS:
            wait_until(
                lambda c=cluster: (
                    fleet.clusters[c].published_revision == sha and install.converged(c)
                ),
                what=f"{cluster} synced at the commit",
            )
        assert _readyz(install).status_code == 200
        assert watch.samples > 10
    assert watch.vanished == set()
    lost = [r.getMessage() for r in caplog.records if "snapshot cache lost" in r.getMessage()]
    assert lost == ["snapshot cache lost (Redis flushed or restarted): back to safe mode"]
    for cluster in CLUSTERS:
        c = fleet.clusters[cluster]
        # Published again in the new generation, as a full snapshot.
        assert c.applied == fleet.wire_version(c.version)
        assert c.applied.startswith(fleet.generation)
        assert c.sent_full > full[cluster]
        assert set(owned_files(install.cluster_dir(cluster))) == files[cluster]
        assert retry_attempts(install.cluster_dir(cluster)) == {7}
