"""Client DestinationRules for Services: subsets used by routes, and destination policies.

One producer per Service (namespace/name) that routes use with subsets or that destination
policies select; `render_service` runs per cluster after the RouteTable producers recorded
their `Need`s. Rules (gloo-semantics.md 2.5, 3.4, 3.5):

- one DestinationRule per (consuming namespace, Service host), in that namespace,
  `exportTo: ["."]`, named `{svcFqdn}-{namespace}-{cluster}-{workspace}` (sanitized,
  so long names keep a 31-character prefix and an md5), parent = the Service;
- `subsets` = every subset a VirtualService in that namespace routes to, sorted;
- Failover/OutlierDetection policies on the Service become `portLevelSettings` in a
  client DestinationRule in every namespace that can see the Service, in every
  cluster where the Service exists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from gitops import names
from gitops.translate import destination_policies
from gitops.translate.context import Context, ServiceRef
from gitops.translate.destination_policies import DestinationPolicies
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey

ServiceKey = tuple[str, str]


def producers(
    policies: DestinationPolicies, subset_services: Iterable[ServiceKey]
) -> list[tuple[ProducerKey, ServiceKey]]:
    """Services that may need client DestinationRules: used with subsets, or with policies."""
    keys = {(ns, name) for kind, ns, name in policies.applied if kind == "SERVICE"}
    keys.update(subset_services)
    return [(("ClientDR", ns, name), (ns, name)) for ns, name in sorted(keys)]


def deps_of(service: ServiceKey, policies: DestinationPolicies) -> set[tuple[str, ...]]:
    """The destination policies chosen for the Service's ports. (What RouteTables need is
    followed separately: their `Need`s are compared when they are rendered again.)"""
    chosen = policies.applied.get(("SERVICE", *service), {})
    return {
        ("ref", p.kind, p.namespace, p.name) for found in chosen.values() for p in found.values()
    }


def render_service(
    ctx: Context,
    service_key: ServiceKey,
    cluster: str,
    out: ClusterOutputs,
    policies: DestinationPolicies,
) -> None:
    """A Service's client DestinationRules in one cluster."""
    local = ctx.service_in(cluster, service_key)
    # (namespace, host) -> per-port chosen policies, and subsets wanted there.
    ports_by_key: dict[tuple[str, str], Mapping[int, Any]] = {}
    dest_key = ("SERVICE", *service_key)
    if local is not None and local.workspace is not None and policies.has(dest_key):
        s = local.service
        chosen = {p.port: policies.for_port(dest_key, p.port) for p in s.ports}
        chosen = {port: found for port, found in chosen.items() if found}
        if chosen:
            host = ctx.fqdn(s, cluster)
            for viewer in ctx.visibility.viewers(local.workspace, "SERVICE", local.target):
                for ns in ctx.membership.namespaces_in(viewer, cluster):
                    ports_by_key[(ns, host)] = chosen
    wanted: dict[tuple[str, str], dict[str, Mapping[str, str]]] = defaultdict(dict)
    files: dict[tuple[str, str], set[str]] = defaultdict(set)
    for need in out.needs_for(service_key):
        wanted[(need.namespace, need.host)][need.subset] = need.labels
        files[(need.namespace, need.host)].add(need.source)
    ref: ServiceRef | None = local or next(iter(ctx.services_by_key.get(service_key, ())), None)
    if ref is None:
        return
    s = ref.service
    parent = Parent("", "v1", "Service", s.name, s.namespace, ref.cluster)
    for key in sorted(set(wanted) | set(ports_by_key)):
        namespace, host = key
        consumer = ctx.membership.owner_of(cluster, namespace)
        spec: dict[str, Any] = {"exportTo": ["."], "host": host}
        if key in wanted:
            spec["subsets"] = [
                {"labels": dict(labels), "name": name}
                for name, labels in sorted(wanted[key].items())
            ]
        if key in ports_by_key:
            chosen_ports = ports_by_key[key]
            spec["trafficPolicy"] = {
                "portLevelSettings": [
                    destination_policies.port_settings(port, found)
                    for port, found in sorted(chosen_ports.items())
                ]
            }
            files[key] |= destination_policies.sources(chosen_ports.values())
        name = names.sanitize(f"{host}-{namespace}-{cluster}-{consumer or ''}")
        obj = {
            "apiVersion": NETWORKING,
            "kind": "DestinationRule",
            "metadata": out.metadata(name, namespace, consumer, parent, files[key]),
            "spec": spec,
        }
        out.add(obj, parent.ref, (False, s.created, s.namespace, s.name))
