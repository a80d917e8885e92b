"""VirtualDestination -> ServiceEntry + WorkloadEntries + DestinationRule, per cluster.

Backing services are resolved once for the fleet (`__init__`); `render` writes the
outputs of one cluster. Rules (gloo-semantics.md 4.1, 2.5, 3.5; worked examples 5, 6):

- backing services: Services visible to the VD's workspace that match one of
  `spec.services`; at most one per cluster (the oldest; more is a warning);
- consumers: the namespaces, per cluster, of the VD's workspace and of every
  workspace importing it;
- in each cluster with consumers, when the VD's namespace exists there: one
  ServiceEntry `vd-{host}-{workspace}` in it, `exportTo` = the consuming namespaces,
  `addresses` = a virtual IP in 240.0.0.0/4, `resolution: STATIC`; a local backing
  Service contributes `workloadSelector` (its pod selector) and every other backing
  cluster one WorkloadEntry (its east-west gateway address, the gateway's port for the
  client mode, the cluster's locality) carrying the same labels; without a local backing
  Service the remote endpoints are inlined as `endpoints`. When the VD's namespace does
  not exist in a cluster, each consuming namespace gets its own copy with `exportTo: ["."]`;
- the east-west gateways and the client mode (`clientMode`, else the workspace's
  `virtualDestClientMode`) are chosen by `east_west`: SNI passthrough on the gateway's
  `tls` port by default, its `https` port under `tlsTermination`;
- one DestinationRule per host with, per VD port, `tls: ISTIO_MUTUAL` and the SPIFFE
  identities of every backing workload (under `tlsTermination` also of the east-west
  gateways, which then present their own certificate), plus Failover/OutlierDetection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.networking import VirtualDestinationSpec
from gitops.reasons import Reason
from gitops.translate import destination_policies, east_west
from gitops.translate.context import Context, ServiceRef
from gitops.translate.destination_policies import DestinationPolicies
from gitops.translate.east_west import EastWest, Remote
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey

VirtualDestination = ConfigObject[VirtualDestinationSpec]


@dataclass(frozen=True, slots=True)
class _Plan:
    vd: VirtualDestination
    workspace: str
    backing: dict[str, ServiceRef]  # cluster -> backing service
    remotes: dict[str, Remote]  # cluster -> east-west gateway (backing clusters only)
    sans: tuple[str, ...]
    viewers: tuple[str, ...]
    parent: Parent
    vip: str
    age: tuple[Any, ...]
    #: (local selector labels, remote cluster) -> WorkloadEntry (name, spec): the same in
    #: every cluster that sees the VD, so built once (a fleet has clusters^2 of them).
    entries: dict[tuple[Any, str], tuple[str, dict[str, Any]]]


class VirtualDestinations:
    def __init__(
        self,
        ctx: Context,
        policies: DestinationPolicies,
        previous: VirtualDestinations | None = None,
    ) -> None:
        """Plan every VirtualDestination. With `previous` (same inputs, workspaces and
        settings), the plans of VirtualDestinations that did not change are reused."""
        self.ctx = ctx
        self.policies = policies
        self.diagnostics: list[Diagnostic] = []
        self.gateways: EastWest = previous.gateways if previous is not None else EastWest(ctx)
        known = previous.planned if previous is not None else {}
        #: VD ref -> (its plan, the problems found planning it).
        self.planned: dict[ObjectRef, tuple[_Plan | None, list[Diagnostic]]] = {}
        for vd in ctx.of_kind("VirtualDestination"):
            old = known.get(vd.ref)
            if old is not None and old[0] is not None and (old[0].vd is vd or old[0].vd == vd):
                self.planned[vd.ref] = old
                continue
            before = len(self.diagnostics)
            plan = self._plan(vd)
            self.planned[vd.ref] = (plan, self.diagnostics[before:])
            del self.diagnostics[before:]
        for _, problems in self.planned.values():
            self.diagnostics.extend(problems)
        plans = [plan for plan, _ in self.planned.values() if plan is not None]
        self.plans = self._unique_hosts(plans)

    def _unique_hosts(self, plans: list[_Plan]) -> list[_Plan]:
        """One VirtualDestination per host for any workspace that sees it: the oldest wins."""
        claimed: dict[str, list[_Plan]] = defaultdict(list)
        kept: list[_Plan] = []
        for plan in sorted(plans, key=lambda p: p.vd.age_key()):
            clash = next(
                (
                    (host, other)
                    for host in plan.vd.spec.hosts
                    for other in claimed[host]
                    if set(other.viewers) & set(plan.viewers)
                ),
                None,
            )
            if clash is not None:
                host, other = clash
                self.diagnostics.append(
                    Diagnostic(
                        Reason.OutputConflict,
                        f"host {host} is already served by VirtualDestination "
                        f"{other.vd.namespace}/{other.vd.name}, which is older; this one is "
                        "not applied",
                        plan.vd.source,
                        plan.vd.ref,
                        "spec.hosts",
                    )
                )
                continue
            for host in plan.vd.spec.hosts:
                claimed[host].append(plan)
            kept.append(plan)
        return sorted(kept, key=lambda p: p.vd.ref)

    def _plan(self, vd: VirtualDestination) -> _Plan | None:
        ctx = self.ctx
        ws = ctx.workspace_of[vd.ref]
        matched: dict[str, list[ServiceRef]] = defaultdict(list)
        for selector in vd.spec.services:
            for ref in ctx.find_services(selector):
                visible = ref.cluster in ctx.inputs and ctx.service_visible(ws, ref)
                if visible and ref not in matched[ref.cluster]:
                    matched[ref.cluster].append(ref)
        backing: dict[str, ServiceRef] = {}
        for cluster, refs in sorted(matched.items()):
            refs.sort(
                key=lambda r: (
                    not r.service.created,
                    r.service.created,
                    r.service.namespace,
                    r.service.name,
                )
            )
            backing[cluster] = refs[0]
            if len(refs) > 1:
                others = ", ".join(f"{r.service.namespace}/{r.service.name}" for r in refs[1:])
                self.diagnostics.append(
                    Diagnostic(
                        Reason.MultipleServicesInCluster,
                        f"selects {len(refs)} Services in cluster {cluster}; using "
                        f"{refs[0].service.namespace}/{refs[0].service.name}, ignoring {others}",
                        vd.source,
                        vd.ref,
                        "spec.services",
                        cluster,
                    )
                )
        if not backing:
            self.diagnostics.append(
                Diagnostic(
                    Reason.NoBackingService,
                    "selects no Service in any cluster",
                    vd.source,
                    vd.ref,
                    "spec.services",
                )
            )
        remotes: dict[str, Remote] = {}
        sans: set[str] = set()
        settings = ctx.settings.get(ws)
        mode = east_west.client_mode(vd.spec.client_mode, settings.options if settings else None)
        for cluster, ref in backing.items():
            remote = self.gateways.remote(ws, cluster, mode)
            if remote is None:
                self.diagnostics.append(
                    Diagnostic(
                        Reason.EastWestGatewayNotFound,
                        f"cluster {cluster} has {self.gateways.describe(ws, mode)}; other "
                        "clusters cannot reach its endpoints",
                        vd.source,
                        vd.ref,
                        cluster=cluster,
                    )
                )
            else:
                remotes[cluster] = remote
                if mode == east_west.TLS_TERMINATION:
                    sans |= east_west.identities(ctx, cluster, remote.gateway)
            sans |= east_west.identities(ctx, cluster, ref.service)
        viewers = ctx.visibility.viewers(ws, "VIRTUAL_DESTINATION", ctx.target(vd))
        parent = Parent(
            "networking.gloo.solo.io", "v2", "VirtualDestination", vd.name, vd.namespace, vd.cluster
        )
        vip = names.virtual_ip(vd.spec.hosts[0], vd.namespace, vd.cluster, "virtual-destination")
        return _Plan(
            vd, ws, backing, remotes, tuple(sorted(sans)), viewers, parent, vip, vd.age_key(), {}
        )

    def producers(self) -> list[tuple[ProducerKey, _Plan]]:
        return [(("VirtualDestination", p.vd.namespace, p.vd.name), p) for p in self.plans]

    def deps_of(self, plan: _Plan) -> set[tuple[str, ...]]:
        """The VD, the policies chosen for its ports, and every VirtualDestination of the
        workspaces that see it (another one taking the same host changes who serves it)."""
        vd = plan.vd
        deps: set[tuple[str, ...]] = {("ref", "VirtualDestination", vd.namespace, vd.name)}
        chosen = self.policies.applied.get(("VIRTUAL_DESTINATION", vd.namespace, vd.name), {})
        deps.update(
            ("ref", p.kind, p.namespace, p.name)
            for found in chosen.values()
            for p in found.values()
        )
        deps.update(("kind", "VirtualDestination", ws) for ws in plan.viewers)
        return deps

    def render_plan(self, plan: _Plan, cluster: str, out: ClusterOutputs) -> None:
        """A VirtualDestination's ServiceEntry, WorkloadEntries and DestinationRules."""
        ctx = self.ctx
        inputs = ctx.inputs[cluster]
        consumers = sorted(
            {ns for v in plan.viewers for ns in ctx.membership.namespaces_in(v, cluster)}
        )
        if not consumers:
            return
        vd = plan.vd
        if vd.namespace in inputs.namespaces:
            placements = [(vd.namespace, consumers)]
        else:
            placements = [(ns, ["."]) for ns in consumers]
        for namespace, export_to in placements:
            self._emit(plan, cluster, out, namespace, export_to)

    def _emit(
        self, plan: _Plan, cluster: str, out: ClusterOutputs, namespace: str, export_to: list[str]
    ) -> None:
        vd, ws = plan.vd, plan.workspace
        consumer = self.ctx.membership.owner_of(cluster, namespace)
        local = plan.backing.get(cluster)
        ports = vd.spec.ports
        port_names = {p.number: f"{p.protocol.lower()}-{p.number}" for p in ports}
        dest_key = ("VIRTUAL_DESTINATION", vd.namespace, vd.name)
        chosen = {p.number: self.policies.for_port(dest_key, p.number) for p in ports}
        files = {vd.source.file} | destination_policies.sources(chosen.values())
        meta = out.metadata(
            names.sanitize(f"vd-{vd.spec.hosts[0]}-{ws}"), namespace, consumer, plan.parent, files
        )
        entry: dict[str, Any] = {
            "addresses": [plan.vip],
            "exportTo": export_to,
            "hosts": list(vd.spec.hosts),
            "location": "MESH_INTERNAL",
            "ports": [
                {
                    "name": port_names[p.number],
                    "number": p.number,
                    "protocol": p.protocol,
                    "targetPort": _target_port(p.number, p.target_port, local),
                }
                for p in ports
            ],
            "resolution": "STATIC",
        }

        # Shared between WorkloadEntries: gateways almost always use the same tls port.
        by_port: dict[int, dict[str, int]] = {}

        def remote_ports(remote: Remote) -> dict[str, int]:
            found = by_port.get(remote.port)
            if found is None:
                found = by_port[remote.port] = {port_names[p.number]: remote.port for p in ports}
            return found

        remotes = [r for c, r in sorted(plan.remotes.items()) if c != cluster]
        if local is not None:
            labels = dict(local.service.selector)
            entry["workloadSelector"] = {"labels": labels}
            label_part = "-".join(f"{k}-{v}" for k, v in sorted(labels.items()))
            # Built once and shared: a VD can have a WorkloadEntry per cluster of the fleet.
            we_meta = out.metadata("", namespace, consumer, plan.parent, files, extra_labels=labels)
            label_key = tuple(sorted(labels.items()))
            entries = []
            for remote in remotes:
                known = plan.entries.get((label_key, remote.cluster))
                if known is None:
                    spec: dict[str, Any] = {
                        "address": remote.address,
                        "labels": labels,
                        "ports": remote_ports(remote),
                    }
                    if remote.locality:
                        spec["locality"] = remote.locality
                    name = names.sanitize(
                        f"vd-{vd.spec.hosts[0]}-{ws}-{label_part}-{remote.address}"
                    )
                    known = plan.entries[(label_key, remote.cluster)] = (name, spec)
                entries.append(
                    {
                        "apiVersion": NETWORKING,
                        "kind": "WorkloadEntry",
                        "metadata": {**we_meta, "name": known[0]},
                        "spec": known[1],
                    }
                )
            out.add_all(entries, vd.ref, plan.age, vd.source)
        elif remotes:
            entry["endpoints"] = [
                {
                    "address": r.address,
                    "ports": remote_ports(r),
                    **({"locality": r.locality} if r.locality else {}),
                }
                for r in remotes
            ]
        out.add(
            {"apiVersion": NETWORKING, "kind": "ServiceEntry", "metadata": meta, "spec": entry},
            vd.ref,
            plan.age,
            vd.source,
        )
        for host in vd.spec.hosts:
            settings = []
            for p in ports:
                port_entry = destination_policies.port_settings(p.number, chosen[p.number])
                port_entry["tls"] = {"mode": "ISTIO_MUTUAL", "subjectAltNames": list(plan.sans)}
                settings.append(port_entry)
            name = names.sanitize(
                f"{host}-virtual-destination-{vd.name}-{vd.namespace}-{vd.cluster}-{ws}"
            )
            out.add(
                {
                    "apiVersion": NETWORKING,
                    "kind": "DestinationRule",
                    "metadata": out.metadata(name, namespace, consumer, plan.parent, files),
                    "spec": {
                        "exportTo": export_to,
                        "host": host,
                        "trafficPolicy": {"portLevelSettings": settings},
                    },
                },
                vd.ref,
                plan.age,
                vd.source,
            )


def _target_port(number: int, target: Any, local: ServiceRef | None) -> int:
    """The port the backing pods listen on: `targetPort` (a number, or a port name of the
    local backing Service), else the VD port itself."""
    if target is None:
        return number
    if target.number is not None:
        return int(target.number)
    if local is not None:
        port = local.service.port(name=target.name)
        if port is not None and isinstance(port.target_port, int):
            return port.target_port
    return number
