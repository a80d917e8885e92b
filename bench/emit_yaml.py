"""Benchmark: `gitops.rendering.write_all` against `json.dumps` and PyYAML's CSafeDumper.

Builds one workload cluster's worth of output (~12,000 Istio objects: a VirtualService, a
DestinationRule and a WorkloadEntry per service), the shapes the translators emit, with the
~14 standard labels shared as one dict object, as the translators share them. Prints MB/s and
objects/s per serialiser and the ratio to `json.dumps(sort_keys=True)`; the render budget is
<= 2.5x json.dumps time (the fleet is ~1.2 million objects).

A second run copies the labels into every object (nothing shared), to show the cost when the
container memo cannot help.

Run from the repository root: `PYTHONPATH=. python bench/emit_yaml.py [--services N]
[--repeat R] [--skip-pyyaml]` (the project is not installed into the virtualenv).
Timings are best-of-R with `time.perf_counter`, GC left on as in the real process.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from gitops.rendering import dump_all, write_all

Obj = dict[str, Any]


def standard_labels(cluster: str) -> dict[str, str]:
    """The ~14 labels every output carries (ownership, provenance, mesh placement)."""
    return {
        "app.kubernetes.io/managed-by": "mesh-gitops",
        "app.kubernetes.io/part-of": "gloo-mesh",
        "app.kubernetes.io/component": "translated-config",
        "app.kubernetes.io/version": "0.1.0",
        "gitops.mesh.io/owner": "mgmt",
        "gitops.mesh.io/cluster": cluster,
        "gitops.mesh.io/workspace": "bookinfo-team",
        "gitops.mesh.io/revision": "9f2c1e4b7a",
        "reconciler.mesh.gloo.solo.io/name": "translator",
        "cluster.multicluster.solo.io": cluster,
        "context.mesh.gloo.solo.io/cluster": cluster,
        "context.mesh.gloo.solo.io/namespace": "istio-system",
        "context.mesh.gloo.solo.io/workspace": "bookinfo-team",
        "owner.gloo.solo.io/name": "gloo-mesh",
    }


def metadata(name: str, ns: str, labels: dict[str, str], source: str) -> Obj:
    return {
        "name": name,
        "namespace": ns,
        "labels": labels,
        "annotations": {"gitops.mesh.io/source": source},
    }


def virtual_service(i: int, labels: dict[str, str]) -> Obj:
    svc, ns = f"svc-{i}", f"ns-{i % 50}"
    host = f"{svc}.{ns}.svc.cluster.local"
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(f"{svc}-routes", ns, labels, f"RouteTable/{ns}/{svc}"),
        "spec": {
            "hosts": [host, f"{svc}.mesh.internal"],
            "exportTo": ["."],
            "http": [
                {
                    "name": "canary",
                    "match": [
                        {"uri": {"prefix": "/api/v2"}, "headers": {"x-canary": {"exact": "true"}}}
                    ],
                    "route": [
                        {
                            "destination": {"host": host, "subset": "v2", "port": {"number": 9080}},
                            "weight": 10,
                        },
                        {
                            "destination": {"host": host, "subset": "v1", "port": {"number": 9080}},
                            "weight": 90,
                        },
                    ],
                    "timeout": "15s",
                    "retries": {
                        "attempts": 3,
                        "perTryTimeout": "2s",
                        "retryOn": "5xx,reset,connect-failure",
                    },
                },
                {
                    "name": "default",
                    "route": [
                        {"destination": {"host": host, "subset": "v1", "port": {"number": 9080}}}
                    ],
                    "timeout": "10s",
                },
            ],
        },
    }


def destination_rule(i: int, labels: dict[str, str]) -> Obj:
    svc, ns = f"svc-{i}", f"ns-{i % 50}"
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(f"{svc}-dr", ns, labels, f"TrafficPolicy/{ns}/{svc}"),
        "spec": {
            "host": f"{svc}.{ns}.svc.cluster.local",
            "exportTo": ["."],
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "connectionPool": {
                    "tcp": {"maxConnections": 100, "connectTimeout": "30ms"},
                    "http": {"http2MaxRequests": 1000, "maxRequestsPerConnection": 10},
                },
                "outlierDetection": {
                    "consecutive5xxErrors": 7,
                    "interval": "5m",
                    "baseEjectionTime": "15m",
                    "maxEjectionPercent": 100,
                },
                "loadBalancer": {"localityLbSetting": {"enabled": True}, "simple": "LEAST_REQUEST"},
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
            ],
        },
    }


def workload_entry(i: int, labels: dict[str, str]) -> Obj:
    svc, ns = f"svc-{i}", f"ns-{i % 50}"
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": metadata(f"{svc}-remote-cluster2", ns, labels, f"Service/cluster2/{ns}/{svc}"),
        "spec": {
            "address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "network": "network2",
            "locality": "us-east-1/us-east-1b",
            "serviceAccount": svc,
            "weight": 1,
            "labels": {"app": svc, "version": "v1", "security.istio.io/tlsMode": "istio"},
            "ports": {"http": 15443, "grpc": 15443},
        },
    }


def build(services: int, shared: bool) -> list[Obj]:
    shared_labels = standard_labels("cluster1")
    objs: list[Obj] = []
    for i in range(services):
        for make in (virtual_service, destination_rule, workload_entry):
            labels = shared_labels if shared else dict(shared_labels)
            objs.append(make(i, labels))
    return objs


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    """(best seconds, output size in bytes) over `repeat` runs."""
    best, size = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = fn()
        best = min(best, time.perf_counter() - start)
    return best, size


def run(objs: list[Obj], repeat: int, skip_pyyaml: bool) -> None:
    def ours() -> int:
        buf = io.StringIO()
        write_all(objs, buf.write)
        return len(buf.getvalue().encode())

    def with_json() -> int:
        return sum(len(json.dumps(o, sort_keys=True).encode()) for o in objs)

    def with_pyyaml() -> int:
        text = yaml.dump_all(objs, Dumper=yaml.CSafeDumper, default_flow_style=False)
        return len(text.encode())

    # The benchmark is only meaningful if the text is right: it must reload as the input.
    assert list(yaml.load_all(dump_all(objs[:300]), Loader=yaml.CSafeLoader)) == objs[:300]

    rows = [("rendering.write_all", *best_of(repeat, ours))]
    rows.append(("json.dumps(sort_keys)", *best_of(repeat, with_json)))
    if not skip_pyyaml:
        rows.append(("yaml CSafeDumper", *best_of(max(1, repeat // 3), with_pyyaml)))
    for name, secs, size in rows:
        print(
            f"  {name:<22} {secs * 1000:8.1f} ms  {size / secs / 1e6:7.1f} MB/s  "
            f"{len(objs) / secs:9.0f} objects/s  ({size / 1e6:.2f} MB)"
        )
    print(f"  time ratio write_all / json.dumps: {rows[0][1] / rows[1][1]:.2f}x (budget 2.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=4000, help="3 objects per service")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-pyyaml", action="store_true")
    args = parser.parse_args()
    for shared in (True, False):
        objs = build(args.services, shared)
        what = "shared labels dict" if shared else "labels copied per object"
        print(f"{len(objs)} objects, {what}:")
        run(objs, args.repeat, args.skip_pyyaml)


if __name__ == "__main__":
    main()
