"""Route destinations: from a Gloo `DestinationReference` to an Istio destination host.

Called by `virtual_service` for every forwardTo destination, per rendered
cluster. The cluster-independent part (which object, is it visible, which port,
which subset) is computed once per destination; only the host domain and the
"is it in this cluster" checks are per cluster. Rules (gloo-semantics.md 3.4):

- a Service in the rendered cluster -> `{svc}.{ns}.svc.{clusterDomain}`;
- a `ref.cluster` other than the rendered cluster -> the Service's federated global
  host there (`federation`, spec 2.8, 4.4), when its workspace federates it and the
  port; otherwise `CrossClusterDestinationNotFederated`. Subsets do not cross clusters
  (`SubsetAcrossClusters`): the federated endpoint is the remote east-west gateway;
- a Service missing from the rendered cluster keeps its local host and gets a
  `DestinationNotInCluster` warning for that cluster;
- a VirtualDestination -> its first host, port = the VD port;
- an ExternalService -> its first concrete host, port = the selected ExternalService
  port (by number or name) or its only port; no subsets;
- the reference must be visible to the route table's workspace (own or imported).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.models.common import DestinationReference
from gitops.models.external import ExternalServiceSpec
from gitops.models.networking import VirtualDestinationSpec
from gitops.reasons import Reason
from gitops.translate import external_service, federation
from gitops.translate.context import Context, ServiceRef
from gitops.translate.routes import FlatRoute


@dataclass(frozen=True, slots=True)
class _Base:
    """What is true of a destination in every cluster."""

    problem: Diagnostic | None = None
    kind: str = "SERVICE"
    host_prefix: str = ""  # `name.ns.svc.` for Services; the full host for VDs and ESs
    port: int | None = None
    subset: str | None = None
    subset_labels: Mapping[str, str] | None = None
    explicit_cluster: str | None = None
    clusters: frozenset[str] = frozenset()
    service: ServiceRef | None = None
    what: str = ""  # `namespace/name`, for messages
    #: For a Service pinned to a cluster: its global host and federated ports, if federated.
    federated: tuple[str, frozenset[int]] | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A destination in one cluster: an Istio destination dict, or why there is none."""

    destination: dict[str, Any] | None
    problem: Diagnostic | None = None
    warning: Diagnostic | None = None
    #: For subsets: (service ref in this cluster, host, subset name, labels).
    subset: tuple[ServiceRef, str, str, Mapping[str, str]] | None = None


def subset_name(labels: Mapping[str, str]) -> str:
    """`{version: v2}` -> `version-v2` (sorted key-value pairs, sanitized)."""
    return names.sanitize("-".join(f"{k}-{v}" for k, v in sorted(labels.items())))


_EXTERNAL = "EXTERNAL_SERVICE"


