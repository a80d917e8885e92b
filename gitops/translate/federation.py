"""Workspace federation: a global hostname per selected Service, reachable from every cluster.

Built once per translation by `translate`; one producer per federated Service
(namespace/name, all clusters), rendered per cluster. `destinations` asks `lookup` for
the global host of a RouteTable destination pinned to another cluster, and `sidecar`
asks `hosts_visible_to` for trimmed proxies. Rules (gloo-semantics.md 1.2, 2.8, 3.4, 4.4):

- a workspace federates when its `options.federation.enabled` is true; it selects its own
  Services (every cluster) matching one of `serviceSelector[]` (none: all of them) that
  have a pod selector, and their ports matching one of `ports[]` (none: all ports);
- the global host of a Service is `{svc}.{ns}.svc.{cluster}.{hostSuffix}` (suffix default
  `global`; the 2.0 outputs' form, spec 4.4), one per cluster the Service exists in;
- consumers: the namespaces of the owning workspace and of every workspace importing the
  Service (kind SERVICE), per cluster;
- in the Service's own cluster: a ServiceEntry `vd-{host}-{workspace}` (sanitized) in the
  Service's namespace, `exportTo` = that cluster's consumer namespaces, `workloadSelector`
  = the pod selector, `resolution: STATIC`, `location: MESH_INTERNAL`, `addresses` = a
  virtual IP (Gloo 1.x's hash of host, namespace, cluster and `federation`);
- in every other cluster with consumers: a copy in each consumer namespace with
  `exportTo: ["."]` and one inline endpoint, the Service cluster's east-west gateway
  (`east_west`: address, `{port name: gateway port}`, locality); a hostname address
  needs `resolution: DNS` (1.x's rule). Without a gateway there is no copy
  (`EastWestGatewayNotFound` on the WorkspaceSettings);
- next to each ServiceEntry, a DestinationRule of the same name and `exportTo`, host the
  global host, per port `tls: {mode: ISTIO_MUTUAL, subjectAltNames}`: the Service's
  workload identities (and the gateway's under `tlsTermination`, where it presents its own);
- port names are `{protocol}-{number}`; the protocol is Istio's protocol selection
  (`appProtocol`, else the port name's prefix), TCP when neither says.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.discovery import ServicePort
from gitops.models.admin import Federation, WorkspaceSettingsSpec
from gitops.reasons import Reason
from gitops.selectors import object_match
from gitops.translate import east_west
from gitops.translate.context import Context, ServiceRef
from gitops.translate.east_west import EastWest, Remote
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey

ServiceKey = tuple[str, str]
DEFAULT_SUFFIX = "global"
#: Istio protocol selection (`appProtocol` or the port name's prefix) -> ServiceEntry protocol.
_PROTOCOLS = {
    "http": "HTTP",
    "http2": "HTTP2",
    "h2c": "HTTP2",
    "https": "HTTPS",
    "grpc": "GRPC",
    "grpc-web": "GRPC",
    "tls": "TLS",
    "tcp": "TCP",
    "mongo": "MONGO",
}


@dataclass(frozen=True, slots=True)
class Federated:
    """One Service of one cluster under its global host."""

    ref: ServiceRef
    workspace: str
    host: str
    ports: tuple[ServicePort, ...]
    mode: str
    viewers: tuple[str, ...]
    vip: str
    sans: frozenset[str]
    parent: Parent
    sources: frozenset[str]


def protocol(port: ServicePort) -> str:
    """The Istio protocol of a Service port: `appProtocol`, else the name's prefix, else TCP."""
    if port.app_protocol:
        return _PROTOCOLS.get(port.app_protocol.lower().removeprefix("kubernetes.io/"), "TCP")
    name = port.name.lower()
    return _PROTOCOLS.get(name, _PROTOCOLS.get(name.split("-", 1)[0], "TCP"))


