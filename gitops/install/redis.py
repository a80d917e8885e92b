"""The bundled Redis: `gloo-mesh-redis`, the management server's snapshot cache.

Called by `gitops.install.render` when both `glooMgmtServer.enabled` and
`redis.deployment.enabled` (the default). One replica, no persistence: the store is a cache
that agents refill (full snapshot on reconnect) and safe mode guards while it is empty
(DESIGN.md section 4), so snapshots to disk would only cost I/O. It runs with
`maxmemory-policy noeviction`: an evicting policy would silently drop snapshot keys, and a
missing key must never look like "this cluster has nothing" (reliability-anchors F14).
"""

from __future__ import annotations

from typing import Any

from gitops.install import pods
from gitops.install.context import REDIS_NAME, REDIS_PORT, Context

COMPONENT = "redis"
#: UID of the `redis` user in the official image.
UID = 999


def args(io_threads: int | None) -> list[str]:
    """`redis-server` flags."""
    out = [
        "--port",
        str(REDIS_PORT),
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
    ]
    if io_threads is not None and io_threads > 1:
        # Threads for writes alone help little with our large snapshot reads (HGETALL of
        # per-kind hashes); let them parse and read too.
        out += ["--io-threads", str(io_threads), "--io-threads-do-reads", "yes"]
    return out


def render(ctx: Context) -> list[dict[str, Any]]:
    deployment = ctx.values.redis.deployment
    probe = {"tcpSocket": {"port": "redis"}, "periodSeconds": 5}
    container = {
        "name": "redis",
        **pods.image_fields(deployment.image, ctx.options.version),
        "command": ["redis-server"],
        "args": args(deployment.io_threads),
        "ports": [pods.container_port("redis", REDIS_PORT)],
        "livenessProbe": {**probe, "periodSeconds": 10},
        "readinessProbe": probe,
        "resources": pods.resources(deployment.resources),
        "securityContext": pods.container_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    pod_spec = {
        # Redis never calls the Kubernetes API: no token in the pod.
        "automountServiceAccountToken": False,
        "securityContext": pods.pod_security(UID),
        "containers": [container],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    return [
        pods.deployment(
            REDIS_NAME, COMPONENT, ctx.namespace, 1, pod_spec, {}, deployment.image.fips
        ),
        pods.service(
            REDIS_NAME, COMPONENT, ctx.namespace, "ClusterIP", [pods.port("redis", REDIS_PORT)]
        ),
    ]
