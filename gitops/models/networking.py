"""Spec models of the networking kinds: RouteTable, VirtualGateway, VirtualDestination.

`networking.gloo.solo.io/v2`, from solo-apis `api/gloo.solo.io/networking/v2/
{route_table,virtual_gateway,virtual_destination}.proto`; the rules enforced here are
the protos' documented constraints and CEL (`XValidation`) rules. The loader validates
`spec` with these; the Gateway, VirtualService and ServiceEntry translators read them
(gloo-semantics.md sections 3.3, 3.4 and 4).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from gitops.models.base import GlooModel, Labels, Port
from gitops.models.common import (
    ClientMode,
    DestinationReference,
    DestinationSelector,
    Empty,
    ExactHost,
    HTTPRequestMatcher,
    ObjectReference,
    ObjectSelector,
    PortSelector,
    RouteFilter,
    RouteHost,
    WorkloadSelector,
    at_most_one,
    exactly_one,
    split_weights,
    weights_problem,
)

# -- route actions (route_table.proto) --------------------------------------------------------


class GoogleRe2(GlooModel):
    """envoy `RegexMatcher.GoogleRE2` (deprecated knob, accepted for compatibility)."""

    max_program_size: int | None = None


class RegexMatcher(GlooModel):
    """envoy `RegexMatcher`: an RE2 expression."""

    google_re2: GoogleRe2 | None = None
    regex: str


class RegexRewrite(GlooModel):
    """envoy `RegexMatchAndSubstitute`: replace every match of `pattern` by `substitution`."""

    pattern: RegexMatcher
    substitution: str


def _weights_check(destinations: list[DestinationReference]) -> None:
    problem = weights_problem([d.weight for d in destinations])
    if problem:
        raise ValueError(problem)


class ForwardToAction(GlooModel):
    """Forward to destinations. Empty `destinations` means the table's `defaultDestination`."""

    destinations: list[DestinationReference] = Field(default_factory=list)
    path_rewrite: str | None = None
    regex_rewrite: RegexRewrite | None = None
    host_rewrite: str | None = None
    auto_host_rewrite: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        at_most_one(self, "path_rewrite", "regex_rewrite")
        at_most_one(self, "host_rewrite", "auto_host_rewrite")
        _weights_check(self.destinations)
        return self

    def effective_weights(self) -> list[int]:
        """Weights of `destinations` summing to 100, unset weights sharing the remainder."""
        return split_weights([d.weight for d in self.destinations])


class DelegateAction(GlooModel):
    """Delegate to the route tables selected by `routeTables` (oldest first)."""

    route_tables: list[ObjectSelector] = Field(default_factory=list)
    allowed_routes: list[RouteFilter] = Field(default_factory=list)
    sort_method: Literal["TABLE_WEIGHT", "ROUTE_SPECIFICITY"] = "TABLE_WEIGHT"


RedirectResponseCode = Literal[
    "MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"
]


class RedirectAction(GlooModel):
    """Answer with a redirect (301 unless `responseCode` says otherwise)."""

    host_redirect: str | None = None
    path_redirect: str | None = None
    response_code: RedirectResponseCode = "MOVED_PERMANENTLY"


class DirectResponseAction(GlooModel):
    """Answer directly; the body is capped at 1 MiB by the proto."""

    status: Annotated[int, Field(ge=100, le=599)]
    body: Annotated[str, Field(max_length=1_048_576)] | None = None


class ClusterObjectRef(GlooModel):
    """skv2 `ClusterObjectRef` (a GraphQL schema)."""

    name: str
    namespace: str | None = None
    cluster_name: str | None = None


class GraphQLOptions(GlooModel):
    log_sensitive_info: bool | None = None


class GraphQLAction(GlooModel):
    """Serve GraphQL. Loaded so it can be reported; not translated."""

    schema_: ClusterObjectRef | None = Field(default=None, alias="schema")
    stitched_schema: ClusterObjectRef | None = None
    options: GraphQLOptions | None = None

    @model_validator(mode="after")
    def _one_schema(self) -> Self:
        exactly_one(self, "schema_", "stitched_schema")
        return self


