"""ExternalService -> ServiceEntry + TLS-origination DestinationRules, per consuming namespace.

Built once per translation by `translate`; one producer per ExternalService, rendered
per cluster. `destinations` uses `route_host`/`port_name` for RouteTable destinations of
kind EXTERNAL_SERVICE, and `sidecar` uses `hosts_visible_to` for trimmed proxies.
Rules (gloo-semantics.md 1.2, 2.3, 2.5, 3.2, 3.7):

- consumers: every namespace, in every cluster, of the ExternalService's workspace and
  of each workspace importing it (kind EXTERNAL_SERVICE); each gets its own copies with
  `exportTo: ["."]` (client-side outputs are replicated, spec 2.5);
- ServiceEntry `externalservice-{es}-{esNs}-{esCluster}-{consumerWorkspace}` (sanitized):
  `hosts`, `ports[{name, number, protocol, targetPort}]` (name default
  `{protocol}-{number}`, e.g. `https-443`), `location: MESH_EXTERNAL`. `resolution: DNS`
  for concrete hosts; `NONE` for wildcard hosts (Istio cannot resolve `*.example.com`)
  and for `addresses`-only services, whose IP blocks are passed through to where the
  client was headed (STATIC would need endpoints, and CIDRs cannot be endpoints). An
  addresses-only service gets the placeholder host
  `{es}.{esNs}.{esCluster}.externalservice.invalid` (Istio requires a host; `.invalid`
  never resolves, RFC 2606);
- a port with `clientsideTls` has the client proxy originate TLS: the application speaks
  plain HTTP (TCP for a TLS port), so the ServiceEntry port carries HTTP (TCP) and a
  DestinationRule `externalservice-{es}-{esNs}-{esCluster}-{host}-{consumerWorkspace}` per
  host adds `portLevelSettings[{port, tls}]`: `mode`, `sni` (default the host, for
  SIMPLE and MUTUAL, when the host is concrete), `credentialName`, `caCertificates`,
  `clientCertificate`, `privateKey`, `insecureSkipVerify`, and the service's
  `subjectAltNames`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.models.external import ClientsideTls, ExternalServicePort, ExternalServiceSpec
from gitops.translate.context import Context
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey

ExternalService = ConfigObject[ExternalServiceSpec]
PLACEHOLDER_DOMAIN = "externalservice.invalid"
#: What the application sends when its proxy originates TLS for it.
_PLAIN = {"HTTPS": "HTTP", "TLS": "TCP"}


@dataclass(frozen=True, slots=True)
class _Plan:
    es: ExternalService
    workspace: str
    viewers: tuple[str, ...]
    hosts: tuple[str, ...]
    parent: Parent


def hosts(es: ExternalService) -> tuple[str, ...]:
    """The ServiceEntry hosts: the service's own, or a placeholder for addresses-only ones."""
    if es.spec.hosts:
        return tuple(es.spec.hosts)
    return (f"{es.name}.{es.namespace}.{es.cluster}.{PLACEHOLDER_DOMAIN}",)


def route_host(es: ExternalService) -> str | None:
    """The host a route sends to: the first concrete host (None if all are wildcards)."""
    return next((h for h in hosts(es) if not h.startswith("*")), None)


def port_name(port: ExternalServicePort) -> str:
    """The port's `name`, else `{protocol}-{number}` (`https-443`)."""
    return port.name or f"{port.protocol.lower()}-{port.number}"


def _originates(port: ExternalServicePort) -> ClientsideTls | None:
    tls = port.clientside_tls
    return tls if tls is not None and tls.mode != "DISABLE" else None


