"""Benchmark of the Redis store (issue 4): snapshot writes, full loads, Redis memory.

Run from the repository root: `python -m bench.store` (add `--quick` for a 10x smaller
fleet). It starts the built-in Redis (`controller.store.LocalRedis`, a private redis-server
on a unix socket in a temporary directory) and measures, through the real `Store`:

(a) `replace_inputs` of one 10,000-object snapshot (half Services, half Deployments, ~1 KB
    of JSON each), median of 5 (target <= 200 ms);
(b) `load_inputs` of 100 clusters x 3,000 objects, the reconcile loop's full load after a
    start or a "too far behind" (target <= 3 s), plus Redis' `used_memory` once loaded.

The functions are importable (`objects`, `time_replace`, `time_load`, `memory_used`) so
another benchmark can run them against its own store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from controller.store import LocalRedis, Store, connect
from controller.store.transactions import encode
from gitops.helm.models import Redis

REPLACE_TARGET_S = 0.200
LOAD_TARGET_S = 3.0


def _service(cluster: str, i: int) -> dict[str, Any]:
    name, namespace = f"svc-{i:05d}", f"team-{i % 10:02d}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"{cluster}-{i:08d}-5c1e-4f7a-9d2b-0a6c3e8f1b27",
            "resourceVersion": str(100_000 + i),
            "creationTimestamp": "2024-05-14T08:00:00Z",
            "labels": {"app": name, "team": namespace, "app.kubernetes.io/part-of": "fleet"},
            "annotations": {
                "cluster.solo.io/cluster": cluster,
                "meta.helm.sh/release-name": f"{namespace}-{name}",
                "meta.helm.sh/release-namespace": namespace,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": f"10.96.{i // 250 % 256}.{i % 250}",
            "clusterIPs": [f"10.96.{i // 250 % 256}.{i % 250}"],
            "ipFamilies": ["IPv4"],
            "ports": [
                {"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080},
                {"name": "grpc", "port": 9090, "protocol": "TCP", "targetPort": 9090},
            ],
            "selector": {"app": name},
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {}},
    }


def _deployment(cluster: str, i: int) -> dict[str, Any]:
    name, namespace = f"svc-{i:05d}", f"team-{i % 10:02d}"
    labels = {"app": name, "version": "v1"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"{cluster}-{i:08d}-7d3a-4b1e-8c2f-1e9a4d6b0c53",
            "resourceVersion": str(200_000 + i),
            "generation": 3,
            "creationTimestamp": "2024-05-14T08:00:00Z",
            "labels": {"app": name, "team": namespace},
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "meta.helm.sh/release-name": f"{namespace}-{name}",
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example.com/{namespace}/{name}:1.4.{i % 7}",
                            "ports": [{"containerPort": 9080, "protocol": "TCP"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        }
                    ],
                },
            },
        },
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }


def objects(cluster: str, count: int) -> list[dict[str, Any]]:
    """`count` objects of one cluster: Services and Deployments, alternating."""
    return [(_service if i % 2 == 0 else _deployment)(cluster, i // 2) for i in range(count)]


def time_replace(store: Store, count: int = 10_000, repeat: int = 5) -> list[float]:
    """Seconds of each of `repeat` `replace_inputs` of a `count`-object snapshot."""
    snapshot = objects("bench-replace", count)
    timings = []
    for run in range(repeat):
        start = time.perf_counter()
        store.replace_inputs("bench-replace", snapshot, now=float(run))
        timings.append(time.perf_counter() - start)
    return timings


def time_load(store: Store, clusters: int = 100, per_cluster: int = 3_000) -> tuple[float, int]:
    """(seconds of one `load_inputs`, objects loaded) after writing the fleet."""
    for c in range(clusters):
        name = f"cluster-{c:03d}"
        store.replace_inputs(name, objects(name, per_cluster), now=0.0)
    start = time.perf_counter()
    loaded, _ = store.load_inputs()
    elapsed = time.perf_counter() - start
    return elapsed, sum(len(v) for v in loaded.values())


def memory_used(client: redis.Redis) -> int:
    """Redis `used_memory` in bytes."""
    return int(client.info("memory")["used_memory"])


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "not met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 10x smaller fleet for (b)")
    args = parser.parse_args(argv)
    clusters, per_cluster = (10, 3_000) if args.quick else (100, 3_000)
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-", dir="/tmp") as tmp,
        LocalRedis(Path(tmp)) as local,
    ):
        client = connect(Redis(), None, unix_socket=local.socket_path)
        try:
            store = Store(client)
            store.ensure_generation()
            sizes = [len(encode(o)) for o in objects("cluster-000", 100)]
            print(f"object JSON: {statistics.mean(sizes):.0f} bytes on average (compact)")
            replace = time_replace(store)
            median = statistics.median(replace)
            print(
                f"(a) replace_inputs 10,000 objects: median {median * 1000:.0f} ms "
                f"of {', '.join(f'{t * 1000:.0f}' for t in replace)} "
                f"(target <= {REPLACE_TARGET_S * 1000:.0f} ms: "
                f"{_verdict(median, REPLACE_TARGET_S)})"
            )
            store.clean(set())
            load, count = time_load(store, clusters, per_cluster)
            target = LOAD_TARGET_S * clusters / 100
            print(
                f"(b) load_inputs {clusters} clusters x {per_cluster:,} = {count:,} objects: "
                f"{load:.2f} s (target <= {target:.1f} s: {_verdict(load, target)})"
            )
            print(f"    Redis used_memory: {memory_used(client) / 2**20:.0f} MiB")
        finally:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
