"""Stage 2: `translate(bundle, inputs) -> Translation` — Gloo config to per-cluster Istio config.

Called by `gitops render`/`gitops validate`, by the incremental `Session`
(`gitops.translate.incremental`), and later by the server and the preview engine.
Fleet-wide work (indexes, workspaces, delegation, policy choice, VirtualDestination
backing) happens once in `translate`; then each cluster is rendered on demand by
`Translation.render(cluster)`, so callers can stream a large fleet one cluster at a time.

Rendering is done by *producers*: one per VirtualGateway, root RouteTable,
VirtualDestination, Service needing client DestinationRules, AccessPolicy and Service
under service isolation (`security`), federated Service, ExternalService and workspace
trimming proxy config (`reachability`). Each renders a cluster into a `ClusterOutputs`
under its own key, which is what lets one producer be rendered again alone when its
inputs change (`incremental`). Modules by output: `gateway`, `virtual_service`,
`destination_rule`, `virtual_destination` (+ `east_west`), `security` (`access_policy`,
`access_rules`, `authz`, `isolation`), `reachability` (`federation`, `external_service`,
`sidecar`), `envoy_filter` (`jwt`, `jwt_patches`, `segments`); shared steps: `context`,
`routes`, `route_policies`, `destination_policies`, `destinations`, `outputs`,
`unsupported`. User mistakes come back as diagnostics next to whatever could be
translated; only bugs raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic
from gitops.discovery import ClusterInputs
from gitops.ids import ObjectRef
from gitops.translate import context, destination_policies, destination_rule, unsupported
from gitops.translate.envoy_filter import EnvoyFilters
from gitops.translate.gateway import Gateways
from gitops.translate.outputs import INPUTS, ClusterOutputs, ProducerKey
from gitops.translate.reachability import Reachability
from gitops.translate.security import Security
from gitops.translate.virtual_destination import VirtualDestinations
from gitops.translate.virtual_service import VirtualServices

__all__ = ["ClusterOutput", "Producer", "Translation", "translate"]


@dataclass(frozen=True)
class ClusterOutput:
    """One cluster's Istio objects, in apply order, and what went wrong only there."""

    cluster: str
    objects: list[dict[str, Any]]
    diagnostics: tuple[Diagnostic, ...]


#: What a producer's output depends on, for incremental translation:
#:   ("ref", kind, namespace, name)  - one config object (added, changed or removed);
#:   ("kind", kind, workspace)       - any config object of a kind placed in a workspace;
#:   ("inputs",)                     - anything discovered in any cluster (`INPUTS`;
#:                                     every producer reads several clusters' objects).
#: A producer is rendered again when one of its deps changes. Deps may be generous (a
#: wider dep only costs time); a missing dep is a bug (tests/gitops/test_incremental.py
#: compares incremental results with full renders).
Dep = tuple[str, ...]


@dataclass(frozen=True)
class Producer:
    """Something that renders part of every cluster: `render(cluster, out)`."""

    key: ProducerKey
    render: Callable[[str, ClusterOutputs], None]
    deps: frozenset[Dep] = frozenset()


@dataclass
class Translation:
    """The fleet-wide part of a translation; renders clusters one at a time."""

    ctx: context.Context
    gateways: Gateways
    virtual_services: VirtualServices
    virtual_destinations: VirtualDestinations
    policies: destination_policies.DestinationPolicies
    #: AccessPolicies and service isolation (AuthorizationPolicy, PeerAuthentication).
    security: Security
    #: Federated Services, ExternalServices and trimmed proxies (Sidecars).
    reachability: Reachability
    #: JWTPolicies as EnvoyFilters on the proxies serving their routes.
    envoy_filters: EnvoyFilters
    #: Diagnostics that do not depend on which cluster is rendered.
    diagnostics: tuple[Diagnostic, ...] = ()
    #: Fields set but not translated, per object (reused by the next incremental translate).
    unsupported_fields: unsupported.Found = field(default_factory=dict)
    _producers: list[Producer] | None = field(default=None, init=False, repr=False)

    @property
    def clusters(self) -> tuple[str, ...]:
        """The clusters that get output: registered, with an input snapshot."""
        return tuple(sorted(self.ctx.inputs))

    @property
    def workspace_of(self) -> Mapping[ObjectRef, str]:
        return self.ctx.workspace_of

    @property
    def selected(self) -> dict[ObjectRef, int]:
        """Policies: how many routes or destination ports each one applies to."""
        return {
            **self.virtual_services.policies.counts,
            **self.policies.counts,
            **self.security.counts,
            **self.envoy_filters.choice.counts,
        }

    @property
    def frozen(self) -> frozenset[ObjectRef]:
        """Resources whose previous outputs must be kept as they are (FREEZE_CONFIG)."""
        return frozenset(self.virtual_services.frozen)

    def producers(self) -> list[Producer]:
        """Every producer, in render order: client DestinationRules read what RouteTables
        recorded, so they come last. Built once; every cluster renders the same list."""
        if self._producers is None:
            self._producers = self._build_producers()
        return list(self._producers)

    def _build_producers(self) -> list[Producer]:
        # Everything below reads discovered objects of every cluster (services, gateways,
        # service accounts): an input change anywhere renders them again.
        inputs: frozenset[Dep] = frozenset({INPUTS})
        found: list[Producer] = []
        for key, vg in self.gateways.producers():
            deps = inputs | {("ref", "VirtualGateway", vg.namespace, vg.name)}
            found.append(Producer(key, _bind(self.gateways.render_gateway, vg), deps))
        vs = self.virtual_services
        for key, table, flat in vs.producers():
            deps = inputs | vs.deps_of(table, flat)
            found.append(Producer(key, _bind(vs.render_table, table, flat), deps))
        vds = self.virtual_destinations
        for key, plan in vds.producers():
            found.append(Producer(key, _bind(vds.render_plan, plan), inputs | vds.deps_of(plan)))
        for key, render, deps in self.security.producers():
            found.append(Producer(key, render, deps))
        for key, render, deps in self.reachability.producers():
            found.append(Producer(key, render, deps))
        filters = self.envoy_filters
        for key, deps in filters.producers():
            found.append(Producer(key, _bind(filters.render_proxy, key), deps))
        for key, service in destination_rule.producers(self.policies, vs.subset_services()):
            deps = inputs | destination_rule.deps_of(service, self.policies)
            found.append(Producer(key, _bind_service(self.ctx, service, self.policies), deps))
        return found

    def render_into(self, out: ClusterOutputs, producers: list[Producer]) -> None:
        for producer in producers:
            out.begin(producer.key)
            producer.render(out.cluster, out)

    def render(self, cluster: str) -> ClusterOutput:
        """All Istio objects for one cluster. Deterministic; call in any order."""
        out = ClusterOutputs(cluster)
        self.render_into(out, self.producers())
        out.resolve()
        return ClusterOutput(cluster, out.objects(), tuple(out.diagnostics()))

    def render_all(self) -> Iterator[ClusterOutput]:
        for cluster in self.clusters:
            yield self.render(cluster)


