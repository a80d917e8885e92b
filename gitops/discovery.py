"""Per-cluster inputs: what a workload cluster looks like, parsed from a discovery snapshot.

A snapshot is plain Kubernetes objects (DESIGN.md section 3). Offline, the
controller reads `SNAP/<cluster>/**/*.yaml` into a `Tree` and calls
`load_cluster`; live, the same objects come from Redis. Only the fields the
translators need are kept, as small frozen records, so a fleet of hundreds of
thousands of objects fits in memory (a parsed Kubernetes dict costs ~7 KiB, a
record a few hundred bytes).

Kinds read: Namespace, Service, ServiceAccount, Deployment, StatefulSet,
DaemonSet, Node (and `List` wrappers). Other kinds are not mesh inputs and are
skipped. A malformed object is an `InvalidInputObject` diagnostic, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitops import layout, parsing
from gitops.diagnostics import Diagnostic, Source
from gitops.ids import ObjectRef
from gitops.reasons import Reason
from gitops.tree import MAX_FILE_BYTES, Oversize, Tree, is_yaml

EAST_WEST_LABEL = ("istio", "eastwestgateway")
_REGION = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
_ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_SUBZONE = ("topology.istio.io/subzone",)
_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    labels: Mapping[str, str]
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]
    created: str
    #: Load-balancer ingress addresses (IPs or hostnames), then external IPs.
    addresses: tuple[str, ...] = ()
    source: Source | None = None

    def port(self, number: int | None = None, name: str | None = None) -> ServicePort | None:
        for p in self.ports:
            if (number is not None and p.port == number) or (name is not None and p.name == name):
                return p
        return None

    @property
    def is_east_west_gateway(self) -> bool:
        return self.labels.get(EAST_WEST_LABEL[0]) == EAST_WEST_LABEL[1]


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    namespace: str
    name: str
    #: Pod template labels.
    labels: Mapping[str, str]
    service_account: str


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    region: str
    zone: str
    subzone: str


@dataclass(frozen=True)
class ClusterInputs:
    """Everything discovered in one workload cluster."""

    cluster: str
    namespaces: Mapping[str, Mapping[str, str]]
    services: tuple[Service, ...]
    service_accounts: frozenset[tuple[str, str]]
    workloads: tuple[Workload, ...]
    nodes: tuple[Node, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    by_key: Mapping[tuple[str, str], Service] = field(init=False, repr=False, compare=False)
    workloads_in: Mapping[str, tuple[Workload, ...]] = field(init=False, repr=False, compare=False)
    workloads_by_label: Mapping[tuple[str, str, str], tuple[Workload, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {(s.namespace, s.name): s for s in self.services})
        per_namespace: dict[str, list[Workload]] = {}
        per_label: dict[tuple[str, str, str], list[Workload]] = {}
        for w in self.workloads:
            per_namespace.setdefault(w.namespace, []).append(w)
            for k, v in w.labels.items():
                per_label.setdefault((w.namespace, k, v), []).append(w)
        object.__setattr__(
            self, "workloads_in", {ns: tuple(ws) for ns, ws in per_namespace.items()}
        )
        object.__setattr__(
            self, "workloads_by_label", {key: tuple(ws) for key, ws in per_label.items()}
        )

    def service(self, namespace: str, name: str) -> Service | None:
        return self.by_key.get((namespace, name))

    def locality(self) -> str:
        """`region/zone/subzone` shared by every node (as far as they agree), or ''."""
        parts: list[str] = []
        for attr in ("region", "zone", "subzone"):
            values = {getattr(n, attr) for n in self.nodes}
            if len(values) != 1 or not (value := values.pop()):
                break
            parts.append(value)
        return "/".join(parts)

    def workloads_for(self, service: Service) -> list[Workload]:
        """Workloads whose pods the Service selects (same namespace, selector subset)."""
        if not service.selector:
            return []
        items = service.selector.items()
        ns = service.namespace
        # Candidates: the workloads carrying the rarest of the selector's labels.
        candidates = min((self.workloads_by_label.get((ns, k, v), ()) for k, v in items), key=len)
        return [w for w in candidates if items <= w.labels.items()]


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _Bad(field, "must be a mapping of strings to strings")
    return value


def _str(value: Any, field: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Bad(field, "must be a string")
    return value


def _service(meta: dict[str, Any], data: dict[str, Any], source: Source) -> Service:
    spec = data.get("spec") or {}
    if not isinstance(spec, dict):
        raise _Bad("spec", "must be a mapping")
    ports: list[ServicePort] = []
    raw_ports = spec.get("ports") or []
    if not isinstance(raw_ports, list):
        raise _Bad("spec.ports", "must be a list")
    for i, p in enumerate(raw_ports):
        where = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            raise _Bad(where, "must be a mapping")
        number = p.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            raise _Bad(f"{where}.port", "must be a port number")
        target = p.get("targetPort", number)
        if not isinstance(target, (int, str)) or isinstance(target, bool):
            raise _Bad(f"{where}.targetPort", "must be a number or a port name")
        app_protocol = p.get("appProtocol")
        ports.append(
            ServicePort(
                _str(p.get("name"), f"{where}.name"),
                number,
                target,
                _str(p.get("protocol"), f"{where}.protocol", "TCP"),
                app_protocol if isinstance(app_protocol, str) else None,
            )
        )
    addresses: list[str] = []
    ingress = ((data.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if isinstance(ingress, list):
        for entry in ingress:
            if isinstance(entry, dict):
                address = entry.get("ip") or entry.get("hostname")
                if isinstance(address, str) and address:
                    addresses.append(address)
    external = spec.get("externalIPs") or []
    if isinstance(external, list):
        addresses.extend(a for a in external if isinstance(a, str))
    return Service(
        namespace=meta["namespace"],
        name=meta["name"],
        labels=_str_map(meta.get("labels"), "metadata.labels"),
        selector=_str_map(spec.get("selector"), "spec.selector"),
        ports=tuple(ports),
        created=_str(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        addresses=tuple(addresses),
        source=source,
    )


def _workload(kind: str, meta: dict[str, Any], data: dict[str, Any]) -> Workload:
    spec = data.get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        raise _Bad("spec.template", "is missing")
    tmeta = template.get("metadata") or {}
    tspec = template.get("spec") or {}
    if not isinstance(tmeta, dict) or not isinstance(tspec, dict):
        raise _Bad("spec.template", "must be a mapping")
    account = tspec.get("serviceAccountName") or tspec.get("serviceAccount") or "default"
    return Workload(
        kind,
        meta["namespace"],
        meta["name"],
        _str_map(tmeta.get("labels"), "spec.template.metadata.labels"),
        _str(account, "spec.template.spec.serviceAccountName"),
    )


def _first(labels: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((labels[k] for k in keys if labels.get(k)), "")


class _Collector:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.namespaces: dict[str, dict[str, str]] = {}
        self.services: list[Service] = []
        self.accounts: set[tuple[str, str]] = set()
        self.workloads: list[Workload] = []
        self.nodes: list[Node] = []
        self.diagnostics: list[Diagnostic] = []

    def add(self, data: Any, source: Source) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("kind")
        if kind == "List" and isinstance(data.get("items"), list):
            for item in data["items"]:
                self.add(item, source)
            return
        if kind not in ("Namespace", "Service", "ServiceAccount", "Node") and (
            kind not in _WORKLOAD_KINDS
        ):
            return
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
        ref = ObjectRef(kind, namespace if isinstance(namespace, str) else "", str(name or "?"))
        try:
            if not isinstance(meta, dict) or not isinstance(name, str) or not name:
                raise _Bad("metadata.name", "is missing")
            namespaced = kind not in ("Namespace", "Node")
            if namespaced and (not isinstance(namespace, str) or not namespace):
                raise _Bad("metadata.namespace", "is missing")
            self._add(kind, meta, data, source)
        except _Bad as bad:
            self.diagnostics.append(
                Diagnostic(
                    Reason.InvalidInputObject,
                    f"{bad.field} {bad.message}",
                    source,
                    ref,
                    bad.field,
                    self.cluster,
                )
            )

    def _add(self, kind: str, meta: dict[str, Any], data: dict[str, Any], source: Source) -> None:
        if kind == "Namespace":
            self.namespaces[meta["name"]] = _str_map(meta.get("labels"), "metadata.labels")
        elif kind == "Service":
            self.services.append(_service(meta, data, source))
        elif kind == "ServiceAccount":
            self.accounts.add((meta["namespace"], meta["name"]))
        elif kind == "Node":
            labels = _str_map(meta.get("labels"), "metadata.labels")
            self.nodes.append(
                Node(
                    meta["name"],
                    _first(labels, _REGION),
                    _first(labels, _ZONE),
                    _first(labels, _SUBZONE),
                )
            )
        else:
            self.workloads.append(_workload(kind, meta, data))

    def finish(self) -> ClusterInputs:
        namespaces = dict(self.namespaces)
        for ns in {s.namespace for s in self.services} | {w.namespace for w in self.workloads}:
            namespaces.setdefault(ns, {})
        return ClusterInputs(
            cluster=self.cluster,
            namespaces=dict(sorted(namespaces.items())),
            services=tuple(sorted(self.services, key=lambda s: (s.namespace, s.name))),
            service_accounts=frozenset(self.accounts),
            workloads=tuple(sorted(self.workloads, key=lambda w: (w.namespace, w.kind, w.name))),
            nodes=tuple(sorted(self.nodes, key=lambda n: n.name)),
            diagnostics=tuple(self.diagnostics),
        )


def load_cluster(cluster: str, tree: Tree) -> ClusterInputs:
    """Parse one cluster's snapshot files (paths relative to the cluster's folder)."""
    collector = _Collector(cluster)
    link_problems: list[Diagnostic] = []
    entries = layout.expand(tree, link_problems)
    diagnostics = [
        replace(
            d, source=Source(f"{cluster}/{d.source.file}") if d.source else None, cluster=cluster
        )
        for d in link_problems
    ]
    for path in sorted(entries):
        entry = entries[path]
        shown = f"{cluster}/{path}"
        if not is_yaml(path):
            continue
        if isinstance(entry, Oversize):
            diagnostics.append(
                Diagnostic(
                    Reason.FileTooLarge,
                    f"{entry.size:,} bytes (the cap is {MAX_FILE_BYTES:,})",
                    Source(shown),
                    cluster=cluster,
                )
            )
            continue
        if not isinstance(entry, bytes):
            continue
        parsed = parsing.parse(shown, entry)
        diagnostics.extend(replace(d, cluster=cluster) for d in parsed.diagnostics)
        for doc in parsed.documents:
            if doc.problems:
                diagnostics.extend(replace(d, cluster=cluster) for d in doc.problems)
                continue
            collector.add(doc.data, Source(shown, doc.line))
    collector.diagnostics[:0] = diagnostics
    return collector.finish()


#: Kinds an agent discovers and pushes (core group empty), as (group, version, kind): what
#: `from_objects` reads. The relay asks agents for exactly these.
DISCOVERED_KINDS: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "Namespace"),
    ("", "v1", "Node"),
    ("", "v1", "Service"),
    ("", "v1", "ServiceAccount"),
    ("apps", "v1", "DaemonSet"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
)


def from_objects(cluster: str, objects: Iterable[Mapping[str, Any]]) -> ClusterInputs:
    """Build a cluster's inputs from discovered objects (live: what its agent pushed).

    Problems are diagnostics located at `<cluster>/<Kind>/<namespace>/<name>`, since live
    objects have no file.
    """
    collector = _Collector(cluster)
    for obj in objects:
        meta = obj.get("metadata")
        name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
        namespace = meta.get("namespace", "") if isinstance(meta, Mapping) else ""
        where = "/".join(str(p) for p in (obj.get("kind", "?"), namespace, name) if p)
        collector.add(dict(obj), Source(f"{cluster}/{where}"))
    return collector.finish()
