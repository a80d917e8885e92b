"""End to end: a server and two agents over mutual TLS sync the example config, follow a
config change with a delta, and refuse agents that are not who they claim to be."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from controller.agent.runner import Agent
from controller.backends.directory import DirectoryBackend
from controller.relay import credentials, relay_pb2, relay_pb2_grpc
from controller.relay.enroll import EnrollmentRefused
from controller.secrets import SecretsDir
from tests.support.redis_server import RedisServer
from tests.support.runtime import (
    CLUSTERS,
    Installation,
    commit,
    inodes,
    owned_files,
    wait_until,
)

RETRIES = "bookinfo/policies/retry-timeout.yaml"


def test_two_agents_register_push_inputs_and_apply_their_outputs(
    install: Installation, redis: RedisServer
) -> None:
    server = install.start_synced()
    # Each agent registered: it holds a certificate the server issued for its own name.
    for cluster in CLUSTERS:
        chain = install.agent_secrets(cluster).read("relay-client-tls-secret", "tls.crt")
        assert b"BEGIN CERTIFICATE" in chain
    # What each cluster got is exactly what the server published for it.
    for cluster in CLUSTERS:
        files = owned_files(install.cluster_dir(cluster))
        published = server.fleet.clusters[cluster].outputs
        assert len(files) == len(published) > 10
        kinds = {doc["kind"] for doc in files.values()}
        assert {"VirtualService", "DestinationRule", "Gateway"} <= kinds
        assert install.converged(cluster)
    # The server holds both clusters' inputs in Redis, in Gloo's layout.
    client = redis.client()
    keys = set(client.smembers("gloo.mesh.key.set"))
    assert {b"cluster1~~v1~Service", b"cluster2~apps~v1~Deployment"} <= keys


def test_a_resync_resends_the_whole_set_and_rewrites_nothing_unchanged(
    install: Installation,
) -> None:
    server = install.start_synced()
    root = install.cluster_dir("cluster1")
    files = owned_files(root)
    before = inodes(root, files)
    c = server.fleet.clusters["cluster1"]
    sent, version, acked = c.sent_full, c.version, c.acked_at or 0.0
    server.fleet.resync("cluster1")
    wait_until(lambda: (c.acked_at or 0.0) > acked, what="the resync ACKed")
    # The whole set went out again at the same version, and nothing needed rewriting.
    assert c.sent_full == sent + 1 and c.version == version
    assert server.fleet.clusters["cluster2"].sent_full == 1
    assert inodes(root, files) == before


def _retries(doc: dict) -> list[int]:
    return [
        route["retries"]["attempts"]
        for route in doc.get("spec", {}).get("http", [])
        if "retries" in route
    ]


def test_a_config_change_reaches_both_agents_as_a_delta(install: Installation) -> None:
    server = install.start_synced()
    before = {c: owned_files(install.cluster_dir(c)) for c in CLUSTERS}
    retried = {c: sorted(rel for rel, doc in before[c].items() if _retries(doc)) for c in CLUSTERS}
    assert all(retried.values()), "the example config retries some routes in every cluster"
    untouched = {c: sorted(set(before[c]) - set(retried[c])) for c in CLUSTERS}
    nodes = {c: inodes(install.cluster_dir(c), untouched[c]) for c in CLUSTERS}
    versions = {c: server.fleet.clusters[c].version for c in CLUSTERS}
    full = {c: server.fleet.clusters[c].sent_full for c in CLUSTERS}

    text = (install.repo / RETRIES).read_text()
    commit(install.repo, "five retries", {RETRIES: text.replace("attempts: 3", "attempts: 5")})
    server.reload()

    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: server.fleet.clusters[c].version > versions[c],
            what=f"{cluster} published again",
        )
    install.wait_synced()
    for cluster in CLUSTERS:
        c = server.fleet.clusters[cluster]
        after = owned_files(install.cluster_dir(cluster))
        assert after.keys() == before[cluster].keys()
        assert all(set(_retries(after[rel])) == {5} for rel in retried[cluster])
        # A delta: nothing else was rewritten, and no full snapshot was sent.
        assert inodes(install.cluster_dir(cluster), untouched[cluster]) == nodes[cluster]
        assert c.sent_full == full[cluster] and c.sent_delta >= 1
        assert install.converged(cluster)


def test_an_agent_cannot_claim_another_cluster_nor_register_an_unknown_one(
    install: Installation, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without safe mode the server translates with cluster1 alone; cluster2 gets nothing.
    install.server_overrides = {"glooMgmtServer": {"safeMode": False}}
    server = install.start_server()
    install.start_agent("cluster1")
    install.wait_synced("cluster1")
    cluster2 = install.cluster_dir("cluster2")
    listing = sorted(p.relative_to(cluster2) for p in cluster2.rglob("*"))

    # cluster1's certificate, claiming cluster2 on both streams: refused, nothing stored.
    state = tmp_path / "impostor"
    impostor = Agent(
        "cluster2",
        install.agent_values("cluster2"),
        install.agent_secrets("cluster1"),
        DirectoryBackend("cluster2", cluster2, state),
        state,
    )
    caplog.set_level(logging.INFO, logger="controller.agent.streams")
    impostor.start()
    try:
        wait_until(
            lambda: sum("PERMISSION_DENIED" in r.getMessage() for r in caplog.records) >= 2,
            what="both streams refused",
        )
    finally:
        impostor.stop()
    refusals = [r.getMessage() for r in caplog.records if "PERMISSION_DENIED" in r.getMessage()]
    assert any("claims cluster 'cluster2'" in m and "'cluster1'" in m for m in refusals)
    c2 = server.fleet.clusters.get("cluster2")
    assert c2 is None or (not c2.complete and not c2.inputs and not c2.applied)
    assert sorted(p.relative_to(cluster2) for p in cluster2.rglob("*")) == listing
    assert install.synced("cluster1")

    # A cluster with no KubernetesCluster in Git cannot register.
    unknown = tmp_path / "cluster3"
    unknown.mkdir()
    secrets = install.agent_secrets("cluster1").root
    fresh = tmp_path / "cluster3-secrets"
    for secret in ("relay-root-tls-secret", "relay-identity-token-secret"):
        (fresh / secret).mkdir(parents=True)
        for key in (secrets / secret).iterdir():
            (fresh / secret / key.name).write_bytes(key.read_bytes())
    stranger = Agent(
        "cluster3",
        install.agent_values("cluster3"),
        SecretsDir(fresh),
        DirectoryBackend("cluster3", unknown, tmp_path / "cluster3-state"),
        tmp_path / "cluster3-state",
    )
    with pytest.raises(EnrollmentRefused) as refused:
        stranger.start()
    stranger.stop()
    assert "cluster3" in refused.value.details()
    assert not (fresh / "relay-client-tls-secret").exists()
    assert not list(unknown.iterdir())


def test_a_certificate_outliving_its_kubernetescluster_cannot_stream(
    install: Installation,
) -> None:
    server = install.start_synced()
    secrets = install.agent_secrets("cluster2")
    key = secrets.read("relay-client-tls-secret", "tls.key")
    chain = secrets.read("relay-client-tls-secret", "tls.crt")
    root = secrets.read("relay-root-tls-secret", "ca.crt")
    commit(install.repo, "retire cluster2", {"clusters/cluster2.yaml": None})
    server.reload()
    address = f"127.0.0.1:{server.ports['relay']}"
    with credentials.relay_channel(address, root, key, chain, "localhost") as channel:
        stub = relay_pb2_grpc.RelayStub(channel)
        hello = relay_pb2.InputDelta(cluster="cluster2", nonce="1", full=True)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Push(iter([hello]), timeout=10))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no KubernetesCluster named 'cluster2'" in (refused.value.details() or "")