def _bind(method: Callable[..., None], *args: Any) -> Callable[[str, ClusterOutputs], None]:
    def render(cluster: str, out: ClusterOutputs) -> None:
        method(*args, cluster, out)

    return render


def _bind_service(
    ctx: context.Context,
    service: tuple[str, str],
    policies: destination_policies.DestinationPolicies,
) -> Callable[[str, ClusterOutputs], None]:
    def render(cluster: str, out: ClusterOutputs) -> None:
        destination_rule.render_service(ctx, service, cluster, out, policies)

    return render


def translate(
    bundle: Bundle,
    inputs: Mapping[str, ClusterInputs],
    previous: Translation | None = None,
    changed: frozenset[ObjectRef] | None = None,
) -> Translation:
    """Prepare the translation of a bundle for a fleet described by `inputs`.

    With `previous` (the translation of an earlier bundle for the same inputs) and `changed`
    (the config objects that differ), the parts of `previous` that the change cannot
    affect are reused; the result is the same as without them.
    """
    ctx = None
    if previous is not None and changed is not None and _same_inputs(previous, inputs):
        ctx = context.refresh(previous.ctx, bundle, changed)
    if ctx is None or previous is None or changed is None:
        return _translate(context.build(bundle, inputs))
    kinds = {ref.kind for ref in changed}
    gateways = previous.gateways.rebound(ctx) if "VirtualGateway" not in kinds else Gateways(ctx)
    virtual_services = VirtualServices(ctx, gateways, previous.virtual_services, changed)
    stale = {
        ws
        for ref in changed
        if ref.kind in {*destination_policies.DESTINATION_POLICY_KINDS, "VirtualDestination"}
        for ws in (previous.ctx.workspace_of.get(ref), ctx.workspace_of.get(ref))
        if ws is not None
    }
    policies = destination_policies.choose(ctx, previous.policies, stale)
    return _translate(ctx, gateways, virtual_services, policies, previous)


def _same_inputs(previous: Translation, inputs: Mapping[str, ClusterInputs]) -> bool:
    known = previous.ctx.inputs
    return all(inputs.get(c) is found for c, found in known.items()) and all(
        c in known or c not in previous.ctx.clusters for c in inputs
    )


def _translate(
    ctx: context.Context,
    gateways: Gateways | None = None,
    virtual_services: VirtualServices | None = None,
    policies: destination_policies.DestinationPolicies | None = None,
    previous: Translation | None = None,
) -> Translation:
    gateways = gateways or Gateways(ctx)
    virtual_services = virtual_services or VirtualServices(ctx, gateways)
    policies = policies or destination_policies.choose(ctx)
    virtual_destinations = VirtualDestinations(
        ctx, policies, previous.virtual_destinations if previous else None
    )
    security = Security(ctx, previous.security if previous else None)
    reachability = Reachability(ctx, virtual_destinations)
    envoy_filters = EnvoyFilters(ctx, gateways, virtual_services)
    placed = (o for kind in unsupported.NOT_TRANSLATED for o in ctx.of_kind(kind))
    not_translated = unsupported.check(placed, previous.unsupported_fields if previous else None)
    fleet = [
        *ctx.diagnostics,
        *ctx.placement_problems.values(),
        *(d for _, found in not_translated.values() for d in found),
        *gateways.diagnostics,
        *virtual_services.diagnostics,
        *policies.diagnostics,
        *virtual_destinations.diagnostics,
        *security.diagnostics,
        *reachability.diagnostics,
        *envoy_filters.diagnostics,
    ]
    return Translation(
        ctx,
        gateways,
        virtual_services,
        virtual_destinations,
        policies,
        security,
        reachability,
        envoy_filters,
        tuple(fleet),
        not_translated,
    )
