"""RouteTable -> Istio `VirtualService` (gateway and sidecar clients), per cluster.

Called by `translate` for every rendered cluster, after `routes` (flattening) and
`route_policies` (policy choice) ran once for the fleet. Rules
(gloo-semantics.md 3.4, 2.5):

- clients: no `virtualGateways` and no `workloadSelectors` -> every sidecar of the
  workspaces that see the table; `virtualGateways` -> those gateways only, unless
  `workloadSelectors` is also set; `workloadSelectors` -> sidecars whose labels
  match, as `sourceLabels` on every match (matchers x selectors);
- sidecar clients get one VirtualService per namespace of each consuming workspace
  (the table's own and those importing it), `gateways: [mesh]`, `exportTo: ["."]`,
  named `routetable-{rt}-{rtNs}-{rtCluster}-{consumerWorkspace}`;
- gateway clients get one VirtualService per gateway namespace, bound to the
  generated Gateways, with the gateway pod labels as `sourceLabels`;
- a route whose destination cannot be resolved is replaced by a 500 direct response
  (`failureMode: ROUTE_REPLACEMENT`, the default); with `FREEZE_CONFIG` the table is
  not rendered at all and its previous outputs are kept (`Translation.frozen`);
- subsets register a client DestinationRule need in the VirtualService's namespace.

Each root table is one producer (`producers`, `render_table`): everything it renders in a
cluster is claimed under its key, so it can be rendered again alone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.networking import RouteTableSpec
from gitops.reasons import Reason
from gitops.translate import route_policies, routes
from gitops.translate.context import Context, ServiceRef
from gitops.translate.destinations import Resolver
from gitops.translate.gateway import Gateways, Instance
from gitops.translate.outputs import (
    MAX_OBJECT_BYTES,
    NETWORKING,
    ClusterOutputs,
    Need,
    Parent,
    ProducerKey,
)
from gitops.translate.route_policies import RoutePolicies
from gitops.translate.routes import FlatRoute, Flattener

Table = ConfigObject[RouteTableSpec]
_REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}
_REPLACEMENT = {"status": 500}
#: Destination kinds that name a config object (a route's deps), and that object's kind.
_DESTINATION_KINDS = {
    "VIRTUAL_DESTINATION": "VirtualDestination",
    "EXTERNAL_SERVICE": "ExternalService",
}
#: Room left for metadata, hosts and gateways when routes are measured against 1 MiB.
_METADATA_ALLOWANCE = 64 * 1024


@dataclass
class _Built:
    """A table's routes for one kind of client in one kind of cluster, shared by every
    VirtualService copy (namespaces, clusters) that looks the same."""

    http: list[dict[str, Any]]
    subsets: list[tuple[ServiceRef, str, str, Mapping[str, str]]]
    sources: set[str]
    #: Problems found while building; reported again by every producer render using it.
    diagnostics: list[Diagnostic] = field(default_factory=list)
    size: int = -1  # serialized bytes of `http`, measured once however often it is emitted

    def measured(self) -> int:
        if self.size < 0:
            self.size = len(json.dumps(self.http, separators=(",", ":")).encode())
        return self.size


class VirtualServices:
    """Builds VirtualServices; flattening and policy choice happen once, in `__init__`."""

    def __init__(
        self,
        ctx: Context,
        gateways: Gateways,
        previous: VirtualServices | None = None,
        changed: frozenset[ObjectRef] = frozenset(),
    ) -> None:
        """Flatten tables, choose route policies, attach gateways.

        With `previous` (same clusters, workspaces and inputs; `changed` names the config
        objects that differ), unchanged parts are reused: flattening and attachment when no
        RouteTable or VirtualGateway changed, policy choice for workspaces without changed
        route policies, destination lookups when no RouteTable or VirtualDestination did.
        """
        self.ctx = ctx
        self.gateways = gateways
        self.diagnostics: list[Diagnostic] = []
        self._reported: set[tuple[Any, ...]] = set()
        #: FREEZE_CONFIG tables with problems: not rendered, their last outputs must be kept.
        self.frozen: set[ObjectRef] = set()
        kinds = {ref.kind for ref in changed}
        tables_same = previous is not None and "RouteTable" not in kinds
        self.resolver = Resolver(ctx)
        if tables_same and "VirtualDestination" not in kinds:
            assert previous is not None
            self.resolver.adopt(previous.resolver)
        self.roots: list[tuple[Table, list[FlatRoute]]]
        if tables_same:
            assert previous is not None
            self.roots = previous.roots
            self.flatten_diagnostics: list[Diagnostic] = previous.flatten_diagnostics
        else:
            flattener = Flattener(ctx)
            self.roots = [
                (table, flattener.flatten(table))
                for table in ctx.of_kind("RouteTable")
                if table.spec.hosts
            ]
            self.flatten_diagnostics = flattener.diagnostics
        self.diagnostics.extend(self.flatten_diagnostics)
        every = [r for _, flat in self.roots for r in flat]
        stale = None
        if tables_same:
            assert previous is not None
            stale = {
                ws
                for ref in changed
                if ref.kind in route_policies.ROUTE_POLICY_KINDS
                for ws in (previous.ctx.workspace_of.get(ref), ctx.workspace_of.get(ref))
                if ws is not None
            }
        self.policies: RoutePolicies = route_policies.choose(
            ctx, every, previous.policies if previous is not None else None, stale
        )
        self.diagnostics.extend(self.policies.diagnostics)
        self._cache: dict[tuple[Any, ...], _Built] = {}
        self._vgs = {(o.namespace, o.name): o for o in ctx.of_kind("VirtualGateway")}
        self._attach_problems: dict[ObjectRef, list[Diagnostic]] = {}
        self._attached: dict[ObjectRef, list[Any]]
        if tables_same and "VirtualGateway" not in kinds:
            assert previous is not None
            self._attached = previous._attached
            self._attach_problems = previous._attach_problems
        else:
            self._attached = {table.ref: self._attach(table) for table, _ in self.roots}
        for problems in self._attach_problems.values():
            self.diagnostics.extend(problems)
        for table, flat in self.roots:
            if table.spec.failure_mode == "FREEZE_CONFIG" and self._broken(flat):
                self.frozen.add(table.ref)
                self._diag(
                    Diagnostic(
                        Reason.InvalidValue,
                        "failureMode FREEZE_CONFIG: the table has invalid routes, so it is not "
                        "rendered and its last accepted config stays in place",
                        table.source,
                        table.ref,
                        "spec.failureMode",
                    )
                )

    def _broken(self, flat: list[FlatRoute]) -> bool:
        """Does any route of the tree fail in every cluster (bad matchers, bad destination)?"""
        for fr in flat:
            if fr.replaced is not None:
                return True
            for j, dest in enumerate(fr.destinations):
                if self.resolver.base(fr, j, dest).problem is not None:
                    return True
        return False

    def _diag(self, d: Diagnostic) -> None:
        key = (d.reason, d.obj, d.field, d.cluster, d.message)
        if key not in self._reported:
            self._reported.add(key)
            self.diagnostics.append(d)

    def _attach(self, table: Table) -> list[Any]:
        """The VirtualGateways a root table is attached to (refusals reported)."""
        out = []
        problems = self._attach_problems.setdefault(table.ref, [])
        for i, ref in enumerate(table.spec.virtual_gateways):
            vg = self._vgs.get((ref.namespace or table.namespace, ref.name))
            field_path = f"spec.virtualGateways[{i}]"
            if vg is None or (ref.cluster and ref.cluster != vg.cluster):
                problems.append(
                    Diagnostic(
                        Reason.VirtualGatewayNotFound,
                        f"VirtualGateway {ref.namespace or table.namespace}/{ref.name} "
                        "does not exist",
                        table.source,
                        table.ref,
                        field_path,
                    )
                )
                continue
            why = self.gateways.allows(vg, table)
            if why is not None:
                problems.append(
                    Diagnostic(
                        Reason.RouteTableNotAllowed, why, table.source, table.ref, field_path
                    )
                )
                continue
            out.append(vg)
        return out

    # -- building routes ----------------------------------------------------------------

    def _route(self, flat: FlatRoute, cluster: str, built: _Built) -> dict[str, Any] | None:
        route = flat.route
        out: dict[str, Any] = {"name": flat.name}
        if flat.replaced is not None:
            out["directResponse"] = _REPLACEMENT
            return out
        if route.delegate is not None or route.graphql is not None:
            return None
        policies = self.policies.for_route(flat.key)
        built.sources.update(p.source.file for p in policies.values())
        if route.redirect is not None:
            r = route.redirect
            redirect: dict[str, Any] = {"redirectCode": _REDIRECT_CODES[r.response_code]}
            if r.host_redirect:
                redirect["authority"] = r.host_redirect
            if r.path_redirect:
                redirect["uri"] = r.path_redirect
            out["redirect"] = redirect
        elif route.direct_response is not None:
            d = route.direct_response
            out["directResponse"] = {"status": d.status}
            if d.body is not None:
                out["directResponse"]["body"] = {"string": d.body}
        elif route.forward_to is not None:
            forward = route.forward_to
            dests = flat.destinations
            weights = forward.effective_weights() if forward.destinations else [100]
            targets = []
            for j, dest in enumerate(dests):
                resolved = self.resolver.resolve(flat, j, dest, cluster)
                if resolved.warning is not None:
                    built.diagnostics.append(resolved.warning)
                if resolved.problem is not None or resolved.destination is None:
                    if resolved.problem is not None:
                        built.diagnostics.append(resolved.problem)
                    out["directResponse"] = _REPLACEMENT
                    return out
                target: dict[str, Any] = {"destination": resolved.destination}
                if len(dests) > 1:
                    target["weight"] = weights[j]
                targets.append(target)
                if resolved.subset is not None:
                    built.subsets.append(resolved.subset)
            out["route"] = targets
            rewrite: dict[str, Any] = {}
            if forward.path_rewrite is not None:
                rewrite["uri"] = forward.path_rewrite
            if forward.regex_rewrite is not None:
                rewrite["uriRegexRewrite"] = {
                    "match": forward.regex_rewrite.pattern.regex,
                    "rewrite": forward.regex_rewrite.substitution,
                }
            if forward.host_rewrite is not None:
                rewrite["authority"] = forward.host_rewrite
            if rewrite:
                out["rewrite"] = rewrite
        route_policies.decorate(out, policies, self.policies.header_destinations.get(flat.key))
        return out

    def _http(
        self,
        table: Table,
        flat: list[FlatRoute],
        cluster: str,
        clients: tuple[tuple[tuple[str, str], ...], ...],
    ) -> _Built:
        """The http routes of a table for one cluster and client label sets (cached)."""
        key = (
            table.ref,
            self.ctx.cluster_domain(cluster),
            clients,
            self._cluster_variant(flat, cluster),
        )
        built = self._cache.get(key)
        if built is not None:
            return built
        built = _Built([], [], {table.source.file})
        for fr in flat:
            built.sources.add(fr.table.source.file)
        for fr, name in routes.emitted(flat):
            route = self._route(fr, cluster, built)
            if route is None:
                continue
            route["name"] = name
            route["match"] = [
                {**m, "sourceLabels": dict(labels)} if labels else m
                for m in fr.matches
                for labels in clients
            ]
            built.http.append(route)
        if built.http and built.measured() > MAX_OBJECT_BYTES - _METADATA_ALLOWANCE:
            built.diagnostics.append(
                Diagnostic(
                    Reason.ObjectTooLarge,
                    f"its VirtualService would be over {MAX_OBJECT_BYTES:,} bytes "
                    f"({built.size:,} bytes of routes); not emitted",
                    table.source,
                    table.ref,
                    "spec.http",
                )
            )
            built.http = []
        self._cache[key] = built
        return built

    def _cluster_variant(self, flat: list[FlatRoute], cluster: str) -> tuple[Any, ...]:
        """Empty when the table's routes come out the same in every cluster (with the same
        domain); the cluster's name when something is cluster-specific (a destination pinned
        to another cluster, or a Service missing here), so its warnings are reported."""
        for fr in flat:
            for j, dest in enumerate(fr.destinations):
                base = self.resolver.base(fr, j, dest)
                if (
                    base.kind == "SERVICE"
                    and base.problem is None
                    and (
                        base.explicit_cluster not in (None, cluster) or cluster not in base.clusters
                    )
                ):
                    return (cluster,)
        return ()

    # -- per cluster ------------------------------------------------------------------------

    def producers(self) -> list[tuple[ProducerKey, Table, list[FlatRoute]]]:
        """One producer per root table (frozen tables produce nothing)."""
        return [
            (("RouteTable", table.namespace, table.name), table, flat)
            for table, flat in self.roots
            if table.ref not in self.frozen
        ]

    def deps_of(self, table: Table, flat: list[FlatRoute]) -> set[tuple[str, ...]]:
        """What a root table's VirtualServices depend on (see `Dep` in translate/__init__):
        the tables of its routes, the policies chosen for them, the VirtualGateways,
        VirtualDestinations and ExternalServices it names (found or not: creating one
        changes the output)."""
        deps: set[tuple[str, ...]] = {("ref", "RouteTable", table.namespace, table.name)}
        for fr in flat:
            deps.add(("ref", "RouteTable", fr.table.namespace, fr.table.name))
            for policy in self.policies.for_route(fr.key).values():
                deps.add(("ref", policy.kind, policy.namespace, policy.name))
            for dest in fr.destinations:
                if dest.kind in _DESTINATION_KINDS:
                    ns = dest.ref.namespace or fr.table.namespace
                    deps.add(("ref", _DESTINATION_KINDS[dest.kind], ns, dest.ref.name))
        for ref in table.spec.virtual_gateways:
            deps.add(("ref", "VirtualGateway", ref.namespace or table.namespace, ref.name))
        return deps

    def subset_services(self) -> set[tuple[str, str]]:
        """Services some route sends to with a subset (they get client DestinationRules)."""
        found: set[tuple[str, str]] = set()
        for _, flat in self.roots:
            for fr in flat:
                for j, dest in enumerate(fr.destinations):
                    if dest.subset:
                        base = self.resolver.base(fr, j, dest)
                        if base.service is not None:
                            s = base.service.service
                            found.add((s.namespace, s.name))
        return found

    def render_table(
        self, table: Table, flat: list[FlatRoute], cluster: str, out: ClusterOutputs
    ) -> None:
        """A root table's VirtualServices in one cluster, and the subsets they need."""
        ctx = self.ctx
        ws = ctx.workspace_of[table.ref]
        spec = table.spec
        parent = Parent(
            "networking.gloo.solo.io",
            "v2",
            "RouteTable",
            table.name,
            table.namespace,
            table.cluster,
        )
        annotations = dict(spec.virtual_service_annotations) or None
        # Gateway clients: one VirtualService per gateway namespace.
        by_ns: dict[str, list[Instance]] = defaultdict(list)
        for vg in self._attached[table.ref]:
            for inst in self.gateways.instances(cluster, vg.ref):
                by_ns[inst.service.namespace].append(inst)
        for ns, insts in sorted(by_ns.items()):
            labels = tuple(sorted({tuple(sorted(i.service.selector.items())) for i in insts}))
            built = self._http(table, flat, cluster, labels)
            consumer = ctx.membership.owner_of(cluster, ns)
            self._emit(
                out,
                table,
                parent,
                ns,
                consumer,
                ws,
                built,
                annotations,
                sorted({i.name for i in insts}),
            )
        # Sidecar clients.
        if spec.virtual_gateways and not spec.workload_selectors:
            return
        clients = tuple(
            sorted(
                {
                    tuple(sorted(w.selector.labels.items())) if w.selector else ()
                    for w in spec.workload_selectors
                }
            )
        ) or ((),)
        consumers = [
            (consumer, ns)
            for consumer in ctx.visibility.viewers(ws, "ROUTE_TABLE", ctx.target(table))
            for ns in ctx.membership.namespaces_in(consumer, cluster)
        ]
        if not consumers:
            return  # nothing in this cluster sees the table: no output, no warnings
        built = self._http(table, flat, cluster, clients)
        for consumer, ns in consumers:
            self._emit(out, table, parent, ns, consumer, ws, built, annotations, ["mesh"])

    def _emit(
        self,
        out: ClusterOutputs,
        table: Table,
        parent: Parent,
        namespace: str,
        consumer: str | None,
        owner_ws: str,
        built: _Built,
        annotations: dict[str, str] | None,
        gateways: Sequence[str],
    ) -> None:
        for d in built.diagnostics:
            out.report(d)
        if not built.http:
            return
        name = names.sanitize(
            f"routetable-{table.name}-{table.namespace}-{table.cluster}-{consumer or owner_ws}"
        )
        obj = {
            "apiVersion": NETWORKING,
            "kind": "VirtualService",
            "metadata": out.metadata(
                name, namespace, consumer, parent, built.sources, annotations=annotations
            ),
            "spec": {
                "exportTo": ["."],
                "gateways": list(gateways),
                "hosts": list(table.spec.hosts),
                "http": built.http,
            },
        }
        out.add(obj, table.ref, table.age_key(), table.source)
        for service, host, subset, labels in built.subsets:
            s = service.service
            out.need(
                Need((s.namespace, s.name), namespace, host, subset, labels, table.source.file)
            )
