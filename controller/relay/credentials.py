"""TLS for the relay: the server's two listeners and the agent's two kinds of channel.

`gitops serve` calls `server_credentials` and `start_server`; the agent calls
`registration_channel` (to register), `relay_channel` (everything else) or
`plaintext_channel` (insecure). docs/relay.md, "Two listeners", explains the split:

gRPC Python cannot ask for a client certificate without requiring one
(`ssl_server_credentials(require_client_auth=False)` never requests it, so the auth context
has no certificate), and an agent that is not registered yet has none to show. So one
`grpc.Server` listens twice with the same service: the relay port requires a client
certificate verified against the relay root CA (Push, Pull, Renew), the registration port
uses server-only TLS (Register with the token). Calls other than Register on the
registration port carry no identity and are refused by `controller.relay.service`.
"""

from __future__ import annotations

from concurrent import futures

import grpc

from controller import pki
from controller.relay import relay_pb2_grpc
from controller.relay.service import RelayService
from controller.secrets import SecretsDir
from gitops.helm.models import MgmtRelay

#: Snapshots are sent in chunks of at most 4 MiB (DESIGN.md section 5); twice that leaves
#: room for protobuf framing and a chunker that overshoots by one object.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Streams live as long as the agent runs and may be idle for hours; keepalive pings find
#: dead peers (a vanished node, a NAT that dropped the mapping) within about a minute.
_CLIENT_KEEPALIVE_MS = 30_000
_SERVER_KEEPALIVE_MS = 60_000
_KEEPALIVE_TIMEOUT_MS = 20_000
#: Every connected agent holds two worker threads (its Push and Pull streams) for as long as
#: it is connected; this allows about 60 agents per server replica plus unary calls.
DEFAULT_MAX_WORKERS = 128

_SHARED_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
]
_SERVER_OPTIONS = [
    *_SHARED_OPTIONS,
    ("grpc.keepalive_time_ms", _SERVER_KEEPALIVE_MS),
    # Accept the agents' pings (every 30 s) even on idle connections; a stricter limit
    # makes the server answer with GOAWAY "too_many_pings".
    ("grpc.http2.min_ping_interval_without_data_ms", _CLIENT_KEEPALIVE_MS // 2),
    ("grpc.http2.max_ping_strikes", 0),
]
_CLIENT_OPTIONS = [
    *_SHARED_OPTIONS,
    ("grpc.keepalive_time_ms", _CLIENT_KEEPALIVE_MS),
    ("grpc.http2.max_pings_without_data", 0),
]

ServerCredentialPair = tuple[grpc.ServerCredentials, grpc.ServerCredentials]


class ListenError(Exception):
    """A listener could not bind its address (in use, no permission, bad host)."""


def server_credentials(secrets: SecretsDir, relay: MgmtRelay) -> ServerCredentialPair:
    """(relay port: mutual TLS, registration port: server-only TLS) from the server's Secrets.

    Both serve the certificate in `relay.tlsSecret` (`tls.key`, `tls.crt`); client
    certificates on the relay port must chain to `relay-root-tls-secret/ca.crt`. Raises
    SecretError naming a missing Secret key.
    """
    server = relay.tls_secret.name
    pair = [(secrets.read(server, "tls.key"), secrets.read(server, "tls.crt"))]
    root = secrets.read(pki.ROOT_SECRET, "ca.crt")
    mutual = grpc.ssl_server_credentials(pair, root_certificates=root, require_client_auth=True)
    return mutual, grpc.ssl_server_credentials(pair)


def start_server(
    service: RelayService,
    *,
    relay_address: str,
    registration_address: str,
    credentials: ServerCredentialPair | None,
    max_workers: int = DEFAULT_MAX_WORKERS,
) -> tuple[grpc.Server, int, int]:
    """A started server with `service` on both listeners; returns it and the bound ports
    (port 0 in an address picks a free one). `credentials` None: plaintext on both
    (insecure mode). The caller stops it (`server.stop(grace)`). Raises ListenError."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="relay"),
        options=_SERVER_OPTIONS,
    )
    relay_pb2_grpc.add_RelayServicer_to_server(service, server)
    ports = []
    for address, creds in (
        (relay_address, credentials[0] if credentials else None),
        (registration_address, credentials[1] if credentials else None),
    ):
        try:
            port = (
                server.add_secure_port(address, creds)
                if creds
                else server.add_insecure_port(address)
            )
        except RuntimeError as exc:  # grpcio raises RuntimeError since 1.5x
            server.stop(None)
            raise ListenError(f"cannot listen on {address}: {exc}") from None
        if port == 0:  # older grpcio return 0 instead of raising
            server.stop(None)
            raise ListenError(f"cannot listen on {address}")
        ports.append(port)
    server.start()
    return server, ports[0], ports[1]


def registration_channel(address: str, root_pem: bytes, authority: str) -> grpc.Channel:
    """A server-only TLS channel to the registration port: the agent has no certificate yet.
    `authority` is the name the server certificate must carry (`glooAgent.relay.authority`).
    """
    return grpc.secure_channel(
        address, grpc.ssl_channel_credentials(root_certificates=root_pem), _named(authority)
    )


def relay_channel(
    address: str, root_pem: bytes, key_pem: bytes, chain_pem: bytes, authority: str
) -> grpc.Channel:
    """A mutual-TLS channel to the relay port, presenting the agent's certificate chain."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=root_pem, private_key=key_pem, certificate_chain=chain_pem
    )
    return grpc.secure_channel(address, creds, _named(authority))


def plaintext_channel(address: str) -> grpc.Channel:
    """An unencrypted channel (insecure mode, demos only)."""
    return grpc.insecure_channel(address, _CLIENT_OPTIONS)


def _named(authority: str) -> list[tuple[str, int | str]]:
    # The address is often an IP or a load balancer's name; the certificate names the
    # Service (`gloo-mesh-mgmt-server.gloo-mesh`), so check against `authority` instead.
    return [
        *_CLIENT_OPTIONS,
        ("grpc.ssl_target_name_override", authority),
        ("grpc.default_authority", authority),
    ]
