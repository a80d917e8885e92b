"""Stage 2: `translate(bundle, inputs) -> Translation` — Gloo config to per-cluster Istio config.

Called by `gitops render`/`gitops validate` and later by the server's reconcile
loop and the preview engine. Fleet-wide work (indexes, workspaces, delegation,
policy choice, VirtualDestination backing) happens once in `translate`; each
cluster is then rendered on demand by `Translation.render(cluster)`, so callers can
stream a large fleet one cluster at a time instead of holding all of it.

One output kind per module: `gateway`, `virtual_service`, `destination_rule`,
`virtual_destination`; shared steps: `context`, `routes`, `route_policies`,
`destination_policies`, `destinations`, `outputs`. User mistakes come back as
diagnostics next to whatever could be translated; only bugs raise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic
from gitops.discovery import ClusterInputs
from gitops.ids import ObjectRef
from gitops.translate import context, destination_policies, destination_rule, unsupported
from gitops.translate.gateway import Gateways
from gitops.translate.outputs import ClusterOutputs
from gitops.translate.virtual_destination import VirtualDestinations
from gitops.translate.virtual_service import SubsetNeeds, VirtualServices

__all__ = ["ClusterOutput", "Translation", "translate"]


@dataclass(frozen=True)
class ClusterOutput:
    """One cluster's Istio objects, in apply order, and what went wrong only there."""

    cluster: str
    objects: list[dict[str, Any]]
    diagnostics: tuple[Diagnostic, ...]


@dataclass
class Translation:
    """The fleet-wide part of a translation; renders clusters one at a time."""

    ctx: context.Context
    gateways: Gateways
    virtual_services: VirtualServices
    virtual_destinations: VirtualDestinations
    policies: destination_policies.DestinationPolicies
    #: Diagnostics that do not depend on which cluster is rendered.
    diagnostics: tuple[Diagnostic, ...] = ()
    _rendered: set[str] = field(default_factory=set)

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
        return {**self.virtual_services.policies.counts, **self.policies.counts}

    @property
    def frozen(self) -> frozenset[ObjectRef]:
        """Resources whose previous outputs must be kept as they are (FREEZE_CONFIG)."""
        return frozenset(self.virtual_services.frozen)

    def render(self, cluster: str) -> ClusterOutput:
        """All Istio objects for one cluster. Deterministic; call in any order."""
        out = ClusterOutputs(cluster)
        sources = (self.gateways.diagnostics, self.virtual_services.diagnostics)
        before = [len(s) for s in sources]
        self.gateways.render(cluster, out)
        subsets = SubsetNeeds()
        self.virtual_services.render(cluster, out, subsets)
        destination_rule.render(self.ctx, cluster, out, subsets, self.policies)
        self.virtual_destinations.render(cluster, out)
        objects = out.finish()
        found = [d for s, n in zip(sources, before, strict=True) for d in s[n:]]
        return ClusterOutput(cluster, objects, tuple(found + out.diagnostics))

    def render_all(self) -> Iterator[ClusterOutput]:
        for cluster in self.clusters:
            yield self.render(cluster)


def translate(bundle: Bundle, inputs: Mapping[str, ClusterInputs]) -> Translation:
    """Prepare the translation of a bundle for a fleet described by `inputs`."""
    ctx = context.build(bundle, inputs)
    gateways = Gateways(ctx)
    virtual_services = VirtualServices(ctx, gateways)
    policies = destination_policies.choose(ctx)
    virtual_destinations = VirtualDestinations(ctx, policies)
    placed = (o for kind in unsupported.NOT_TRANSLATED for o in ctx.of_kind(kind))
    fleet = [
        *ctx.diagnostics,
        *unsupported.check(placed),
        *gateways.diagnostics,
        *virtual_services.diagnostics,
        *policies.diagnostics,
        *virtual_destinations.diagnostics,
    ]
    # Later, cluster-specific diagnostics are collected per render.
    gateways.diagnostics.clear()
    virtual_services.diagnostics.clear()
    return Translation(
        ctx, gateways, virtual_services, virtual_destinations, policies, tuple(fleet)
    )
