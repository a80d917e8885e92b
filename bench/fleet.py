"""Synthetic fleet for the translation benchmark: a config repository plus discovery snapshots.

Used by `bench/translate.py` (which calls `ensure`) and runnable on its own to look at a fleet:
`python -m bench.fleet 10x100`. The fleet is written once into a cache folder (default
`.bench/fleet-<clusters>x<services>/`, git-ignored) and reused while `FLEET_VERSION` and the
size match, so a benchmark run never pays for generation twice.

Shape (the same shapes as `tests/golden/ex2..ex6` and `examples-repo/`):

- `repo/`: `helm/mgmt-plane.yaml` (config cluster `mgmt`); `clusters/clusters-NNN.yaml` with
  KubernetesClusters `cluster-001`..; `workspaces.yaml` with Workspaces `ws-00`..`ws-09`, each
  owning namespace `team-XX` on every cluster; per namespace `team-XX/workspace.yaml` (the
  WorkspaceSettings, one FailoverPolicy and one OutlierDetectionPolicy selecting
  VIRTUAL_DESTINATION `failover: "true"`) and `team-XX/services-NNN.yaml` (at most
  `_SERVICES_PER_FILE` services each: per service a RouteTable with a v1 90 / v2 10 subset
  split, a RetryTimeoutPolicy, on every 5th service a FaultInjectionPolicy, and on every 10th
  a VirtualDestination `svc-NNNN.global`).
- `snapshot/<cluster>/`: `nodes.yaml` (3 Nodes, region varies by cluster), `istio-system.yaml`
  (its Namespace and the east-west gateway Service, LoadBalancer IP distinct per cluster,
  port `tls` 15443) and `team-XX.yaml` (Namespace, then Service, ServiceAccount and
  Deployment of every service in that namespace).

Services are spread evenly over the namespaces in contiguous blocks (`svc-0000`.. in `team-00`),
so every namespace gets its share of fault-injected services and VirtualDestinations.

YAML is produced with string templates, not a YAML dumper: the largest fleet (~300k snapshot
objects) must be generated faster than the benchmark runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["FLEET_VERSION", "Fleet", "FleetSize", "default_cache", "ensure", "parse_size"]

#: Bump when the generated content changes, so cached fleets are rebuilt.
FLEET_VERSION = 1
NAMESPACES = 10
_SERVICES_PER_FILE = 100
_CLUSTERS_PER_FILE = 200
_MARKER = "fleet.json"
_REGIONS = ("us-east-1", "us-west-1", "eu-west-1", "eu-central-1", "ap-south-1")


@dataclass(frozen=True)
class FleetSize:
    clusters: int
    services: int
    #: Service isolation in every workspace and an AccessPolicy on every other service.
    security: bool = False

    @property
    def label(self) -> str:
        return f"{self.clusters}x{self.services}" + ("-sec" if self.security else "")


@dataclass(frozen=True)
class Fleet:
    """Where a generated fleet lives and how big it is."""

    root: Path
    clusters: int
    services: int
    config_objects: int
    config_bytes: int
    config_files: int
    snapshot_objects: int
    snapshot_bytes: int
    snapshot_files: int
    #: Seconds spent generating it (0.0 when it came from the cache).
    generated_in: float = 0.0

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    @property
    def input_bytes(self) -> int:
        return self.config_bytes + self.snapshot_bytes

    def describe(self) -> str:
        mb = 1024 * 1024
        return (
            f"fleet {self.clusters}x{self.services} at {self.root}: "
            f"config {self.config_objects:,} objects in {self.config_files} files "
            f"({self.config_bytes / mb:.1f} MB); snapshots {self.snapshot_objects:,} objects "
            f"in {self.snapshot_files} files ({self.snapshot_bytes / mb:.1f} MB)"
        )


def parse_size(text: str) -> FleetSize:
    """`"100x1000"` -> FleetSize(100, 1000); a `-sec` suffix adds isolation and policies."""
    lowered = text.lower()
    security = lowered.endswith("-sec")
    try:
        clusters, services = (int(part) for part in lowered.removesuffix("-sec").split("x"))
    except ValueError:
        raise ValueError(f"size '{text}' is not CLUSTERSxSERVICES (e.g. 10x100)") from None
    if clusters < 1 or services < 1:
        raise ValueError(f"size '{text}' needs at least one cluster and one service")
    return FleetSize(clusters, services, security)


def default_cache() -> Path:
    """`.bench/` at the repository root (this file lives in `<root>/bench/`)."""
    return Path(__file__).resolve().parent.parent / ".bench"


def ensure(size: FleetSize, cache: Path | None = None, regenerate: bool = False) -> Fleet:
    """The fleet of `size` under `cache`, generated unless a complete, current copy exists."""
    root = (cache or default_cache()) / f"fleet-{size.label}"
    if not regenerate:
        cached = _read_marker(root, size)
        if cached is not None:
            return cached
    if root.exists():
        shutil.rmtree(root)
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    started = time.perf_counter()
    writer = _Writer(partial)
    _write_repo(writer, size)
    config = writer.take_counts()
    _write_snapshots(writer, size)
    snapshot = writer.take_counts()
    fleet = Fleet(
        root=root,
        clusters=size.clusters,
        services=size.services,
        config_objects=config[0],
        config_bytes=config[1],
        config_files=config[2],
        snapshot_objects=snapshot[0],
        snapshot_bytes=snapshot[1],
        snapshot_files=snapshot[2],
    )
    record = {"version": FLEET_VERSION, **asdict(fleet)}
    record["root"] = str(root)
    (partial / _MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    # Rename last, so an interrupted generation is never mistaken for a complete fleet.
    os.replace(partial, root)
    elapsed = time.perf_counter() - started
    return Fleet(**{**asdict(fleet), "root": root, "generated_in": elapsed})


def _read_marker(root: Path, size: FleetSize) -> Fleet | None:
    try:
        record = json.loads((root / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        record.pop("version", None) != FLEET_VERSION
        or record.get("clusters") != size.clusters
        or record.get("services") != size.services
    ):
        return None
    record["root"] = root
    record["generated_in"] = 0.0
    return Fleet(**record)


class _Writer:
    """Writes YAML documents into files, counting objects, bytes and files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = 0
        self.bytes = 0
        self.files = 0

    def write(self, rel: str, documents: list[str], header: str = "") -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = (header + "---\n".join(documents)).encode("utf-8")
        path.write_bytes(data)
        self.objects += len(documents)
        self.bytes += len(data)
        self.files += 1

    def take_counts(self) -> tuple[int, int, int]:
        counts = (self.objects, self.bytes, self.files)
        self.objects = self.bytes = self.files = 0
        return counts