# -- routes -----------------------------------------------------------------------------------


class HTTPRoute(GlooModel):
    """One HTTP route: matchers (none = match all) and exactly one action.

    Duplicate `name`s are not refused: Gloo renames them `duplicate-<name>-<n>`
    and trims an `insecure-` prefix; the translator does both.
    """

    name: str | None = None
    labels: Labels = Field(default_factory=dict)
    matchers: list[HTTPRequestMatcher] = Field(default_factory=list)
    forward_to: ForwardToAction | None = None
    delegate: DelegateAction | None = None
    redirect: RedirectAction | None = None
    direct_response: DirectResponseAction | None = None
    graphql: GraphQLAction | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        exactly_one(self, "forward_to", "delegate", "redirect", "direct_response", "graphql")
        return self


class TCPRequestMatcher(GlooModel):
    port: Port | None = None


class TCPRoute(GlooModel):
    """A mesh-internal TCP route; needs 1-100 destinations (proto CEL rule)."""

    matchers: list[TCPRequestMatcher] = Field(default_factory=list)
    forward_to: ForwardToAction

    @model_validator(mode="after")
    def _destinations(self) -> Self:
        if not 1 <= len(self.forward_to.destinations) <= 100:
            raise ValueError("a TCP route's 'forwardTo' needs 1 to 100 destinations")
        return self


class TLSRequestMatcher(GlooModel):
    """SNI hosts (wildcard prefixes allowed) and an optional port."""

    sni_hosts: list[str] = Field(min_length=1)
    port: Port | None = None


class TLSForwardToAction(GlooModel):
    destinations: list[DestinationReference] = Field(min_length=1, max_length=99)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _weights_check(self.destinations)
        return self

    def effective_weights(self) -> list[int]:
        return split_weights([d.weight for d in self.destinations])


class TLSRoute(GlooModel):
    """Routes unterminated TLS by SNI."""

    matchers: list[TLSRequestMatcher] = Field(default_factory=list)
    forward_to: TLSForwardToAction


class PortalMetadata(GlooModel):
    """Developer-portal metadata; loaded, not translated."""

    api_product_id: str | None = None
    api_product_display_name: str | None = None
    api_version: str | None = None
    title: str | None = None
    description: str | None = None
    terms_of_service: str | None = None
    contact: str | None = None
    license: str | None = None
    lifecycle: str | None = None
    custom_metadata: Labels = Field(default_factory=dict)


def _labels_only(workload: WorkloadSelector) -> WorkloadSelector:
    # route_table.proto workloadSelectors: kind must be KUBE; selector name, namespace,
    # cluster and workspace must be empty (sidecars are selected by labels only).
    if workload.kind != "KUBE":
        raise ValueError("'workloadSelectors' kind must be KUBE")
    sel = workload.selector
    if sel is not None and (sel.name or sel.namespace or sel.cluster or sel.workspace):
        raise ValueError(
            "'workloadSelectors' select by labels only; name, namespace, cluster and "
            "workspace must be empty"
        )
    return workload


# -- RouteTable ------------------------------------------------------------------------------


