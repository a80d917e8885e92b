"""East-west gateways and client modes: how one cluster reaches another cluster's workloads.

Used by `virtual_destination` (WorkloadEntries and inline endpoints of a VirtualDestination)
and `federation` (endpoints of federated hosts in other clusters), once per translation;
answers are cached per (workspace, cluster, mode). Rules (gloo-semantics.md 1.2, 4.1):

- the gateway of a cluster is chosen by the *owning* workspace's
  `options.eastWestGateways[]` (the VirtualDestination's or the federated Service's
  workspace; a workspace without options uses the `global` WorkspaceSettings' options).
  Entries are tried in order; an entry's `selector` is an ObjectSelector over the
  cluster's Services (labels of the Service, name, namespace, cluster, workspace). Within
  an entry, Services are tried in namespace/name order; the first one that yields an
  address and a port is the gateway. No entries (or an entry without `selector`) means
  Services labelled `istio: eastwestgateway`, Istio's convention;
- the gateway is infrastructure shared by the fleet, so it need not be visible to the
  workspace (the default never required that either) [I];
- client mode: a VirtualDestination's `clientMode`, else the workspace's
  `virtualDestClientMode`, else `auto`. `auto` and `sniRouting` use the SNI-passthrough
  port (`port`, default the port named `tls`: Istio's AUTO_PASSTHROUGH listener on 15443);
  `tlsTermination` uses `tlsTerminationPort` (default the port named `https`), where the
  gateway terminates the client's mTLS and opens a new connection;
- `hostInfoOverrides[]` replace what discovery found, for the port type they name
  (`portType`, default SNI_PASSTHROUGH): `addr` the load-balancer address, `port` the port.
  An override with an address makes a gateway without a discovered address usable.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.discovery import Service
from gitops.models.admin import EastWestGatewaySelector, WorkspaceSettingsOptions
from gitops.models.common import ClientMode, PortSelector
from gitops.selectors import object_match
from gitops.translate.context import Context, ServiceRef

#: Client modes as rendered: SNI passthrough (`auto`, `sniRouting`) or TLS termination.
SNI_PASSTHROUGH = "SNI_PASSTHROUGH"
TLS_TERMINATION = "TLS_TERMINATION"
#: Default port names on the east-west gateway Service, per client mode (Istio's and
#: Gloo's install conventions: `tls` 15443 is AUTO_PASSTHROUGH, `https` terminates).
DEFAULT_PORT_NAME = {SNI_PASSTHROUGH: "tls", TLS_TERMINATION: "https"}


@dataclass(frozen=True, slots=True)
class Remote:
    """How other clusters reach `cluster` through its east-west gateway, in one client mode."""

    cluster: str
    address: str
    port: int
    locality: str
    mode: str
    #: The gateway Service: under TLS termination its workloads' identities are what
    #: clients see, so they join the DestinationRule's subjectAltNames.
    gateway: Service


def client_mode(own: ClientMode | None, options: WorkspaceSettingsOptions | None) -> str:
    """The effective client mode: the resource's, else the workspace's, else SNI passthrough."""
    mode = own or (options.virtual_dest_client_mode if options is not None else None)
    if mode is not None and mode.tls_termination is not None:
        return TLS_TERMINATION
    return SNI_PASSTHROUGH


class EastWest:
    """Finds east-west gateways for workspaces; one instance per translator, cached."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[str, str, str], Remote | None] = {}

    def _entries(self, workspace: str) -> list[EastWestGatewaySelector]:
        settings = self.ctx.settings.get(workspace)
        options = settings.options if settings is not None else None
        return list(options.east_west_gateways) if options is not None else []

    def remote(self, workspace: str, cluster: str, mode: str) -> Remote | None:
        """The east-west gateway of `cluster` as `workspace` configures it, or None."""
        entries = self._entries(workspace)
        # Workspaces without entries all share the default choice.
        key = (workspace if entries else "", cluster, mode)
        if key not in self._cache:
            self._cache[key] = self._find(entries, cluster, mode)
        return self._cache[key]

    def _find(
        self, entries: list[EastWestGatewaySelector], cluster: str, mode: str
    ) -> Remote | None:
        inputs = self.ctx.inputs.get(cluster)
        if inputs is None:
            return None
        services = self.ctx.services_in.get(cluster, ())
        choices: list[EastWestGatewaySelector | None] = list(entries) or [None]
        for entry in choices:
            for ref in services:
                if not _selected(entry, ref):
                    continue
                found = _endpoint(ref.service, entry, mode)
                if found is not None:
                    address, port = found
                    return Remote(cluster, address, port, inputs.locality(), mode, ref.service)
        return None

    def describe(self, workspace: str, mode: str) -> str:
        """What was looked for, for `EastWestGatewayNotFound` messages."""
        port = "TLS-termination" if mode == TLS_TERMINATION else "SNI-passthrough"
        if self._entries(workspace):
            return (
                f"no east-west gateway selected by workspace {workspace}'s eastWestGateways "
                f"with an address and its {port} port"
            )
        return (
            "no east-west gateway (a Service labelled istio: eastwestgateway) with an address "
            f"and a '{DEFAULT_PORT_NAME[mode]}' port ({port})"
        )


def identities(ctx: Context, cluster: str, service: Service) -> set[str]:
    """SPIFFE ids of the workloads behind a Service (`default` when none is found): the
    `subjectAltNames` a client accepts when it reaches them over mTLS."""
    inputs = ctx.inputs[cluster]
    accounts = {w.service_account for w in inputs.workloads_for(service)} or {"default"}
    domain = ctx.trust_domain(cluster)
    return {f"spiffe://{domain}/ns/{service.namespace}/sa/{account}" for account in accounts}


def _selected(entry: EastWestGatewaySelector | None, ref: ServiceRef) -> bool:
    if entry is None or entry.selector is None:
        return ref.service.is_east_west_gateway
    return object_match(entry.selector, ref.target)


def _endpoint(
    service: Service, entry: EastWestGatewaySelector | None, mode: str
) -> tuple[str, int] | None:
    """(address, port) of a gateway Service in a client mode, overrides applied."""
    chosen: PortSelector | None = None
    if entry is not None:
        chosen = entry.tls_termination_port if mode == TLS_TERMINATION else entry.port
    if chosen is not None:
        found = service.port(chosen.number, chosen.name)
    else:
        found = service.port(name=DEFAULT_PORT_NAME[mode])
    override = None
    if entry is not None:
        override = next((h for h in entry.host_info_overrides if h.port_type == mode), None)
    address = service.addresses[0] if service.addresses else None
    port = found.port if found is not None else None
    if override is not None:
        address = override.addr or address
        port = override.port or port
    if address is None or port is None:
        return None
    return address, port
