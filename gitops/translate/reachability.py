"""Reachability: federated Services, ExternalServices and trimmed proxies, as producers.

Built once per translation by `translate` (after VirtualDestinations, whose hosts trimmed
proxies list); `Translation.producers` adds what `producers` returns. Groups three
translators that decide which hosts a proxy can reach: `federation` (global hosts of
Services in other clusters, spec 4.4), `external_service` (hosts outside the mesh, 3.7)
and `sidecar` (trimProxyConfig: only what the workspace can see, 2.7).

Deps (see `gitops.translate.Dep`); every producer reads discovered objects of every
cluster (namespaces, services, workloads, east-west gateways), so each depends on every
cluster's inputs. Workspace and WorkspaceSettings changes re-render everything anyway.

- federated Service (namespace/name): inputs only;
- ExternalService: itself;
- a trimming workspace's Sidecars: which VirtualDestinations, ExternalServices and
  RouteTables exist, and their hosts, in every workspace (any of them may be imported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitops.diagnostics import Diagnostic
from gitops.translate.context import Context
from gitops.translate.external_service import ExternalServices
from gitops.translate.federation import Federations
from gitops.translate.outputs import INPUTS, ClusterOutputs, ProducerKey
from gitops.translate.sidecar import HOST_KINDS, Sidecars
from gitops.translate.virtual_destination import VirtualDestinations

Render = Callable[[str, ClusterOutputs], None]
#: Same shape as `gitops.translate.Dep` (not imported: that package imports this module).
Dep = tuple[str, ...]


class Reachability:
    def __init__(self, ctx: Context, virtual_destinations: VirtualDestinations) -> None:
        self.ctx = ctx
        self.federations = Federations(ctx)
        self.external_services = ExternalServices(ctx)
        self.sidecars = Sidecars(
            ctx, virtual_destinations, self.external_services, self.federations
        )

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Fleet-wide problems (federation settings that select nothing, missing gateways)."""
        return list(self.federations.diagnostics)

    def producers(self) -> list[tuple[ProducerKey, Render, frozenset[Dep]]]:
        inputs: frozenset[Dep] = frozenset({INPUTS})
        found: list[tuple[ProducerKey, Render, frozenset[Dep]]] = []
        federations = self.federations
        for key, service in federations.producers():
            found.append((key, _bind(federations.render_service, service), inputs))
        externals = self.external_services
        for key, plan in externals.producers():
            es = plan.es
            deps = inputs | {("ref", "ExternalService", es.namespace, es.name)}
            found.append((key, _bind(externals.render_plan, plan), deps))
        every = sorted(self.ctx.membership.workspaces)
        hosts = frozenset(("kind", kind, ws) for kind in HOST_KINDS for ws in every)
        sidecars = self.sidecars
        for key, ws in sidecars.producers():
            found.append((key, _bind(sidecars.render_workspace, ws), inputs | hosts))
        return found


def _bind(method: Callable[..., None], *args: Any) -> Render:
    def render(cluster: str, out: ClusterOutputs) -> None:
        method(*args, cluster, out)

    return render
