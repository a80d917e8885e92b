"""The agent side (`controller.relay.enroll`) against a real relay server: register with the
token, keep the certificate in `relay-client-tls-secret`, renew over mutual TLS, and know when
a stored certificate can no longer be used."""

from __future__ import annotations

import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from controller import pki
from controller.relay import credentials, enroll
from controller.secrets import SecretError
from tests.support.pki import AGENT_RELAY, AUTHORITY, Pki, agent_secrets, make_pki, relay_server

CLIENT = "relay-client-tls-secret"


@pytest.fixture
def mgmt(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "mgmt")


def test_register_stores_a_usable_identity_and_renew_replaces_it(mgmt: Pki, tmp_path: Path) -> None:
    agent = agent_secrets(mgmt, tmp_path / "agent")
    assert enroll.client_identity(agent, AGENT_RELAY) is None
    with relay_server(mgmt) as running:
        with credentials.registration_channel(
            running.registration, mgmt.root_pem, AUTHORITY
        ) as channel:
            key, chain = enroll.register(channel, agent, AGENT_RELAY, "cluster1")
        for name in ("tls.key", "tls.crt", "ca.crt"):
            path = tmp_path / "agent" / CLIENT / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert agent.read(CLIENT, "ca.crt") == mgmt.root_pem
        assert enroll.client_identity(agent, AGENT_RELAY) == (key, chain)
        assert enroll.client_identity(agent, AGENT_RELAY, cluster="cluster2") is None

        with credentials.relay_channel(
            running.relay, mgmt.root_pem, key, chain, AUTHORITY
        ) as channel:
            new_key, new_chain = enroll.renew(channel, agent, AGENT_RELAY, "cluster1")
    assert new_key != key and pki.cluster_of(new_chain) == "cluster1"
    assert enroll.client_identity(agent, AGENT_RELAY) == (new_key, new_chain)


def test_refusals_are_classified_and_keep_the_old_certificate(mgmt: Pki, tmp_path: Path) -> None:
    agent = agent_secrets(mgmt, tmp_path / "agent")
    agent.write(pki.TOKEN_SECRET, "token", b"not-the-token\n")
    with (
        relay_server(mgmt) as running,
        credentials.registration_channel(running.registration, mgmt.root_pem, AUTHORITY) as channel,
    ):
        with pytest.raises(enroll.EnrollmentRefused) as info:
            enroll.register(channel, agent, AGENT_RELAY, "cluster1")
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert isinstance(info.value, grpc.RpcError)
        assert "wrong token" in str(info.value) and "not-the-token" not in str(info.value)
        assert not agent.has(CLIENT, "tls.crt")
        (tmp_path / "agent" / pki.TOKEN_SECRET / "token").unlink()
        with pytest.raises(SecretError):
            enroll.register(channel, agent, AGENT_RELAY, "cluster1")


def test_an_unreachable_server_is_unavailable(mgmt: Pki, tmp_path: Path) -> None:
    agent = agent_secrets(mgmt, tmp_path / "agent")
    with relay_server(mgmt) as running:
        address = running.registration
    # The server has stopped: nothing listens there any more.
    with (
        credentials.registration_channel(address, mgmt.root_pem, AUTHORITY) as channel,
        pytest.raises(enroll.EnrollmentUnavailable) as info,
    ):
        enroll.register(channel, agent, AGENT_RELAY, "cluster1")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_stored_identity_is_unusable_when_expired_mismatched_or_from_another_root(
    mgmt: Pki, tmp_path: Path
) -> None:
    agent = agent_secrets(mgmt, tmp_path / "agent")
    key, chain = mgmt.client("cluster1", days=10)
    agent.write(CLIENT, "tls.key", key)
    agent.write(CLIENT, "tls.crt", chain)
    now = datetime.now(UTC)
    assert enroll.client_identity(agent, AGENT_RELAY, now=now) == (key, chain)
    assert enroll.client_identity(agent, AGENT_RELAY, now=now + timedelta(days=11)) is None

    other_key, _ = mgmt.client("cluster1")
    agent.write(CLIENT, "tls.key", other_key)
    assert enroll.client_identity(agent, AGENT_RELAY, now=now) is None

    agent.write(CLIENT, "tls.key", key)
    stranger = make_pki(tmp_path / "stranger")
    agent.write(pki.ROOT_SECRET, "ca.crt", stranger.root_pem)
    assert enroll.client_identity(agent, AGENT_RELAY, now=now) is None


def test_renew_at_is_the_grace_period_before_expiry_minus_jitter(mgmt: Pki) -> None:
    issued = datetime(2031, 1, 1, tzinfo=UTC)
    _, chain = mgmt.client("cluster1", now=issued, days=100)
    expires = pki.not_after(chain)
    # The ratio applies to the lifetime asked for, not to the CLOCK_SKEW backdating.
    lifetime = expires - issued
    assert enroll.renew_at(chain, 0.1, jitter=0.0, now=issued) == expires - lifetime * 0.1
    times = {
        enroll.renew_at(chain, 0.1, jitter=0.05, now=issued, rng=random.Random(seed))
        for seed in range(20)
    }
    assert len(times) > 1
    assert all(expires - lifetime * 0.15 <= t <= expires - lifetime * 0.1 for t in times)
    # Past the renewal time: renew now.
    late = expires - timedelta(hours=1)
    assert enroll.renew_at(chain, 0.1, jitter=0.05, now=late) == late
    # A short lifetime is renewed at its grace point too, not at once.
    _, csr = pki.new_key_and_csr("cluster1")
    short = pki.issue_client(
        mgmt.signer, csr, "cluster1", lifetime=timedelta(seconds=4), now=issued
    )
    assert enroll.renew_at(short, 0.5, jitter=0.0, now=issued) == issued + timedelta(seconds=2)
