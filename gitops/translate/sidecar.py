"""trimProxyConfig -> one Istio `Sidecar` per workload, listing only what it may reach.

Built once per translation by `translate`, after the VirtualDestination, ExternalService
and federation translators whose hosts it lists; one producer per trimming workspace,
rendered per cluster. Rules (gloo-semantics.md 2.7, 3.2, 3.7; worked example 7):

- a workspace trims when `options.trimAllProxyConfig` is true or
  `options.serviceIsolation.trimProxyConfig` is true (the `global` WorkspaceSettings'
  options count for workspaces without their own);
- one Sidecar per Deployment, StatefulSet and DaemonSet in the workspace's namespaces,
  named `sidecar-{workload}-{ns}-{cluster}-{workspace}` (sanitized), in the workload's
  namespace, parent the workload (`apps/v1`), `workloadSelector.labels` = its pod
  template labels (a workload without pod labels cannot be selected and gets none);
- `egress: [{hosts}]`, sorted, each `*/<host>` for what the workspace can see in that
  cluster: the cluster's Services it owns or imports (their FQDN), the hosts of the
  VirtualDestinations and ExternalServices it owns or imports, the global hosts of
  federated Services it owns or imports, and the hosts of RouteTables applied to its
  sidecars (a VirtualService is only given to proxies whose egress hosts match it);
- no `istio-system/*`: proxies reach istiod through their bootstrap, not through the
  Sidecar's egress listeners, and the observed Gloo output (Ex 7) has none [I].
"""

from __future__ import annotations

from typing import Any

from gitops import names
from gitops.discovery import Workload
from gitops.models.admin import WorkspaceSettingsSpec
from gitops.translate.context import Context
from gitops.translate.external_service import ExternalServices
from gitops.translate.federation import Federations, settings_object
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey
from gitops.translate.virtual_destination import VirtualDestinations

#: Config kinds whose hosts a trimmed proxy lists (the producer's `kind` deps).
HOST_KINDS = ("ExternalService", "RouteTable", "VirtualDestination")


def trims(settings: WorkspaceSettingsSpec | None) -> bool:
    """Does a workspace trim its proxies' config?"""
    options = settings.options if settings is not None else None
    if options is None:
        return False
    isolation = options.service_isolation
    return options.trim_all_proxy_config or (
        isolation is not None and isolation.trim_proxy_config is True
    )


class Sidecars:
    def __init__(
        self,
        ctx: Context,
        virtual_destinations: VirtualDestinations,
        external_services: ExternalServices,
        federations: Federations,
    ) -> None:
        self.ctx = ctx
        self.virtual_destinations = virtual_destinations
        self.external_services = external_services
        self.federations = federations
        self.workspaces = [
            ws for ws in sorted(ctx.membership.workspaces) if trims(ctx.settings.get(ws))
        ]

    def producers(self) -> list[tuple[ProducerKey, str]]:
        return [(("WorkspaceSidecars", "", ws), ws) for ws in self.workspaces]

    def _hosts(self, workspace: str, cluster: str) -> list[str]:
        """Everything a workspace's proxies in `cluster` may send to, as `*/<host>`."""
        ctx = self.ctx
        found = {
            ctx.fqdn(ref.service, cluster)
            for ref in ctx.services_in.get(cluster, ())
            if ctx.service_visible(workspace, ref)
        }
        for plan in self.virtual_destinations.plans:
            if workspace in plan.viewers:
                found.update(plan.vd.spec.hosts)
        found |= self.external_services.hosts_visible_to(workspace)
        found |= self.federations.hosts_visible_to(workspace)
        for table in ctx.of_kind("RouteTable"):
            spec = table.spec
            if not spec.hosts or (spec.virtual_gateways and not spec.workload_selectors):
                continue  # delegated children, and tables for gateways only
            owner = ctx.workspace_of[table.ref]
            if ctx.visibility.can_see(workspace, owner, "ROUTE_TABLE", ctx.target(table)):
                found.update(h for h in spec.hosts if h != "*")
        return [f"*/{host}" for host in sorted(found)]

    def render_workspace(self, workspace: str, cluster: str, out: ClusterOutputs) -> None:
        """The Sidecars of a trimming workspace's workloads in one cluster."""
        ctx = self.ctx
        inputs = ctx.inputs[cluster]
        workloads = [
            w
            for ns in ctx.membership.namespaces_in(workspace, cluster)
            for w in inputs.workloads_in.get(ns, ())
            if w.labels
        ]
        if not workloads:
            return
        # One list for every Sidecar of the workspace here (outputs are never mutated).
        egress = [{"hosts": self._hosts(workspace, cluster)}]
        settings = settings_object(ctx, workspace)
        sources = [settings.source.file] if settings is not None else []
        for workload in workloads:
            self._emit(workload, workspace, egress, sources, out)

    @staticmethod
    def _emit(
        workload: Workload,
        workspace: str,
        egress: list[dict[str, Any]],
        sources: list[str],
        out: ClusterOutputs,
    ) -> None:
        w = workload
        parent = Parent("apps", "v1", w.kind, w.name, w.namespace, out.cluster)
        name = names.sanitize(f"sidecar-{w.name}-{w.namespace}-{out.cluster}-{workspace}")
        obj = {
            "apiVersion": NETWORKING,
            "kind": "Sidecar",
            "metadata": out.metadata(name, w.namespace, workspace, parent, sources),
            "spec": {"egress": egress, "workloadSelector": {"labels": dict(w.labels)}},
        }
        out.add(obj, parent.ref, (False, "", w.namespace, w.name))
