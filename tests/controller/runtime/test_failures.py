"""End to end: losing Redis and restarting the server delete nothing, and converge again.

DESIGN.md sections 4 and 5, gloo-semantics.md section 5.6: a lost cache sends the server
back to safe mode until the agents have pushed full snapshots again; a restarted server on
the same Redis knows every agent's version and sends nothing to agents already current.
A `DeletionWatch` samples the clusters' owned files throughout, so even a file deleted
and written back between two checks fails the test.
"""

from __future__ import annotations

import random

import httpx

from controller.server.fleet_view import FleetView
from tests.support.redis_server import RedisServer
from tests.support.runtime import CLUSTERS, DeletionWatch, Installation, inodes, wait_until


def _readyz(install: Installation) -> int:
    port = install.running.ports["health"]
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code


def _snapshot(install: Installation) -> dict[str, bytes]:
    """Every file of both clusters, by path, with its bytes."""
    files = {}
    for cluster in CLUSTERS:
        root = install.cluster_dir(cluster)
        for path in root.rglob("*.yaml"):
            if not path.name.startswith("."):
                files[f"{cluster}/{path.relative_to(root)}"] = path.read_bytes()
    return files


def test_redis_lost_under_connected_agents_deletes_nothing_and_warms_again(
    install: Installation, redis: RedisServer
) -> None:
    server = install.start_synced()
    fleet = server.fleet
    before = _snapshot(install)
    generation = fleet.generation
    full = {c: fleet.clusters[c].sent_full for c in CLUSTERS}
    dirs = [install.cluster_dir(c) for c in CLUSTERS]

    with DeletionWatch(dirs) as watch:
        redis.kill()
        wait_until(
            lambda: not FleetView(fleet).redis_ok(), what="the server to notice Redis is down"
        )
        assert _readyz(install) == 503
        # cluster2's agent goes away while Redis is down: its applied config stays, and the
        # server, once Redis is back and empty, waits for it (safe mode).
        install.stop_agent("cluster2")
        redis.restart()
        wait_until(lambda: fleet.generation != generation, what="a new cache generation")
        wait_until(
            lambda: FleetView(fleet).safe_mode().awaited == ("cluster2",), what="cluster2 awaited"
        )
        assert FleetView(fleet).safe_mode().active
        assert _readyz(install) == 503
        # cluster1's agent reconnected and pushed a full snapshot into the new cache.
        wait_until(lambda: fleet.clusters["cluster1"].complete, what="cluster1 pushed again")
        assert [s.awaited for s in FleetView(fleet).clusters()] == [False, True]
        # Nothing is translated or published from half the fleet.
        assert all(fleet.clusters[c].version == 0 for c in CLUSTERS)
        assert _snapshot(install) == before

        install.start_agent("cluster2")
        wait_until(lambda: not FleetView(fleet).safe_mode().active, what="safe mode to end")
        install.wait_synced()
        assert _readyz(install) == 200
        assert watch.samples > 10
    assert watch.vanished == set()
    # Published again in the new generation, as full snapshots (old versions mean nothing
    # now), with the same content: every file is still there with the same bytes.
    for cluster in CLUSTERS:
        c = fleet.clusters[cluster]
        assert c.applied == fleet.wire_version(c.version)
        assert c.applied.startswith(fleet.generation)
        assert c.sent_full > full[cluster]
        assert install.converged(cluster)
    assert _snapshot(install) == before


def test_restarted_server_finds_agents_current_and_sends_them_nothing(
    install: Installation,
) -> None:
    install.start_server()
    for cluster in CLUSTERS:
        install.start_agent(cluster)
    install.wait_synced()
    old = install.running.fleet
    versions = {c: old.clusters[c].version for c in CLUSTERS}
    files = {c: inodes(install.cluster_dir(c), install.published_files(c)) for c in CLUSTERS}
    # One agent keeps running and reconnects by its backoff; the other is stopped and
    # started after the new server is up. Which is which is random.
    restarted = random.choice(CLUSTERS)

    with DeletionWatch(install.cluster_dir(c) for c in CLUSTERS) as watch:
        install.stop_agent(restarted)
        server = install.restart_server()
        install.start_agent(restarted)
        fleet = server.fleet
        assert fleet.generation == old.generation
        for cluster in CLUSTERS:
            wait_until(
                lambda c=cluster: FleetView(fleet).clusters()[CLUSTERS.index(c)].connected,
                what=f"{cluster} reconnected",
            )
            wait_until(lambda c=cluster: fleet.clusters[c].complete, what=f"{cluster} pushed")
        install.wait_synced()
        assert not FleetView(fleet).safe_mode().active
    assert watch.vanished == set()
    for cluster in CLUSTERS:
        c = fleet.clusters[cluster]
        # Versions survived in Redis; nothing was sent, nothing rewritten.
        assert c.version == versions[cluster]
        assert (c.sent_full, c.sent_delta) == (0, 0)
        assert inodes(install.cluster_dir(cluster), files[cluster]) == files[cluster]
        assert install.converged(cluster)