# -- helpers shared by both halves -----------------------------------------------------------


def _cluster_name(index: int) -> str:
    return f"cluster-{index:03d}"


def _namespace(index: int) -> str:
    return f"team-{index:02d}"


def _service_name(index: int) -> str:
    return f"svc-{index:04d}"


def _services_by_namespace(services: int) -> Iterator[tuple[int, range]]:
    """(namespace index, contiguous range of service indexes) for every namespace."""
    for ns in range(NAMESPACES):
        start = ns * services // NAMESPACES
        end = (ns + 1) * services // NAMESPACES
        yield ns, range(start, end)


def _region(cluster: int) -> str:
    return _REGIONS[(cluster - 1) % len(_REGIONS)]


# -- config repository -----------------------------------------------------------------------

_HELM = """\
# Management-plane values: every Gloo object in this repository lives in cluster `mgmt`.
common:
  cluster: mgmt
"""

_CLUSTER = """\
apiVersion: admin.gloo.solo.io/v2
kind: KubernetesCluster
metadata:
  name: {name}
  namespace: gloo-mesh
  labels:
    region: {region}
spec:
  clusterDomain: cluster.local
"""

_WORKSPACE = """\
apiVersion: admin.gloo.solo.io/v2
kind: Workspace
metadata:
  name: ws-{ns:02d}
  namespace: gloo-mesh
spec:
  workloadClusters:
  - name: '*'
    namespaces:
    - name: team-{ns:02d}
"""

_WORKSPACE_SETTINGS = """\
apiVersion: admin.gloo.solo.io/v2
kind: WorkspaceSettings
metadata:
  name: ws-{ns:02d}
  namespace: team-{ns:02d}
spec: {{}}
"""

_ISOLATED_SETTINGS = """\
apiVersion: admin.gloo.solo.io/v2
kind: WorkspaceSettings
metadata:
  name: ws-{ns:02d}
  namespace: team-{ns:02d}
spec:
  options:
    serviceIsolation:
      enabled: true
"""

_ACCESS_POLICY = """\
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata:
  name: {svc}-access
  namespace: {ns}
spec:
  applyToDestinations:
  - selector:
      name: {svc}
      namespace: {ns}
  config:
    authn:
      tlsMode: STRICT
    authzList:
    - allowedClients:
      - serviceAccountSelector:
          name: {client}
          namespace: {ns}
      allowedMethods: [GET]
"""

_FAILOVER = """\
apiVersion: resilience.policy.gloo.solo.io/v2
kind: FailoverPolicy
metadata:
  name: failover
  namespace: team-{ns:02d}
spec:
  applyToDestinations:
  - kind: VIRTUAL_DESTINATION
    selector:
      labels:
        failover: "true"
  config:
    localityMappings: []
"""

