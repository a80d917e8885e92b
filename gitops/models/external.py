"""Spec model of ExternalService: a destination outside the mesh.

`networking.gloo.solo.io/v2`, from solo-apis `api/gloo.solo.io/networking/v2/
external_service.proto`; field names are the proto's JSON names. The loader validates
`spec` with it; the ServiceEntry/DestinationRule translator reads it (gloo-semantics.md
3.7). The rules enforced are the proto's documented constraints.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from gitops.models.base import GlooModel, Labels, Port
from gitops.models.common import ObjectReference, PortSelector, hostname_problem
from gitops.models.security import IpBlock


def _external_host(host: str) -> str:
    # external_service.proto `hosts`: "Both FQDN and wildcard prefix domains are supported"
    # (`*.example.com`); a bare `*` is no domain (Istio refuses it in a ServiceEntry too).
    problem = hostname_problem(host, allow_wildcard=True)
    if problem:
        raise ValueError(problem)
    return host


#: An ExternalService host: an FQDN, or a wildcard prefix domain (`*.example.com`).
ExternalHost = Annotated[str, AfterValidator(_external_host)]

ExternalProtocol = Literal["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"]
# external_service.proto EgressGatewayRoutes: "Currently only supported for ExternalService
# ports with HTTP, HTTP2, and HTTPS protocols."
_EGRESS_PROTOCOLS = ("HTTP", "HTTP2", "HTTPS")


class ClientsideTls(GlooModel):
    """Port `clientsideTls` (proto `Port.TlsConfig`): TLS origination to the service.

    Passed to the DestinationRule's `tls` for the port. `mode` defaults to SIMPLE
    (enum value 0); with a single host, that host is the default `sni`.
    """

    sni: str | None = None
    mode: Literal["SIMPLE", "DISABLE", "MUTUAL", "ISTIO_MUTUAL"] = "SIMPLE"
    # File paths on the client proxy.
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    # BoolValue: unset and false differ (unset leaves Istio's default).
    insecure_skip_verify: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        has_pair = self.client_certificate is not None and self.private_key is not None
        if self.mode == "MUTUAL" and not (has_pair or self.credential_name):
            raise ValueError(
                "TLS mode MUTUAL needs 'clientCertificate' and 'privateKey' (or 'credentialName')"
            )
        if self.mode == "ISTIO_MUTUAL":
            extra = [
                name
                for name, value in (
                    ("clientCertificate", self.client_certificate),
                    ("privateKey", self.private_key),
                    ("caCertificates", self.ca_certificates),
                    ("credentialName", self.credential_name),
                )
                if value is not None
            ]
            if extra:
                raise ValueError(f"TLS mode ISTIO_MUTUAL takes no certificates; remove {extra}")
        return self


class EgressGatewayRoutes(GlooModel):
    """Reach the service through egress VirtualGateways (load-balanced across them)."""

    # uint32; 0 (unset) means 80.
    port_match: Annotated[int, Field(ge=0, le=65535)] = 80
    virtual_gateway_refs: list[ObjectReference] = Field(default_factory=list)

    @field_validator("port_match")
    @classmethod
    def _default_port(cls, value: int) -> int:
        return value or 80


class ExternalServicePort(GlooModel):
    """A port of the service (proto `Port`); `targetPort` defaults to `number`."""

    number: Port
    target_port: PortSelector | None = None
    name: str | None = None
    protocol: ExternalProtocol
    clientside_tls: ClientsideTls | None = None
    egress_gateway_routes: EgressGatewayRoutes | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.egress_gateway_routes is not None and self.protocol not in _EGRESS_PROTOCOLS:
            raise ValueError(
                f"'egressGatewayRoutes' is only supported on {', '.join(_EGRESS_PROTOCOLS)} "
                f"ports, not {self.protocol}"
            )
        return self


class ExternalServiceSpec(GlooModel):
    """Hosts (or addresses) and ports of an out-of-mesh service: a ServiceEntry (3.7).

    `selector` picks ExternalEndpoints for the addresses; empty (or `{}`) selects none,
    and the hosts are resolved by DNS.
    """

    hosts: list[ExternalHost] = Field(default_factory=list)
    addresses: list[IpBlock] = Field(default_factory=list)
    ports: list[ExternalServicePort] = Field(min_length=1)
    selector: Labels = Field(default_factory=dict)
    subject_alt_names: list[str] = Field(default_factory=list)

    @field_validator("hosts", "addresses")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{repeated} appear more than once")
        return values

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[ExternalServicePort]) -> list[ExternalServicePort]:
        numbers = [p.number for p in ports]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(f"port number(s) {repeated} appear more than once in 'ports'")
        names = [p.name for p in ports if p.name]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"port name(s) {twice} appear more than once in 'ports'")
        matches = [p.egress_gateway_routes.port_match for p in ports if p.egress_gateway_routes]
        clash = sorted({m for m in matches if matches.count(m) > 1})
        if clash:
            # EgressGatewayRoutes.port_match: "must be unique for each ExternalService port".
            raise ValueError(f"egressGatewayRoutes.portMatch {clash} used by more than one port")
        return ports

    @model_validator(mode="after")
    def _check(self) -> Self:
        # external_service.proto: hosts and addresses are mutually exclusive.
        if bool(self.hosts) == bool(self.addresses):
            found = "both" if self.hosts else "neither"
            raise ValueError(f"set exactly one of 'hosts', 'addresses'; found {found}")
        for port in self.ports:
            if port.egress_gateway_routes is not None and not self.hosts:
                raise ValueError(
                    f"port {port.number}: 'egressGatewayRoutes' needs 'hosts', not 'addresses'"
                )
            target = port.target_port
            if target is not None and target.name is not None and not self.selector:
                raise ValueError(
                    f"port {port.number}: a 'targetPort' by name needs ExternalEndpoints "
                    "('selector'); without them use a number"
                )
        return self