class Resolver:
    """Resolves destinations with per-destination caching."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._base: dict[tuple[Any, ...], _Base] = {}
        self._vds: dict[tuple[str, str], ConfigObject[VirtualDestinationSpec]] = {
            (o.namespace, o.name): o for o in ctx.of_kind("VirtualDestination")
        }
        self._externals: dict[tuple[str, str], ConfigObject[ExternalServiceSpec]] = {
            (o.namespace, o.name): o for o in ctx.of_kind("ExternalService")
        }

    def adopt(self, previous: Resolver) -> None:
        """Reuse what `previous` found (same tables, VirtualDestinations and inputs).
        ExternalService destinations are looked up again: the caller does not track them."""
        self._base.update((k, b) for k, b in previous._base.items() if b.kind != _EXTERNAL)

    def _problem(
        self, route: FlatRoute, j: int, reason: Reason, message: str, cluster: str = ""
    ) -> Diagnostic:
        table = route.table
        return Diagnostic(
            reason,
            f"route {route.name}: {message}",
            table.source,
            table.ref,
            f"spec.http[{route.index}].forwardTo.destinations[{j}]",
            cluster,
        )

    def base(self, route: FlatRoute, j: int, dest: DestinationReference) -> _Base:
        key = (route.key, j)
        found = self._base.get(key)
        if found is None:
            found = self._compute(route, j, dest)
            self._base[key] = found
        return found

    def _compute(self, route: FlatRoute, j: int, dest: DestinationReference) -> _Base:
        table = route.table
        ws = self.ctx.workspace_of[table.ref]
        namespace = dest.ref.namespace or table.namespace
        what = f"{namespace}/{dest.ref.name}"
        if dest.kind == _EXTERNAL:
            return self._external_service(route, j, dest, ws, namespace, what)
        if dest.kind == "VIRTUAL_DESTINATION":
            return self._virtual_destination(route, j, dest, ws, namespace, what)
        all_refs = self.ctx.services_by_key.get((namespace, dest.ref.name), ())
        visible = [r for r in all_refs if self.ctx.service_visible(ws, r)]
        if dest.ref.cluster:
            visible = [r for r in visible if r.cluster == dest.ref.cluster]
        if not visible:
            where = f" in cluster {dest.ref.cluster}" if dest.ref.cluster else ""
            why = (
                f"Service {what}{where} is not visible to workspace {ws} (not exported to it)"
                if all_refs
                else f"Service {what}{where} does not exist"
            )
            return _Base(self._problem(route, j, Reason.DestinationNotFound, why))
        service = visible[0].service
        port: int | None = None
        if dest.port is not None:
            found = service.port(dest.port.number, dest.port.name)
            if found is None:
                wanted = dest.port.number if dest.port.number is not None else dest.port.name
                return _Base(
                    self._problem(
                        route,
                        j,
                        Reason.DestinationPortNotFound,
                        f"Service {what} has no port {wanted} (ports: "
                        f"{', '.join(str(p.port) for p in service.ports) or 'none'})",
                    )
                )
            port = found.port
        elif len(service.ports) == 1:
            port = service.ports[0].port
        subset = subset_name(dest.subset) if dest.subset else None
        return _Base(
            host_prefix=f"{dest.ref.name}.{namespace}.svc.",
            port=port,
            subset=subset,
            subset_labels=dest.subset or None,
            explicit_cluster=dest.ref.cluster,
            clusters=frozenset(r.cluster for r in visible),
            service=visible[0],
            what=what,
            federated=federation.lookup(self.ctx, visible[0]) if dest.ref.cluster else None,
        )

    def _unreachable(self, obj: ConfigObject[Any] | None, ws: str, kind: str) -> str:
        """Why a route in workspace `ws` cannot use `obj` ("": it can)."""
        target = self.ctx.target(obj) if obj is not None else None
        if obj is None:
            return "does not exist"
        if (
            target is None
            or target.workspace is None
            or not self.ctx.visibility.can_see(ws, target.workspace, kind, target)
        ):
            return f"is not visible to workspace {ws}"
        return ""

    def _external_service(
        self,
        route: FlatRoute,
        j: int,
        dest: DestinationReference,
        ws: str,
        namespace: str,
        what: str,
    ) -> _Base:
        es = self._externals.get((namespace, dest.ref.name))
        if why := self._unreachable(es, ws, _EXTERNAL):
            missing = self._problem(
                route, j, Reason.DestinationNotFound, f"ExternalService {what} {why}"
            )
            return _Base(missing, kind=_EXTERNAL)
        assert es is not None  # _unreachable answers for a missing one
        host = external_service.route_host(es)
        problem: Diagnostic | None = None
        if dest.subset:
            problem = self._problem(
                route,
                j,
                Reason.SubsetOnVirtualDestination,
                f"ExternalService {what}: subsets work on Service destinations only",
            )
        elif host is None:
            problem = self._problem(
                route,
                j,
                Reason.DestinationNotFound,
                f"ExternalService {what} has only wildcard hosts; a route needs a concrete one",
            )
        ports = es.spec.ports
        port: int | None = ports[0].number if len(ports) == 1 else None
        if problem is None and dest.port is not None:
            found = next(
                (
                    p
                    for p in ports
                    if p.number == dest.port.number
                    or (
                        dest.port.name is not None
                        and external_service.port_name(p) == dest.port.name
                    )
                ),
                None,
            )
            if found is None:
                wanted = dest.port.number if dest.port.number is not None else dest.port.name
                problem = self._problem(
                    route,
                    j,
                    Reason.DestinationPortNotFound,
                    f"ExternalService {what} has no port {wanted} (ports: "
                    f"{', '.join(str(p.number) for p in ports)})",
                )
            else:
                port = found.number
        if problem is not None:
            return _Base(problem, kind=_EXTERNAL)
        return _Base(kind=_EXTERNAL, host_prefix=host or "", port=port)

    def _virtual_destination(
        self,
        route: FlatRoute,
        j: int,
        dest: DestinationReference,
        ws: str,
        namespace: str,
        what: str,
    ) -> _Base:
        vd = self._vds.get((namespace, dest.ref.name))
        if why := self._unreachable(vd, ws, "VIRTUAL_DESTINATION"):
            return _Base(
                self._problem(
                    route, j, Reason.DestinationNotFound, f"VirtualDestination {what} {why}"
                )
            )
        assert vd is not None  # _unreachable answers for a missing one
        if dest.subset:
            return _Base(
                self._problem(
                    route,
                    j,
                    Reason.SubsetOnVirtualDestination,
                    f"VirtualDestination {what}: subsets work on Service destinations only",
                )
            )
        ports = [p.number for p in vd.spec.ports]
        port: int | None = None
        if dest.port is not None:
            if dest.port.number not in ports:
                wanted = dest.port.number if dest.port.number is not None else dest.port.name
                return _Base(
                    self._problem(
                        route,
                        j,
                        Reason.DestinationPortNotFound,
                        f"VirtualDestination {what} has no port {wanted} (ports: "
                        f"{', '.join(map(str, ports))})",
                    )
                )
            port = dest.port.number
        elif len(ports) == 1:
            port = ports[0]
        return _Base(kind="VIRTUAL_DESTINATION", host_prefix=vd.spec.hosts[0], port=port)

    def resolve(
        self, route: FlatRoute, j: int, dest: DestinationReference, cluster: str
    ) -> Resolved:
        base = self.base(route, j, dest)
        if base.problem is not None:
            return Resolved(None, base.problem)
        if base.kind in ("VIRTUAL_DESTINATION", _EXTERNAL):
            return Resolved(self._destination(base.host_prefix, base.port, None))
        if base.explicit_cluster and base.explicit_cluster != cluster:
            return self._federated(route, j, base, cluster)
        host = base.host_prefix + self.ctx.cluster_domain(cluster)
        warning = None
        if cluster not in base.clusters:
            warning = self._problem(
                route,
                j,
                Reason.DestinationNotInCluster,
                f"Service {base.what} is not in cluster {cluster} (or not visible to the "
                "route table's workspace there)",
                cluster,
            )
        subset = None
        if base.subset is not None and base.subset_labels is not None and base.service:
            subset = (base.service, host, base.subset, base.subset_labels)
        return Resolved(self._destination(host, base.port, base.subset), None, warning, subset)

    def _federated(self, route: FlatRoute, j: int, base: _Base, cluster: str) -> Resolved:
        """A Service pinned to another cluster: its global host, if it is federated."""
        federated = base.federated
        where = f"Service {base.what} is in cluster {base.explicit_cluster}"
        if federated is None or (base.port is not None and base.port not in federated[1]):
            why = (
                "its workspace does not federate it"
                if federated is None
                else f"its workspace does not federate port {base.port}"
            )
            message = (
                f"{where} and {why}; federate it (WorkspaceSettings options.federation) or "
                "route to a VirtualDestination"
            )
            reason = Reason.CrossClusterDestinationNotFederated
            return Resolved(None, self._problem(route, j, reason, message, cluster))
        if base.subset is not None:
            message = (
                f"{where}: subsets do not cross clusters (its federated endpoint is that "
                "cluster's east-west gateway)"
            )
            return Resolved(
                None, self._problem(route, j, Reason.SubsetAcrossClusters, message, cluster)
            )
        return Resolved(self._destination(federated[0], base.port, None))

    @staticmethod
    def _destination(host: str, port: int | None, subset: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"host": host}
        if port is not None:
            out["port"] = {"number": port}
        if subset is not None:
            out["subset"] = subset
        return out