_OUTLIER = """\
apiVersion: resilience.policy.gloo.solo.io/v2
kind: OutlierDetectionPolicy
metadata:
  name: outlier-detection
  namespace: team-{ns:02d}
spec:
  applyToDestinations:
  - kind: VIRTUAL_DESTINATION
    selector:
      labels:
        failover: "true"
  config:
    consecutiveErrors: 2
    interval: 5s
    baseEjectionTime: 30s
    maxEjectionPercent: 100
"""

_ROUTE_TABLE = """\
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata:
  name: {svc}
  namespace: {ns}
spec:
  hosts:
  - {svc}.{ns}.svc.cluster.local
  http:
  - name: {svc}
    labels:
      route: {svc}
      retry: "true"{fault}
    matchers:
    - uri:
        prefix: /
    forwardTo:
      destinations:
      - ref:
          name: {svc}
          namespace: {ns}
        port:
          number: 9080
        subset:
          version: v1
        weight: 90
      - ref:
          name: {svc}
          namespace: {ns}
        port:
          number: 9080
        subset:
          version: v2
        weight: 10
"""

_FAULT_LABEL = '\n      fault: "true"'

_RETRY = """\
apiVersion: resilience.policy.gloo.solo.io/v2
kind: RetryTimeoutPolicy
metadata:
  name: {svc}-retry
  namespace: {ns}
spec:
  applyToRoutes:
  - route:
      labels:
        route: {svc}
        retry: "true"
  config:
    retries:
      attempts: 3
      perTryTimeout: 2s
    requestTimeout: 10s
"""

_FAULT = """\
apiVersion: resilience.policy.gloo.solo.io/v2
kind: FaultInjectionPolicy
metadata:
  name: {svc}-fault
  namespace: {ns}
spec:
  applyToRoutes:
  - route:
      labels:
        route: {svc}
        fault: "true"
  config:
    abort:
      httpStatus: 503
      percentage: 1
"""

_VIRTUAL_DESTINATION = """\
apiVersion: networking.gloo.solo.io/v2
kind: VirtualDestination
metadata:
  name: {svc}-global
  namespace: {ns}
  labels:
    failover: "true"
spec:
  hosts:
  - {svc}.global
  services:
  - namespace: {ns}
    labels:
      app: {svc}
  ports:
  - number: 9080
    protocol: HTTP
"""


def _write_repo(writer: _Writer, size: FleetSize) -> None:
    writer.write("repo/helm/mgmt-plane.yaml", [], _HELM)
    names = list(range(1, size.clusters + 1))
    for part, start in enumerate(range(0, len(names), _CLUSTERS_PER_FILE)):
        clusters = [
            _CLUSTER.format(name=_cluster_name(c), region=_region(c))
            for c in names[start : start + _CLUSTERS_PER_FILE]
        ]
        writer.write(f"repo/clusters/clusters-{part:03d}.yaml", clusters)
    writer.write("repo/workspaces.yaml", [_WORKSPACE.format(ns=ns) for ns in range(NAMESPACES)])
    for ns_index, services in _services_by_namespace(size.services):
        ns = _namespace(ns_index)
        writer.write(
            f"repo/{ns}/workspace.yaml",
            [
                (_ISOLATED_SETTINGS if size.security else _WORKSPACE_SETTINGS).format(ns=ns_index),
                _FAILOVER.format(ns=ns_index),
                _OUTLIER.format(ns=ns_index),
            ],
        )
        for part, start in enumerate(range(0, len(services), _SERVICES_PER_FILE)):
            docs: list[str] = []
            for i in services[start : start + _SERVICES_PER_FILE]:
                svc = _service_name(i)
                fault = i % 5 == 0
                docs.append(
                    _ROUTE_TABLE.format(svc=svc, ns=ns, fault=_FAULT_LABEL if fault else "")
                )
                docs.append(_RETRY.format(svc=svc, ns=ns))
                if fault:
                    docs.append(_FAULT.format(svc=svc, ns=ns))
                if i % 10 == 0:
                    docs.append(_VIRTUAL_DESTINATION.format(svc=svc, ns=ns))
                if size.security and i % 2 == 0:
                    client = _service_name(i + 1 if i + 1 < size.services else i)
                    docs.append(_ACCESS_POLICY.format(svc=svc, ns=ns, client=client))
            writer.write(f"repo/{ns}/services-{part:03d}.yaml", docs)


# -- discovery snapshots ---------------------------------------------------------------------

_NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: {cluster}-node-{n}
  creationTimestamp: "2024-05-14T08:0{n}:00Z"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {cluster}-node-{n}
    kubernetes.io/os: linux
    topology.kubernetes.io/region: {region}
    topology.kubernetes.io/zone: {region}{zone}
status:
  addresses:
  - type: InternalIP
    address: 10.250.{c}.{n}
  - type: Hostname
    address: {cluster}-node-{n}
"""

_NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  creationTimestamp: "2024-05-14T09:00:00Z"
  labels:
    istio-injection: enabled
    kubernetes.io/metadata.name: {ns}
"""

_SYSTEM_NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  creationTimestamp: "2024-05-14T08:10:00Z"
  labels:
    kubernetes.io/metadata.name: istio-system
"""

_EAST_WEST = """\
apiVersion: v1
kind: Service
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
  creationTimestamp: "2024-05-14T08:12:45Z"
  labels:
    app: istio-eastwestgateway
    istio: eastwestgateway
spec:
  type: LoadBalancer
  clusterIP: 10.{c}.0.10
  clusterIPs:
  - 10.{c}.0.10
  selector:
    app: istio-eastwestgateway
    istio: eastwestgateway
  ports:
  - name: tls
    port: 15443
    protocol: TCP
    targetPort: 15443
status:
  loadBalancer:
    ingress:
    - ip: {ip}
"""

# One service = Service + ServiceAccount + Deployment, formatted in one go.
_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {svc}
  namespace: {ns}
  creationTimestamp: "2024-05-14T09:{mm:02d}:{ss:02d}Z"
  labels:
    app: {svc}
    service: {svc}
spec:
  type: ClusterIP
  clusterIP: {ip}
  clusterIPs:
  - {ip}
  selector:
    app: {svc}
  ports:
  - name: http
    port: 9080
    protocol: TCP
    targetPort: 9080
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {svc}
  namespace: {ns}
  creationTimestamp: "2024-05-14T09:{mm:02d}:{ss:02d}Z"
  labels:
    account: {svc}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}-v1
  namespace: {ns}
  creationTimestamp: "2024-05-14T09:{mm:02d}:{ss:02d}Z"
  labels:
    app: {svc}
    version: v1
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {svc}
      version: v1
  template:
    metadata:
      labels:
        app: {svc}
        version: v1
    spec:
      serviceAccountName: {svc}
      containers:
      - name: {svc}
        image: registry.example.com/team/{svc}:1.0.0
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 9080
          protocol: TCP
status:
  replicas: 2
  readyReplicas: 2
  availableReplicas: 2
"""
_OBJECTS_PER_SERVICE = 3


def _east_west_ip(cluster: int) -> str:
    return f"172.18.{cluster // 250}.{cluster % 250 + 1}"


def _write_snapshots(writer: _Writer, size: FleetSize) -> None:
    layout = list(_services_by_namespace(size.services))
    for c in range(1, size.clusters + 1):
        cluster = _cluster_name(c)
        region = _region(c)
        octet = c % 250
        writer.write(
            f"snapshot/{cluster}/nodes.yaml",
            [
                _NODE.format(cluster=cluster, n=n, region=region, zone="abc"[n], c=octet)
                for n in range(3)
            ],
        )
        writer.write(
            f"snapshot/{cluster}/istio-system.yaml",
            [_SYSTEM_NAMESPACE, _EAST_WEST.format(c=octet, ip=_east_west_ip(c))],
        )
        for ns_index, services in layout:
            ns = _namespace(ns_index)
            docs = [_NAMESPACE.format(ns=ns)]
            for i in services:
                docs.append(
                    _SERVICE.format(
                        svc=_service_name(i),
                        ns=ns,
                        mm=i // 60 % 60,
                        ss=i % 60,
                        ip=f"10.{octet}.{i // 250 + 1}.{i % 250 + 1}",
                    )
                )
            writer.write(f"snapshot/{cluster}/{ns}.yaml", docs)
            # Each service document holds three objects.
            writer.objects += (_OBJECTS_PER_SERVICE - 1) * len(services)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("sizes", nargs="+", help="CLUSTERSxSERVICES, e.g. 10x100")
    parser.add_argument("--cache", type=Path, default=None, help="default: <repo>/.bench")
    parser.add_argument("--regenerate", action="store_true", help="ignore a cached fleet")
    args = parser.parse_args(argv)
    for text in args.sizes:
        fleet = ensure(parse_size(text), args.cache, args.regenerate)
        how = f"generated in {fleet.generated_in:.1f} s" if fleet.generated_in else "cached"
        print(f"{fleet.describe()} [{how}]")


if __name__ == "__main__":
    main()