class ExternalServices:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.plans: list[_Plan] = []
        for es in ctx.of_kind("ExternalService"):
            ws = ctx.workspace_of[es.ref]
            viewers = ctx.visibility.viewers(ws, "EXTERNAL_SERVICE", ctx.target(es))
            parent = Parent(
                "networking.gloo.solo.io",
                "v2",
                "ExternalService",
                es.name,
                es.namespace,
                es.cluster,
            )
            self.plans.append(_Plan(es, ws, viewers, hosts(es), parent))

    def hosts_visible_to(self, workspace: str) -> set[str]:
        return {h for plan in self.plans if workspace in plan.viewers for h in plan.hosts}

    def producers(self) -> list[tuple[ProducerKey, _Plan]]:
        return [(("ExternalService", p.es.namespace, p.es.name), p) for p in self.plans]

    def render_plan(self, plan: _Plan, cluster: str, out: ClusterOutputs) -> None:
        """An ExternalService's ServiceEntry and DestinationRules in each consuming namespace."""
        ctx = self.ctx
        es = plan.es
        spec = es.spec
        entry: dict[str, Any] = {
            "exportTo": ["."],
            "hosts": list(plan.hosts),
            "location": "MESH_EXTERNAL",
            "ports": [_port(p) for p in spec.ports],
            "resolution": _resolution(spec),
        }
        if spec.addresses:
            entry["addresses"] = list(spec.addresses)
        originating = [(p.number, tls) for p in spec.ports if (tls := _originates(p))]
        files = {es.source.file}
        for viewer in plan.viewers:
            for namespace in ctx.membership.namespaces_in(viewer, cluster):
                base = f"externalservice-{es.name}-{es.namespace}-{es.cluster}"
                meta = out.metadata(
                    names.sanitize(f"{base}-{viewer}"), namespace, viewer, plan.parent, files
                )
                out.add(
                    {
                        "apiVersion": NETWORKING,
                        "kind": "ServiceEntry",
                        "metadata": meta,
                        "spec": entry,
                    },
                    es.ref,
                    es.age_key(),
                    es.source,
                )
                if not originating:
                    continue
                for host in plan.hosts:
                    name = names.sanitize(f"{base}-{host}-{viewer}")
                    rule = {
                        "exportTo": ["."],
                        "host": host,
                        "trafficPolicy": {
                            "portLevelSettings": [
                                {"port": {"number": number}, "tls": _tls(tls, host, spec)}
                                for number, tls in originating
                            ]
                        },
                    }
                    out.add(
                        {
                            "apiVersion": NETWORKING,
                            "kind": "DestinationRule",
                            "metadata": out.metadata(name, namespace, viewer, plan.parent, files),
                            "spec": rule,
                        },
                        es.ref,
                        es.age_key(),
                        es.source,
                    )


def _resolution(spec: ExternalServiceSpec) -> str:
    if not spec.hosts or any(h.startswith("*") for h in spec.hosts):
        return "NONE"
    return "DNS"


def _port(port: ExternalServicePort) -> dict[str, Any]:
    protocol: str = port.protocol
    if _originates(port) is not None:
        protocol = _PLAIN.get(protocol, protocol)
    out: dict[str, Any] = {"name": port_name(port), "number": port.number, "protocol": protocol}
    if port.target_port is not None and port.target_port.number is not None:
        out["targetPort"] = port.target_port.number
    return out


def _tls(tls: ClientsideTls, host: str, spec: ExternalServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": tls.mode}
    sni = tls.sni
    if sni is None and tls.mode in ("SIMPLE", "MUTUAL") and _concrete(host):
        sni = host
    fields: Iterable[tuple[str, Any]] = (
        ("sni", sni),
        ("credentialName", tls.credential_name),
        ("caCertificates", tls.ca_certificates),
        ("clientCertificate", tls.client_certificate),
        ("privateKey", tls.private_key),
        ("insecureSkipVerify", tls.insecure_skip_verify),
        ("subjectAltNames", list(spec.subject_alt_names) or None),
    )
    out.update((key, value) for key, value in fields if value is not None)
    return out


def _concrete(host: str) -> bool:
    return not host.startswith("*") and not host.endswith(PLACEHOLDER_DOMAIN)