class RouteTableSpec(GlooModel):
    """Routes for `hosts`, served by virtual gateways and/or sidecars (section 3.4).

    No `hosts` makes a delegated child table: it must not set `virtualGateways`,
    `applyToDestinations` or `failureMode` (proto CEL rules).
    """

    hosts: list[RouteHost] = Field(default_factory=list)
    virtual_gateways: list[ObjectReference] = Field(default_factory=list)
    workload_selectors: list[Annotated[WorkloadSelector, AfterValidator(_labels_only)]] = Field(
        default_factory=list
    )
    apply_to_destinations: list[DestinationSelector] = Field(default_factory=list)
    default_destination: DestinationReference | None = None
    http: list[HTTPRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    # Delegation order: higher weight first (int32).
    weight: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] = 0
    portal_metadata: PortalMetadata | None = None
    failure_mode: Literal["ROUTE_REPLACEMENT", "FREEZE_CONFIG"] = "ROUTE_REPLACEMENT"
    virtual_service_annotations: Labels = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not (self.http or self.tcp or self.tls):
            raise ValueError("set at least one of 'http', 'tcp' or 'tls'")
        # Gloo 2.6 refuses a bare '*' everywhere. We keep 2.0-era gateway tables working
        # (Istio accepts '*' on a gateway VirtualService) but refuse it wherever sidecars
        # would get it: there it captures every outbound request of the mesh.
        if "*" in self.hosts and (not self.virtual_gateways or self.workload_selectors):
            raise ValueError(
                "host '*' is allowed only on a table attached to virtual gateways alone (for "
                "sidecars it would capture all traffic); use a domain such as '*.example.com'"
            )
        if not self.hosts:
            for field in ("virtual_gateways", "apply_to_destinations", "failure_mode"):
                if field in self.model_fields_set:
                    name = type(self).model_fields[field].alias
                    raise ValueError(f"a delegated route table (no 'hosts') must not set '{name}'")
        self._check_default_destination()
        return self

    def _check_default_destination(self) -> None:
        forwards = [r.forward_to for r in self.http if r.forward_to is not None]
        if self.default_destination is not None:
            if not forwards:
                raise ValueError(
                    "'defaultDestination' can only be set when an http route has 'forwardTo'"
                )
        elif any(not f.destinations for f in forwards):
            raise ValueError(
                "an http 'forwardTo' without destinations needs the table's 'defaultDestination'"
            )


# -- VirtualGateway (virtual_gateway.proto) -------------------------------------------------

TLSProtocolVersion = Literal["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"]


class TLSFiles(GlooModel):
    """Certificate paths on the gateway's filesystem (proto `TLSConfig.Files`)."""

    server_cert: str | None = None
    private_key: str | None = None
    ca_certs: str | None = None


class TLSParameters(GlooModel):
    minimum_protocol_version: TLSProtocolVersion = "TLS_AUTO"
    maximum_protocol_version: TLSProtocolVersion = "TLS_AUTO"
    cipher_suites: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ciphers(self) -> Self:
        if self.minimum_protocol_version in ("TLSv1_0", "TLSv1_1") and not self.cipher_suites:
            raise ValueError(
                f"'minimumProtocolVersion: {self.minimum_protocol_version}' needs 'cipherSuites'"
            )
        return self


class TLSConfig(GlooModel):
    """Listener TLS; `mode` defaults to PASSTHROUGH (enum value 0)."""

    secret_name: str | None = None
    files: TLSFiles | None = None
    verify_subject_alt_name: list[str] = Field(default_factory=list)
    parameters: TLSParameters | None = None
    mode: Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"] = (
        "PASSTHROUGH"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        at_most_one(self, "secret_name", "files")
        files = self.files or TLSFiles()
        has_pair = files.server_cert is not None and files.private_key is not None
        if self.mode == "SIMPLE" and not (self.secret_name or has_pair):
            raise ValueError("TLS mode SIMPLE needs 'secretName' or files.serverCert+privateKey")
        if self.mode == "MUTUAL" and not (
            self.secret_name or (has_pair and files.ca_certs is not None)
        ):
            raise ValueError(
                "TLS mode MUTUAL needs 'secretName' or files.serverCert+privateKey+caCerts"
            )
        if self.mode == "ISTIO_MUTUAL" and (self.secret_name or self.files):
            raise ValueError("TLS mode ISTIO_MUTUAL takes neither 'secretName' nor 'files'")
        return self


class RouteTableFilter(GlooModel):
    """Which route tables bind to a listener: by host (`[ns/]dnsName`) and selector."""

    host: str
    # `host` alone admits every table with a matching host (the spec's Ex 1 writes only
    # `{host: '*'}`); a selector, when set, must also match the table.
    selector: ObjectSelector | None = None
    allowed_routes: list[RouteFilter] = Field(default_factory=list)


