"""End to end: a server and two agents over mutual TLS sync the example config."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.redis_server import RedisServer
from tests.support.runtime import Installation, wait_until


def owned_files(cluster_dir: Path) -> dict[str, dict]:
    """The Istio objects the agent wrote into a directory-backed cluster, by path."""
    found = {}
    for path in sorted(cluster_dir.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            labels = (doc or {}).get("metadata", {}).get("labels", {})
            if labels.get("app.kubernetes.io/managed-by") == "mesh-gitops":
                found[str(path.relative_to(cluster_dir))] = doc
    return found


def synced(install: Installation, cluster: str) -> bool:
    server = install.server
    assert server is not None
    c = server.fleet.clusters.get(cluster)
    return bool(c and c.version and c.applied == server.fleet.wire_version(c.version))


def test_two_agents_register_push_inputs_and_apply_their_outputs(
    install: Installation, redis: RedisServer
) -> None:
    server = install.start_server()
    for cluster in ("cluster1", "cluster2"):
        install.start_agent(cluster)
    for cluster in ("cluster1", "cluster2"):
        wait_until(lambda c=cluster: synced(install, c), what=f"{cluster} synced")
    # Each agent registered: it holds a certificate the server issued for its own name.
    for cluster in ("cluster1", "cluster2"):
        chain = install.agent_secrets(cluster).read("relay-client-tls-secret", "tls.crt")
        assert b"BEGIN CERTIFICATE" in chain
    # What each cluster got is exactly what the server published for it.
    for cluster in ("cluster1", "cluster2"):
        files = owned_files(install.cluster_dir(cluster))
        published = server.fleet.clusters[cluster].outputs
        assert len(files) == len(published) > 10
        kinds = {doc["kind"] for doc in files.values()}
        assert {"VirtualService", "DestinationRule", "Gateway"} <= kinds
    # The server holds both clusters' inputs in Redis, in Gloo's layout.
    client = redis.client()
    keys = set(client.smembers("gloo.mesh.key.set"))
    client.close()
    assert {b"cluster1~~v1~Service", b"cluster2~apps~v1~Deployment"} <= keys
