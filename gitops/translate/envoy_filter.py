"""JWTPolicy -> Istio `EnvoyFilter`s on the proxies that serve the protected routes.

Called by `translate`: `EnvoyFilters(...)` once per translation (policy choice in
`jwt`, the proxies of every cluster), then `render_proxy` per producer and cluster. Rules
(gloo-semantics.md 3.4 "EnvoyFilter-based policies", 6):

- a **proxy** is a set of Envoys that must share one `jwt_authn` filter: a gateway
  Service's pods (`workloadSelector` = the Service's pod selector, in its namespace,
  context `GATEWAY`), or every sidecar of a namespace that consumes a sidecar RouteTable
  (no `workloadSelector`, context `SIDECAR_OUTBOUND`: sidecar tables route the client's
  outbound calls). Never one filter per Gateway object or per `workloadSelectors` entry:
  with two jwt_authn filters in one chain, each would look up every route's requirement,
  find it in only one of them, and the other would answer 403;
- per proxy: one `HTTP_FILTER` `INSERT_BEFORE` `envoy.filters.http.router` per listener
  port (gateways: every HTTP server port of the Gateways the protected tables are bound
  to, i.e. the Service targetPorts; sidecars: every outbound HTTP listener), inserting
  `envoy.filters.http.jwt_authn` with all the proxy's providers and requirements; policies
  that do not fit one EnvoyFilter spill into `MERGE` patches on that filter;
- one `HTTP_ROUTE` `MERGE` per protected route, matched by its VirtualService route name,
  setting `typed_per_filter_config` to the policy's requirement;
- patches become EnvoyFilters through `segments` (one per matcher, or one per proxy when
  `EXPERIMENTAL_SEGMENT_ENVOY_FILTERS_BY_MATCHER` is "false"); nothing over 1 MiB is
  emitted (`ObjectTooLarge` on every policy in the refused object);
- parent: the oldest policy in the EnvoyFilter; `mesh-gitops.io/source` lists every
  policy's file and the files of the tables whose routes it names.

Producers: one per proxy (`("EnvoyFilter", namespace, "gateway:<labels>" | "sidecars")`),
rendered in every cluster where the proxy serves protected routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.discovery import Service
from gitops.ids import ObjectRef
from gitops.models.networking import Listener, RouteTableSpec
from gitops.reasons import Reason
from gitops.translate import jwt, jwt_patches, segments
from gitops.translate.context import Context
from gitops.translate.gateway import Gateways, VirtualGateway
from gitops.translate.outputs import INPUTS, MAX_OBJECT_BYTES, ClusterOutputs, Parent, ProducerKey
from gitops.translate.routes import FlatRoute
from gitops.translate.segments import Patch
from gitops.translate.virtual_service import VirtualServices

API_VERSION = "networking.istio.io/v1alpha3"
Dep = tuple[str, ...]
_PASSTHROUGH = ("PASSTHROUGH", "AUTO_PASSTHROUGH")


@dataclass
class _Proxy:
    """One proxy in one cluster, and the protected routes it serves."""

    namespace: str
    selector: tuple[tuple[str, str], ...]  # gateway pod labels; () = every sidecar
    context: str
    ports: set[int] = field(default_factory=set)
    #: VirtualService route name -> (policy, file of the table defining the route).
    routes: dict[str, tuple[jwt.Policy, str]] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.selector)
        return f"{self.context}/{self.namespace}/{labels}"


class EnvoyFilters:
    """JWT EnvoyFilters: policy choice and proxies are worked out once, in `__init__`."""

    def __init__(self, ctx: Context, gateways: Gateways, vs: VirtualServices) -> None:
        self.ctx = ctx
        self.gateways = gateways
        self.segmented = segments.segment_by_matcher(ctx.bundle.helm)
        every = [fr for _, flat in vs.roots for fr in flat]
        self.choice = jwt.choose(ctx, every)
        self.diagnostics: list[Diagnostic] = list(self.choice.diagnostics)
        #: producer key -> cluster -> proxy; and the producer's deps.
        self.proxies: dict[ProducerKey, dict[str, _Proxy]] = {}
        self.deps: dict[ProducerKey, set[Dep]] = {}
        self._configs: dict[tuple[ObjectRef, str], jwt.PolicyConfig] = {}
        vgs = {(o.namespace, o.name): o for o in ctx.of_kind("VirtualGateway")}
        for table, flat in vs.roots:
            protected = [
                (name, policy, fr)
                for fr, name in jwt.vs_route_names(flat)
                if fr.replaced is None and (policy := self.choice.applied.get(fr.key)) is not None
            ]
            if protected:
                self._place(table, flat, protected, self._attached(table, vgs))

    # -- where protected routes are served ------------------------------------------------

    def _attached(
        self, table: ConfigObject[RouteTableSpec], vgs: Mapping[tuple[str, str], VirtualGateway]
    ) -> list[VirtualGateway]:
        """The VirtualGateways that take the table (as `virtual_service` decides; refusals
        are reported there)."""
        out = []
        for ref in table.spec.virtual_gateways:
            vg = vgs.get((ref.namespace or table.namespace, ref.name))
            if vg is None or (ref.cluster and ref.cluster != vg.cluster):
                continue
            if self.gateways.allows(vg, table) is None:
                out.append(vg)
        return out

    def _place(
        self,
        table: ConfigObject[RouteTableSpec],
        flat: list[FlatRoute],
        protected: list[tuple[str, jwt.Policy, FlatRoute]],
        attached: list[VirtualGateway],
    ) -> None:
        ctx = self.ctx
        spec = table.spec
        deps: set[Dep] = {INPUTS}
        for fr in flat:
            deps.add(("ref", "RouteTable", fr.table.namespace, fr.table.name))
            if (ws := ctx.workspace_of.get(fr.table.ref)) is not None:
                deps |= {("kind", "RouteTable", ws), ("kind", "JWTPolicy", ws)}
        for _, policy, _ in protected:
            deps.add(("ref", "JWTPolicy", policy.namespace, policy.name))
            deps |= _jwks_deps(policy)
        sidecars = not (spec.virtual_gateways and not spec.workload_selectors)
        owner = ctx.workspace_of[table.ref]
        consumers = ctx.visibility.viewers(owner, "ROUTE_TABLE", ctx.target(table))
        for cluster in sorted(ctx.inputs):
            found: list[tuple[ProducerKey, _Proxy]] = []
            for vg in attached:
                for inst in self.gateways.instances(cluster, vg.ref):
                    svc = inst.service
                    selector = tuple(sorted(svc.selector.items()))
                    labels = ",".join(f"{k}={v}" for k, v in selector)
                    key: ProducerKey = ("EnvoyFilter", svc.namespace, f"gateway:{labels}")
                    proxy = self._proxy(key, cluster, svc.namespace, selector, "GATEWAY")
                    proxy.ports |= {p for li in vg.spec.listeners if (p := _http_port(svc, li))}
                    found.append((key, proxy))
                    self.deps.setdefault(key, set()).add(
                        ("ref", "VirtualGateway", vg.namespace, vg.name)
                    )
            if sidecars:
                for consumer in consumers:
                    for ns in ctx.membership.namespaces_in(consumer, cluster):
                        key = ("EnvoyFilter", ns, "sidecars")
                        found.append((key, self._proxy(key, cluster, ns, (), "SIDECAR_OUTBOUND")))
            for key, proxy in found:
                self.deps.setdefault(key, set()).update(deps)
                if proxy.context == "GATEWAY":
                    # Any VirtualGateway may start selecting this gateway (new ports).
                    self.deps[key] |= {("kind", "VirtualGateway", w) for w in _workspaces(ctx)}
                for name, policy, fr in protected:
                    held = proxy.routes.get(name)
                    # Two tables' routes with one name on one proxy: Istio patches both by
                    # name, so the oldest policy is the one written.
                    if held is None or policy.age_key() < held[0].age_key():
                        proxy.routes[name] = (policy, fr.table.source.file)

    def _proxy(
        self,
        key: ProducerKey,
        cluster: str,
        namespace: str,
        selector: tuple[tuple[str, str], ...],
        context: str,
    ) -> _Proxy:
        per_cluster = self.proxies.setdefault(key, {})
        proxy = per_cluster.get(cluster)
        if proxy is None:
            proxy = per_cluster[cluster] = _Proxy(namespace, selector, context)
        return proxy

    # -- rendering ----------------------------------------------------------------------------

    def producers(self) -> list[tuple[ProducerKey, frozenset[Dep]]]:
        return [(key, frozenset(self.deps[key])) for key in sorted(self.proxies)]

    def render_proxy(self, key: ProducerKey, cluster: str, out: ClusterOutputs) -> None:
        """A proxy's EnvoyFilters in one cluster (nothing where it serves no JWT route)."""
        proxy = self.proxies[key].get(cluster)
        if proxy is None or not proxy.routes:
            return
        policies = sorted({p.ref: p for p, _ in proxy.routes.values()}.values(), key=_age)
        configs = [self._config(p, cluster) for p in policies]
        for config in configs:
            for d in config.problems:
                out.report(d)
        ports: list[int | None] = [*sorted(proxy.ports)] if proxy.context == "GATEWAY" else [None]
        filters, oversize = jwt_patches.filter_patches(proxy.context, ports, configs)
        for config, size in oversize:
            # Left out whole: its routes name a requirement that does not exist (403).
            out.report(
                Diagnostic(
                    Reason.ObjectTooLarge,
                    f"a jwt_authn entry of this policy is {size:,} bytes, more than one "
                    "EnvoyFilter holds; the policy is not emitted and its routes answer 403",
                    config.policy.source,
                    config.policy.ref,
                    cluster=cluster,
                )
            )
        patches = [*filters, *jwt_patches.route_patches(proxy.context, proxy.routes)]
        workspace = self.ctx.membership.owner_of(cluster, proxy.namespace)

        def build(
            name: str, priority: int, chosen: Sequence[Patch], empty: bool = False
        ) -> dict[str, Any]:
            parent = _owners(chosen)[0]
            spec: dict[str, Any] = {
                "configPatches": [] if empty else [p.config for p in chosen],
                "priority": priority,
            }
            if proxy.selector:
                spec["workloadSelector"] = {"labels": dict(proxy.selector)}
            meta = out.metadata(
                name,
                proxy.namespace,
                workspace,
                Parent(
                    "security.policy.gloo.solo.io",
                    "v2",
                    "JWTPolicy",
                    parent.name,
                    parent.namespace,
                    parent.cluster,
                ),
                {f for p in chosen for f in p.files},
            )
            return {
                "apiVersion": API_VERSION,
                "kind": "EnvoyFilter",
                "metadata": meta,
                "spec": spec,
            }

        def envelope(chosen: Sequence[Patch]) -> int:
            # The longest name a segment can get; the priority's digits are covered by MARGIN.
            return segments.size(build("x" * 63, 0, chosen, empty=True))

        for seg in segments.split(proxy.ident, patches, self.segmented, envelope):
            obj = build(seg.name, seg.priority, seg.patches)
            size = segments.size(obj)
            if size <= MAX_OBJECT_BYTES:
                first = _owners(seg.patches)[0]
                out.add(obj, first.ref, first.age_key(), first.source)
                continue
            why = "segmentation is off" if not self.segmented else "one patch cannot be split"
            for policy in _owners(seg.patches):
                out.report(
                    Diagnostic(
                        Reason.ObjectTooLarge,
                        f"EnvoyFilter {proxy.namespace}/{seg.name} would be {size:,} bytes "
                        f"(limit {MAX_OBJECT_BYTES:,}; {why}); not emitted",
                        policy.source,
                        policy.ref,
                        cluster=cluster,
                    )
                )

    def _config(self, policy: jwt.Policy, cluster: str) -> jwt.PolicyConfig:
        key = (policy.ref, cluster)
        found = self._configs.get(key)
        if found is None:
            found = self._configs[key] = jwt.build(self.ctx, policy, cluster)
        return found