class ExternalServiceFilter(GlooModel):
    host: str
    selector: ObjectSelector | None = None


_HTTP_PROTOCOLS = ("GRPC", "GRPC-WEB", "HTTP", "HTTP_PROXY", "HTTP2")
_TCP_PROTOCOLS = ("TCP", "MONGO", "REDIS", "MYSQL")


class Listener(GlooModel):
    """A gateway port. Listener type: `http`, or TCP (`tcp` or neither)."""

    port: PortSelector
    tls: TLSConfig | None = None
    https_redirect: bool | None = None
    http: Empty | None = None
    tcp: Empty | None = None
    allowed_route_tables: list[RouteTableFilter] = Field(default_factory=list)
    exposed_external_services: list[ExternalServiceFilter] = Field(default_factory=list)
    app_protocol: Annotated[str, Field(max_length=10)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        at_most_one(self, "tls", "https_redirect")
        at_most_one(self, "http", "tcp")
        if self.http is None and self.https_redirect is not None:
            raise ValueError("'httpsRedirect' is only for http listeners")
        if self.app_protocol is not None:
            allowed = self._allowed_app_protocols()
            if self.app_protocol.upper() not in allowed:
                raise ValueError(
                    f"'appProtocol: {self.app_protocol}' does not fit this listener; "
                    f"use one of {', '.join(allowed)} or leave it out"
                )
        return self

    def _allowed_app_protocols(self) -> tuple[str, ...]:
        # The four CEL rules on virtual_gateway.proto `Listener`.
        if self.http is not None:
            return ("HTTPS",) if self.tls is not None else _HTTP_PROTOCOLS
        return ("TLS",) if self.tls is not None else _TCP_PROTOCOLS


class VirtualGatewaySpec(GlooModel):
    """Gateway workloads and their listeners (section 3.3)."""

    # No workloads: every ingress gateway (`istio: ingressgateway` pods) the workspace can
    # see; a null selector in an entry selects nothing.
    workloads: list[WorkloadSelector] = Field(default_factory=list)
    listeners: list[Listener] = Field(min_length=1)


# -- VirtualDestination (virtual_destination.proto) -------------------------------------------


class VirtualDestinationPort(GlooModel):
    """A port of the virtual destination (proto `PortMapping`); `targetPort` defaults to it."""

    number: Port
    protocol: Literal["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"]
    target_port: PortSelector | None = None


class VirtualDestinationSpec(GlooModel):
    """One global host for backing services in many clusters (section 4)."""

    hosts: list[ExactHost] = Field(min_length=1)
    services: list[ObjectSelector] = Field(default_factory=list)
    external_services: list[ObjectSelector] = Field(default_factory=list)
    external_workloads: list[ObjectSelector] = Field(default_factory=list)
    ports: list[VirtualDestinationPort] = Field(min_length=1)
    # Unset: inherit WorkspaceSettings `virtualDestClientMode`.
    client_mode: ClientMode | None = None

    @field_validator("hosts")
    @classmethod
    def _unique_hosts(cls, hosts: list[str]) -> list[str]:
        repeated = sorted({h for h in hosts if hosts.count(h) > 1})
        if repeated:
            raise ValueError(f"host(s) {repeated} appear more than once in 'hosts'")
        return hosts

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[VirtualDestinationPort]) -> list[VirtualDestinationPort]:
        numbers = [p.number for p in ports]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(f"port number(s) {repeated} appear more than once in 'ports'")
        return ports

    @model_validator(mode="after")
    def _target_ports(self) -> Self:
        backed = self.services or self.external_services or self.external_workloads
        if not backed and any(p.target_port is not None for p in self.ports):
            raise ValueError(
                "'targetPort' needs 'services', 'externalServices' or 'externalWorkloads'"
            )
        return self
