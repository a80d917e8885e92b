"""The relay service over real gRPC on loopback: the registration listener (server-only TLS)
and the relay listener (mutual TLS), with certificates from `pki.init`. Identity comes from the
verified client certificate only; the echo handlers report which cluster they were given."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from controller import pki
from controller.relay import credentials, relay_pb2, relay_pb2_grpc
from controller.relay.service import CLUSTER_METADATA
from tests.support.pki import AUTHORITY, Pki, make_pki, push_all, relay_server


@pytest.fixture
def mgmt(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "mgmt")


def rpc_error(call: object) -> grpc.RpcError:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def register(mgmt: Pki, address: str, cluster: str, token: str) -> tuple[bytes, bytes]:
    key, csr = pki.new_key_and_csr(cluster)
    with credentials.registration_channel(address, mgmt.root_pem, AUTHORITY) as channel:
        response = relay_pb2_grpc.RelayStub(channel).Register(
            relay_pb2.RegisterRequest(cluster=cluster, token=token, csr_pem=csr), timeout=10
        )
    assert response.ca_bundle_pem == mgmt.root_pem
    return key, response.cert_chain_pem


def test_register_then_renew_and_stream_over_mutual_tls(mgmt: Pki) -> None:
    with relay_server(mgmt) as running:
        key, chain = register(mgmt, running.registration, "cluster1", mgmt.token)
        assert pki.verified_cluster(chain, mgmt.root_pem, now=datetime.now(UTC)) == "cluster1"
        with credentials.relay_channel(
            running.relay, mgmt.root_pem, key, chain, AUTHORITY
        ) as channel:
            new_key, csr = pki.new_key_and_csr("cluster1")
            renewed = relay_pb2_grpc.RelayStub(channel).Renew(
                relay_pb2.RenewRequest(csr_pem=csr), timeout=10
            )
            assert pki.cluster_of(renewed.cert_chain_pem) == "cluster1"
            assert renewed.cert_chain_pem != chain
            delta = relay_pb2.InputDelta(cluster="cluster1", nonce="n1")
            assert push_all(channel, delta, delta) == ["cluster1/n1", "cluster1/n1"]
            pulled = relay_pb2_grpc.RelayStub(channel).Pull(
                iter([relay_pb2.PullRequest(cluster="cluster1", version="v3")]), timeout=10
            )
            assert [d.version for d in pulled] == ["cluster1/v3"]
        with credentials.relay_channel(
            running.relay, mgmt.root_pem, new_key, renewed.cert_chain_pem, AUTHORITY
        ) as channel:
            assert push_all(channel, relay_pb2.InputDelta(cluster="cluster1", nonce="n2")) == [
                "cluster1/n2"
            ]


def test_refusals_over_the_wire(mgmt: Pki) -> None:
    with relay_server(mgmt) as running:
        wrong = rpc_error(lambda: register(mgmt, running.registration, "cluster1", "x" * 43))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
        assert wrong.details() == "wrong token"
        unknown = rpc_error(lambda: register(mgmt, running.registration, "cluster9", mgmt.token))
        assert unknown.code() == grpc.StatusCode.PERMISSION_DENIED
        assert unknown.details() == "no KubernetesCluster named 'cluster9' in the config"
        bad = rpc_error(lambda: register(mgmt, running.registration, "Cluster_1", mgmt.token))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (bad.details() or "").startswith("cluster 'Cluster_1' breaks the naming rules")
        for error in (wrong, unknown, bad):
            assert mgmt.token not in str(error)


def test_calls_on_the_registration_port_have_no_identity(mgmt: Pki) -> None:
    with (
        relay_server(mgmt) as running,
        credentials.registration_channel(running.registration, mgmt.root_pem, AUTHORITY) as channel,
    ):
        error = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(cluster="cluster1")))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "relay port" in (error.details() or "")
        _, csr = pki.new_key_and_csr("cluster1")
        renew = rpc_error(
            lambda: relay_pb2_grpc.RelayStub(channel).Renew(
                relay_pb2.RenewRequest(csr_pem=csr), timeout=10
            )
        )
        assert renew.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_stream_claiming_another_cluster_is_permission_denied(mgmt: Pki) -> None:
    key, chain = mgmt.client("cluster1")
    with (
        relay_server(mgmt) as running,
        credentials.relay_channel(running.relay, mgmt.root_pem, key, chain, AUTHORITY) as channel,
    ):
        error = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(cluster="cluster2")))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "'cluster2'" in (error.details() or "") and "'cluster1'" in (error.details() or "")
        # Every message is checked, not only the first.
        later = rpc_error(
            lambda: push_all(
                channel,
                relay_pb2.InputDelta(cluster="cluster1", nonce="a"),
                relay_pb2.InputDelta(cluster="cluster2", nonce="b"),
            )
        )
        assert later.code() == grpc.StatusCode.PERMISSION_DENIED
        # Metadata is no identity on the secure relay.
        acks = relay_pb2_grpc.RelayStub(channel).Push(
            iter([relay_pb2.InputDelta(cluster="cluster1", nonce="c")]),
            metadata=((CLUSTER_METADATA, "cluster2"),),
            timeout=10,
        )
        assert [a.nonce for a in acks] == ["cluster1/c"]


def test_an_expired_client_certificate_is_refused_by_the_handshake(mgmt: Pki) -> None:
    key, chain = mgmt.client("cluster1", now=datetime.now(UTC) - timedelta(days=3), days=1)
    with (
        relay_server(mgmt) as running,
        credentials.relay_channel(running.relay, mgmt.root_pem, key, chain, AUTHORITY) as channel,
    ):
        error = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(cluster="cluster1")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_is_refused(mgmt: Pki, tmp_path: Path) -> None:
    stranger = make_pki(tmp_path / "stranger")
    key, chain = stranger.client("cluster1")
    with (
        relay_server(mgmt) as running,
        credentials.relay_channel(running.relay, mgmt.root_pem, key, chain, AUTHORITY) as channel,
    ):
        error = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(cluster="cluster1")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_the_server_certificate_is_no_client_certificate(mgmt: Pki) -> None:
    key = mgmt.secrets.read(pki.SERVER_SECRET, "tls.key")
    chain = mgmt.secrets.read(pki.SERVER_SECRET, "tls.crt")
    with (
        relay_server(mgmt) as running,
        credentials.relay_channel(running.relay, mgmt.root_pem, key, chain, AUTHORITY) as channel,
    ):
        error = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(cluster="localhost")))
        assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)


def test_insecure_mode_believes_the_claimed_cluster() -> None:
    with (
        relay_server(None, insecure=True) as running,
        credentials.plaintext_channel(running.relay) as channel,
    ):
        assert push_all(channel, relay_pb2.InputDelta(cluster="cluster7", nonce="x")) == [
            "cluster7/x"
        ]
        stub = relay_pb2_grpc.RelayStub(channel)
        acks = stub.Push(
            iter([relay_pb2.InputDelta(cluster="west", nonce="y")]),
            metadata=((CLUSTER_METADATA, "west"),),
            timeout=10,
        )
        assert [a.nonce for a in acks] == ["west/y"]
        mismatch = rpc_error(
            lambda: push_all(
                channel,
                relay_pb2.InputDelta(cluster="cluster7", nonce="1"),
                relay_pb2.InputDelta(cluster="cluster8", nonce="2"),
            )
        )
        assert mismatch.code() == grpc.StatusCode.PERMISSION_DENIED
        unnamed = rpc_error(lambda: push_all(channel, relay_pb2.InputDelta(nonce="z")))
        assert unnamed.code() == grpc.StatusCode.UNAUTHENTICATED
        _, csr = pki.new_key_and_csr("cluster7")
        renew = rpc_error(lambda: stub.Renew(relay_pb2.RenewRequest(csr_pem=csr), timeout=10))
        assert renew.code() == grpc.StatusCode.UNAUTHENTICATED
        register = rpc_error(
            lambda: stub.Register(relay_pb2.RegisterRequest(cluster="cluster7"), timeout=10)
        )
        assert register.code() == grpc.StatusCode.FAILED_PRECONDITION


def speak_first(
    cluster: str, requests: Iterator[relay_pb2.InputDelta], context: grpc.ServicerContext
) -> Iterator[relay_pb2.PushAck]:
    """A Push handler that names the kinds to send before reading anything."""
    yield relay_pb2.PushAck(watch=[relay_pb2.GVK(version="v1", kind="Service")])
    for delta in requests:
        yield relay_pb2.PushAck(nonce=f"{cluster}/{delta.nonce}")


def test_the_server_may_speak_first_on_push(mgmt: Pki) -> None:
    key, chain = mgmt.client("cluster2")
    requests: queue.Queue[relay_pb2.InputDelta | None] = queue.Queue()
    with (
        relay_server(mgmt, push=speak_first) as running,
        credentials.relay_channel(running.relay, mgmt.root_pem, key, chain, AUTHORITY) as channel,
    ):
        acks = iter(relay_pb2_grpc.RelayStub(channel).Push(iter(requests.get, None), timeout=10))
        # The agent has sent nothing yet: the identity came from the certificate.
        assert [g.kind for g in next(acks).watch] == ["Service"]
        requests.put(relay_pb2.InputDelta(cluster="cluster2", nonce="full"))
        assert next(acks).nonce == "cluster2/full"
        requests.put(None)
        assert list(acks) == []