def _http_port(service: Service, listener: Listener) -> int:
    """The Gateway server port of an HTTP listener (`gateway`'s rule: the Service's numeric
    targetPort, else the listener port); 0 for TCP and TLS-passthrough listeners."""
    tls = listener.tls
    if listener.http is None or (tls is not None and tls.mode in _PASSTHROUGH):
        return 0
    wanted = listener.port
    port = service.port(wanted.number, wanted.name)
    if port is not None and isinstance(port.target_port, int):
        return port.target_port
    return wanted.number or (port.port if port else 0)


def _jwks_deps(policy: jwt.Policy) -> set[Dep]:
    deps: set[Dep] = set()
    for provider in policy.spec.config.providers.values():
        dest = provider.remote.destination_ref if provider.remote is not None else None
        if dest is not None and dest.kind != "SERVICE":
            kind = "VirtualDestination" if dest.kind == "VIRTUAL_DESTINATION" else "ExternalService"
            deps.add(("ref", kind, dest.ref.namespace or policy.namespace, dest.ref.name))
    return deps


def _workspaces(ctx: Context) -> list[str]:
    return sorted(ctx.membership.workspaces)


def _age(policy: jwt.Policy) -> tuple[Any, ...]:
    return policy.age_key()


def _owners(patches: Sequence[Patch]) -> list[jwt.Policy]:
    """The policies behind some patches, oldest first (the first is the parent)."""
    found: dict[ObjectRef, jwt.Policy] = {o.ref: o for p in patches for o in p.owners}
    return sorted(found.values(), key=_age)
