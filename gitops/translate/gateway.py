"""VirtualGateway -> Istio `Gateway`, and which gateways a RouteTable may attach to.

Called by `translate` per cluster (`render`) and by `virtual_service` (`in_cluster`,
`allows`). Rules (gloo-semantics.md 3.3):

- `workloads[]` select gateway pods by labels (plus namespace/cluster); the Service
  fronting those pods (its `spec.selector` contains the labels) is the gateway, and
  must be visible to the VirtualGateway's workspace;
- one Gateway per (VirtualGateway, gateway Service, cluster), in the Service's
  namespace, named `virtualgateway-{vg}-{vgNs}-{svc}-{svcNs}-{cluster}` (sanitized);
  `selector` = the Service's pod selector;
- one server per listener and allowed host (`all` when unrestricted); `port.number` is
  the gateway Service's targetPort for the listener port; `port.name` is
  `{protocol}-{number}-{host|all}`; hosts come from `allowedRouteTables` (`*` if
  unrestricted); `httpsRedirect` becomes `tls.httpsRedirect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.discovery import Service
from gitops.ids import ObjectRef
from gitops.models.networking import Listener, RouteTableSpec, TLSConfig, VirtualGatewaySpec
from gitops.reasons import Reason
from gitops.selectors import labels_match, object_match
from gitops.translate.context import Context
from gitops.translate.outputs import NETWORKING, ClusterOutputs, Parent, ProducerKey

VirtualGateway = ConfigObject[VirtualGatewaySpec]
_TLS_VERSION = {
    "TLS_AUTO": "TLS_AUTO",
    "TLSv1_0": "TLSV1_0",
    "TLSv1_1": "TLSV1_1",
    "TLSv1_2": "TLSV1_2",
    "TLSv1_3": "TLSV1_3",
}


@dataclass(frozen=True, slots=True)
class Instance:
    """One generated Gateway: a VirtualGateway realised on one gateway Service."""

    vg: VirtualGateway
    service: Service
    name: str


#: Pod labels of the gateways a VirtualGateway without `workloads` applies to.
INGRESS_GATEWAY_LABELS = {"istio": "ingressgateway"}


def host_allowed(pattern: str, host: str, namespace: str = "") -> bool:
    """An allowedRouteTables host (`[namespace/]host`, `*` and `*.domain` wildcards) admits
    a route-table host of a table in `namespace`."""
    if "/" in pattern:
        allowed_ns, pattern = pattern.split("/", 1)
        if allowed_ns not in ("*", namespace):
            return False
    if pattern in ("*", host):
        return True
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return host.endswith(suffix) or (host.startswith("*") and host[1:].endswith(suffix))
    return False


class Gateways:
    """Gateway instances per cluster, computed once and shared with VirtualServices."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.diagnostics: list[Diagnostic] = []
        self._instances: dict[str, list[Instance]] = {}
        self._found_any: set[Any] = set()
        for cluster in sorted(ctx.inputs):
            self._instances[cluster] = self._select(cluster)
        for vg in ctx.of_kind("VirtualGateway"):
            if vg.ref not in self._found_any:
                self.diagnostics.append(
                    Diagnostic(
                        Reason.GatewayNotFound,
                        "no gateway Service matches spec.workloads in any cluster",
                        vg.source,
                        vg.ref,
                        "spec.workloads",
                    )
                )

    def _select(self, cluster: str) -> list[Instance]:
        out = []
        for vg in self.ctx.of_kind("VirtualGateway"):
            ws = self.ctx.workspace_of[vg.ref]
            for ref in self.ctx.services_in.get(cluster, ()):
                service = ref.service
                if not service.selector:
                    continue
                if not vg.spec.workloads:
                    if not labels_match(INGRESS_GATEWAY_LABELS, service.selector):
                        continue
                elif not any(
                    w.selector is not None
                    and labels_match(w.selector.labels, service.selector)
                    and (w.selector.namespace in (None, service.namespace))
                    and (w.selector.cluster in (None, cluster))
                    and (w.selector.workspace in (None, ref.workspace))
                    for w in vg.spec.workloads
                ):
                    continue
                if not self.ctx.service_visible(ws, ref):
                    continue
                self._found_any.add(vg.ref)
                name = names.sanitize(
                    f"virtualgateway-{vg.name}-{vg.namespace}-{service.name}-"
                    f"{service.namespace}-{cluster}"
                )
                out.append(Instance(vg, service, name))
        return out

    def rebound(self, ctx: Context) -> Gateways:
        """These gateways for a context with the same VirtualGateways and inputs."""
        copy = object.__new__(Gateways)
        copy.__dict__.update(self.__dict__)
        copy.ctx = ctx
        return copy

    def in_cluster(self, cluster: str) -> list[Instance]:
        return self._instances.get(cluster, [])

    def instances(self, cluster: str, vg: ObjectRef) -> list[Instance]:
        return [i for i in self._instances.get(cluster, ()) if i.vg.ref == vg]

    def allows(self, vg: VirtualGateway, table: ConfigObject[RouteTableSpec]) -> str | None:
        """Why the VirtualGateway will not take the table, or None if it will."""
        ws = self.ctx.workspace_of[vg.ref]
        target = self.ctx.target(table)
        owner = target.workspace
        if owner is None or not self.ctx.visibility.can_see(ws, owner, "ROUTE_TABLE", target):
            return (
                f"the table is not visible to workspace {ws} of VirtualGateway "
                f"{vg.namespace}/{vg.name}"
            )
        filters = [f for listener in vg.spec.listeners for f in listener.allowed_route_tables]
        if not filters:
            return None
        for f in filters:
            if f.selector is not None and not object_match(f.selector, target):
                continue
            if any(host_allowed(f.host, h, table.namespace) for h in table.spec.hosts):
                return None
        return (
            f"no listener of VirtualGateway {vg.namespace}/{vg.name} allows hosts "
            f"{', '.join(table.spec.hosts)}"
        )

    def producers(self) -> list[tuple[ProducerKey, VirtualGateway]]:
        return [
            (("VirtualGateway", vg.namespace, vg.name), vg)
            for vg in self.ctx.of_kind("VirtualGateway")
        ]

    def render_gateway(self, vg: VirtualGateway, cluster: str, out: ClusterOutputs) -> None:
        """A VirtualGateway's Gateways in one cluster (one per selected gateway Service)."""
        for instance in self.instances(cluster, vg.ref):
            service = instance.service
            servers: list[dict[str, Any]] = []
            for i, listener in enumerate(vg.spec.listeners):
                servers.extend(self._servers(cluster, vg, service, i, listener, out))
            ws = self.ctx.membership.owner_of(cluster, service.namespace)
            parent = Parent(
                "networking.gloo.solo.io",
                "v2",
                "VirtualGateway",
                vg.name,
                vg.namespace,
                vg.cluster,
            )
            obj = {
                "apiVersion": NETWORKING,
                "kind": "Gateway",
                "metadata": out.metadata(
                    instance.name, service.namespace, ws, parent, [vg.source.file]
                ),
                "spec": {"selector": dict(service.selector), "servers": servers},
            }
            out.add(obj, vg.ref, vg.age_key(), vg.source)

    def _servers(
        self,
        cluster: str,
        vg: VirtualGateway,
        service: Service,
        i: int,
        listener: Listener,
        out: ClusterOutputs,
    ) -> list[dict[str, Any]]:
        port_sel = listener.port
        svc_port = service.port(port_sel.number, port_sel.name)
        number: int
        if svc_port is not None and isinstance(svc_port.target_port, int):
            number = svc_port.target_port
        else:
            number = port_sel.number or (svc_port.port if svc_port else 0)
            wanted = port_sel.number or port_sel.name
            where = f"gateway Service {service.namespace}/{service.name}"
            out.report(
                Diagnostic(
                    Reason.GatewayPortNotFound,
                    f"{where} has no numeric target port for listener port {wanted}; "
                    + (f"using {number}" if number else "the listener is skipped"),
                    vg.source,
                    vg.ref,
                    f"spec.listeners[{i}].port",
                    cluster,
                )
            )
            if not number:
                return []
        tls = listener.tls
        passthrough = tls is not None and tls.mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
        if listener.http is not None:
            protocol = "HTTP" if tls is None else ("TLS" if passthrough else "HTTPS")
        else:  # `tcp`, or neither: a TCP listener (virtual_gateway.proto)
            protocol = "TCP" if tls is None else "TLS"
        hosts = sorted({f.host for f in listener.allowed_route_tables}) or ["*"]
        base: dict[str, Any] = {}
        if tls is not None:
            base["tls"] = _tls(tls)
        elif listener.https_redirect:
            base["tls"] = {"httpsRedirect": True}
        proto = protocol.lower()
        if hosts != ["*"]:
            return [
                {
                    **base,
                    "hosts": [host],
                    "port": {
                        "name": f"{proto}-{number}-{names.sanitize(host.split('/')[-1])}",
                        "number": number,
                        "protocol": protocol,
                    },
                }
                for host in hosts
            ]
        return [
            {
                **base,
                "hosts": hosts,
                "port": {"name": f"{proto}-{number}-all", "number": number, "protocol": protocol},
            }
        ]


def _tls(tls: TLSConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": tls.mode}
    if tls.secret_name:
        out["credentialName"] = tls.secret_name
    if tls.files is not None:
        if tls.files.server_cert:
            out["serverCertificate"] = tls.files.server_cert
        if tls.files.private_key:
            out["privateKey"] = tls.files.private_key
        if tls.files.ca_certs:
            out["caCertificates"] = tls.files.ca_certs
    if tls.verify_subject_alt_name:
        out["subjectAltNames"] = list(tls.verify_subject_alt_name)
    if tls.parameters is not None:
        p = tls.parameters
        if p.minimum_protocol_version != "TLS_AUTO":
            out["minProtocolVersion"] = _TLS_VERSION[p.minimum_protocol_version]
        if p.maximum_protocol_version != "TLS_AUTO":
            out["maxProtocolVersion"] = _TLS_VERSION[p.maximum_protocol_version]
        if p.cipher_suites:
            out["cipherSuites"] = list(p.cipher_suites)
    return out
