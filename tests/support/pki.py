"""Relay test support: a real PKI from `controller.pki.init`, and a running relay server.

Used by tests/controller/relay. Certificates are made for the real clock (TLS checks their
validity against it); `relay_server` serves `RelayService` with echoing stream handlers on
127.0.0.1 (free ports) and stops the server when the `with` block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from controller import pki
from controller.relay import credentials, relay_pb2, relay_pb2_grpc
from controller.relay.registration import Registrar
from controller.relay.service import PullHandler, PushHandler, RelayService
from controller.secrets import SecretsDir
from gitops.helm.models import AgentRelay, MgmtRelay

AUTHORITY = "gloo-mesh-mgmt-server.gloo-mesh"
KNOWN_CLUSTERS = frozenset({"cluster1", "cluster2"})


@dataclass(frozen=True)
class Pki:
    """A management-side secrets directory written by `pki.init`, and what it holds."""

    secrets: SecretsDir
    root_pem: bytes
    signer: pki.Authority
    token: str

    def registrar(self, known: frozenset[str] = KNOWN_CLUSTERS) -> Registrar:
        return Registrar(
            token=self.token,
            signer=self.signer,
            root_pem=self.root_pem,
            lifetime=timedelta(days=30),
            known_clusters=lambda: known,
            clock=lambda: datetime.now(UTC),
        )

    def client(
        self, cluster: str, *, now: datetime | None = None, days: int = 30
    ) -> tuple[bytes, bytes]:
        """(key, chain) of a client certificate for `cluster`, issued directly."""
        key, csr = pki.new_key_and_csr(cluster)
        chain = pki.issue_client(
            self.signer,
            csr,
            cluster,
            lifetime=timedelta(days=days),
            now=now or datetime.now(UTC),
        )
        return key, chain


def make_pki(out: Path) -> Pki:
    pki.init(out, clusters=sorted(KNOWN_CLUSTERS), now=datetime.now(UTC))
    secrets = SecretsDir(out)
    signing = pki.SIGNING_SECRET
    return Pki(
        secrets=secrets,
        root_pem=secrets.read(pki.ROOT_SECRET, "ca.crt"),
        signer=pki.authority(secrets.read(signing, "tls.key"), secrets.read(signing, "tls.crt")),
        token=secrets.read_text(pki.TOKEN_SECRET, "token"),
    )


def agent_secrets(mgmt: Pki, out: Path) -> SecretsDir:
    """A workload cluster's secrets directory: the root CA and the token, copied over."""
    agent = SecretsDir(out)
    agent.write(pki.ROOT_SECRET, "ca.crt", mgmt.root_pem)
    agent.write(pki.TOKEN_SECRET, "token", mgmt.token.encode())
    return agent


def echo_push(
    cluster: str, requests: Iterator[relay_pb2.InputDelta], context: grpc.ServicerContext
) -> Iterator[relay_pb2.PushAck]:
    """Acks each delta with `<cluster the service identified>/<nonce>`."""
    for delta in requests:
        yield relay_pb2.PushAck(nonce=f"{cluster}/{delta.nonce}")


def echo_pull(
    cluster: str, requests: Iterator[relay_pb2.PullRequest], context: grpc.ServicerContext
) -> Iterator[relay_pb2.OutputDelta]:
    """Answers each request with version `<cluster the service identified>/<version>`."""
    for request in requests:
        yield relay_pb2.OutputDelta(version=f"{cluster}/{request.version}")


@dataclass(frozen=True)
class Running:
    relay: str  # 127.0.0.1:<port> of the mutual-TLS listener
    registration: str


@contextmanager
def relay_server(
    mgmt: Pki | None,
    *,
    insecure: bool = False,
    push: PushHandler = echo_push,
    pull: PullHandler = echo_pull,
) -> Iterator[Running]:
    """A running relay server: TLS from `mgmt`'s Secrets, or plaintext if `insecure`."""
    creds = (
        None
        if insecure or mgmt is None
        else credentials.server_credentials(mgmt.secrets, MgmtRelay())
    )
    service = RelayService(
        None if mgmt is None else mgmt.registrar(), push, pull, insecure=insecure
    )
    server, relay_port, registration_port = credentials.start_server(
        service,
        relay_address="127.0.0.1:0",
        registration_address="127.0.0.1:0",
        credentials=creds,
        max_workers=8,
    )
    try:
        yield Running(f"127.0.0.1:{relay_port}", f"127.0.0.1:{registration_port}")
    finally:
        server.stop(None).wait()


def push_all(channel: grpc.Channel, *deltas: relay_pb2.InputDelta) -> list[str]:
    """Send `deltas` on one Push stream; the nonces of the acks."""
    acks = relay_pb2_grpc.RelayStub(channel).Push(iter(deltas), timeout=10)
    return [ack.nonce for ack in acks]


AGENT_RELAY = AgentRelay(server_address="127.0.0.1:9900")
