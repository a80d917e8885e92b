"""Client DestinationRules for Services: subsets used by routes, and destination policies.

Called by `translate` per cluster, after `virtual_service` has recorded which
subsets its VirtualServices use in which namespace. Rules (gloo-semantics.md 2.5,
3.4, 3.5):

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
from typing import Any

from gitops import names
from gitops.translate import destination_policies
from gitops.translate.context import Context, ServiceRef
from gitops.translate.destination_policies import DestinationPolicies
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent
from gitops.translate.virtual_service import SubsetNeeds


def render(
    ctx: Context,
    cluster: str,
    out: ClusterOutputs,
    subsets: SubsetNeeds,
    policies: DestinationPolicies,
) -> None:
    # (namespace, host) -> (service, {port: chosen policies})
    with_policies: dict[tuple[str, str], tuple[ServiceRef, dict[int, Any]]] = {}
    for ref in ctx.services_in.get(cluster, ()):
        s = ref.service
        dest_key = ("SERVICE", s.namespace, s.name)
        if not policies.has(dest_key) or ref.workspace is None:
            continue
        ports = {p.port: policies.for_port(dest_key, p.port) for p in s.ports}
        ports = {port: chosen for port, chosen in ports.items() if chosen}
        if not ports:
            continue
        host = ctx.fqdn(s, cluster)
        for viewer in ctx.visibility.viewers(ref.workspace, "SERVICE", ref.target):
            for ns in ctx.membership.namespaces_in(viewer, cluster):
                with_policies[(ns, host)] = (ref, ports)
    keys = sorted(set(subsets.needs) | set(with_policies))
    by_key: dict[tuple[str, str], ServiceRef] = {}
    for key in keys:
        if key in with_policies:
            by_key[key] = with_policies[key][0]
        else:
            found = subsets.services[key]
            local = next(
                (
                    r
                    for r in ctx.services_by_key.get(
                        (found.service.namespace, found.service.name), ()
                    )
                    if r.cluster == cluster
                ),
                found,
            )
            by_key[key] = local
    files: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key in keys:
        namespace, host = key
        ref = by_key[key]
        s = ref.service
        consumer = ctx.membership.owner_of(cluster, namespace)
        spec: dict[str, Any] = {"exportTo": ["."], "host": host}
        wanted = subsets.needs.get(key)
        if wanted:
            spec["subsets"] = [
                {"labels": dict(labels), "name": name} for name, labels in sorted(wanted.items())
            ]
            files[key] |= subsets.sources[key]
        if key in with_policies:
            ports = with_policies[key][1]
            spec["trafficPolicy"] = {
                "portLevelSettings": [
                    destination_policies.port_settings(port, chosen)
                    for port, chosen in sorted(ports.items())
                ]
            }
            files[key] |= destination_policies.sources(ports.values())
        name = names.sanitize(f"{host}-{namespace}-{cluster}-{consumer or ''}")
        parent = Parent("", "v1", "Service", s.name, s.namespace, ref.cluster)
        obj = {
            "apiVersion": NETWORKING,
            "kind": "DestinationRule",
            "metadata": out.metadata(name, namespace, consumer, parent, files[key]),
            "spec": spec,
        }
        out.add(obj, parent.ref, (False, s.created, s.namespace, s.name))