def settings_object(ctx: Context, workspace: str) -> ConfigObject[WorkspaceSettingsSpec] | None:
    """The WorkspaceSettings whose `options` a workspace uses: its own, else `global`."""
    own = next(
        (o for o in ctx.of_kind("WorkspaceSettings") if ctx.workspace_of.get(o.ref) == workspace),
        None,
    )
    if own is not None and own.spec.options is not None:
        return own
    shared = [o for o in ctx.bundle.of_kind("WorkspaceSettings") if o.name == "global"]
    return min(shared, key=ConfigObject.age_key) if shared else own


def _options(ctx: Context, workspace: str) -> Federation | None:
    settings = ctx.settings.get(workspace)
    options = settings.options if settings is not None else None
    federation = options.federation if options is not None else None
    return federation if federation is not None and federation.enabled else None


def lookup(ctx: Context, ref: ServiceRef) -> tuple[str, frozenset[int]] | None:
    """The global host of a Service in its cluster and its federated port numbers, or None
    when its workspace does not federate it."""
    if ref.workspace is None or not ref.service.selector:
        return None
    federation = _options(ctx, ref.workspace)
    if federation is None or not _selected(federation, ref):
        return None
    ports = _ports(federation, ref)
    if not ports:
        return None
    return _host(ref, federation), frozenset(p.port for p in ports)


def _selected(federation: Federation, ref: ServiceRef) -> bool:
    selectors = federation.service_selector
    return not selectors or any(object_match(s, ref.target) for s in selectors)


def _ports(federation: Federation, ref: ServiceRef) -> tuple[ServicePort, ...]:
    wanted = federation.ports
    return tuple(
        p
        for p in ref.service.ports
        if not wanted or any(w.number == p.port or w.name == p.name for w in wanted)
    )


def _host(ref: ServiceRef, federation: Federation) -> str:
    s = ref.service
    return f"{s.name}.{s.namespace}.svc.{ref.cluster}.{federation.host_suffix or DEFAULT_SUFFIX}"


class Federations:
    """Every federated Service of the fleet, grouped by namespace/name for producers."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.gateways = EastWest(ctx)
        self.diagnostics: list[Diagnostic] = []
        self.by_service: dict[ServiceKey, list[Federated]] = defaultdict(list)
        for workspace in sorted(ctx.membership.workspaces):
            federation = _options(ctx, workspace)
            if federation is not None:
                self._federate(workspace, federation)

    def _federate(self, workspace: str, federation: Federation) -> None:
        ctx = self.ctx
        settings = settings_object(ctx, workspace)
        sources = frozenset({settings.source.file} if settings is not None else ())
        options = ctx.settings[workspace].options
        mode = east_west.client_mode(None, options)
        selected = [
            ref
            for ref in ctx.all_services
            if ref.workspace == workspace and _selected(federation, ref)
        ]
        if federation.service_selector and not selected and settings is not None:
            self.diagnostics.append(
                Diagnostic(
                    Reason.NothingSelected,
                    f"federation of workspace {workspace} selects no Service",
                    settings.source,
                    settings.ref,
                    "spec.options.federation.serviceSelector",
                )
            )
        missing: set[str] = set()
        for ref in selected:
            ports = _ports(federation, ref)
            if not ref.service.selector or not ports:
                continue  # nothing Istio could select as endpoints
            s = ref.service
            host = _host(ref, federation)
            viewers = ctx.visibility.viewers(workspace, "SERVICE", ref.target)
            sans = frozenset(east_west.identities(ctx, ref.cluster, s))
            parent = Parent("", "v1", "Service", s.name, s.namespace, ref.cluster)
            vip = names.virtual_ip(host, s.namespace, ref.cluster, "federation")
            found = Federated(
                ref, workspace, host, ports, mode, viewers, vip, sans, parent, sources
            )
            self.by_service[(s.namespace, s.name)].append(found)
            elsewhere = any(
                c != ref.cluster and c in ctx.inputs
                for v in viewers
                for c in ctx.membership.namespaces.get(v, {})
            )
            if elsewhere and self.gateways.remote(workspace, ref.cluster, mode) is None:
                missing.add(ref.cluster)
        for cluster in sorted(missing):
            if settings is None:
                continue
            self.diagnostics.append(
                Diagnostic(
                    Reason.EastWestGatewayNotFound,
                    f"cluster {cluster} has {self.gateways.describe(workspace, mode)}; its "
                    "federated Services cannot be reached from other clusters",
                    settings.source,
                    settings.ref,
                    "spec.options.federation",
                    cluster,
                )
            )

    def hosts_visible_to(self, workspace: str) -> set[str]:
        """Global hosts a workspace's namespaces get a ServiceEntry for."""
        return {
            f.host for found in self.by_service.values() for f in found if workspace in f.viewers
        }

    def producers(self) -> list[tuple[ProducerKey, ServiceKey]]:
        return [
            (("FederatedService", ns, name), (ns, name)) for ns, name in sorted(self.by_service)
        ]

    def render_service(self, key: ServiceKey, cluster: str, out: ClusterOutputs) -> None:
        """A Service's federated ServiceEntries and DestinationRules in one cluster."""
        ctx = self.ctx
        for fed in self.by_service.get(key, ()):
            consumers = sorted(
                {ns for v in fed.viewers for ns in ctx.membership.namespaces_in(v, cluster)}
            )
            if not consumers:
                continue
            if cluster == fed.ref.cluster:
                self._emit(fed, out, fed.ref.service.namespace, consumers, None)
                continue
            remote = self.gateways.remote(fed.workspace, fed.ref.cluster, fed.mode)
            if remote is not None:
                for namespace in consumers:
                    self._emit(fed, out, namespace, ["."], remote)

    def _emit(
        self,
        fed: Federated,
        out: ClusterOutputs,
        namespace: str,
        export_to: list[str],
        remote: Remote | None,
    ) -> None:
        s = fed.ref.service
        consumer = self.ctx.membership.owner_of(out.cluster, namespace)
        name = names.sanitize(f"vd-{fed.host}-{fed.workspace}")
        meta = out.metadata(name, namespace, consumer, fed.parent, fed.sources)
        port_names = {p.port: f"{protocol(p).lower()}-{p.port}" for p in fed.ports}
        entry: dict[str, Any] = {
            "addresses": [fed.vip],
            "exportTo": export_to,
            "hosts": [fed.host],
            "location": "MESH_INTERNAL",
            "ports": [_port(p, port_names[p.port]) for p in fed.ports],
            "resolution": "STATIC",
        }
        sans = set(fed.sans)
        if remote is None:
            entry["workloadSelector"] = {"labels": dict(s.selector)}
        else:
            endpoint: dict[str, Any] = {
                "address": remote.address,
                "ports": {port_name: remote.port for port_name in port_names.values()},
            }
            if remote.locality:
                endpoint["locality"] = remote.locality
            entry["endpoints"] = [endpoint]
            if not _is_ip(remote.address):
                entry["resolution"] = "DNS"
            if remote.mode == east_west.TLS_TERMINATION:
                sans |= east_west.identities(self.ctx, remote.cluster, remote.gateway)
        age = (False, s.created, s.namespace, s.name)
        owner = fed.parent.ref
        out.add(
            {"apiVersion": NETWORKING, "kind": "ServiceEntry", "metadata": meta, "spec": entry},
            owner,
            age,
        )
        tls = {"mode": "ISTIO_MUTUAL", "subjectAltNames": sorted(sans)}
        rule = {
            "exportTo": export_to,
            "host": fed.host,
            "trafficPolicy": {
                "portLevelSettings": [{"port": {"number": p.port}, "tls": tls} for p in fed.ports]
            },
        }
        out.add(
            {"apiVersion": NETWORKING, "kind": "DestinationRule", "metadata": meta, "spec": rule},
            owner,
            age,
        )


def _port(port: ServicePort, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "number": port.port, "protocol": protocol(port)}
    # A named targetPort is a container port name discovery does not keep: Istio then
    # uses the port number itself.
    if isinstance(port.target_port, int):
        out["targetPort"] = port.target_port
    return out


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
