"""Clients from the Helm values: retries, auth, TLS and pool settings, on real redis-servers."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import tenacity
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.secrets import SecretsDir
from controller.store import CacheLost, Store, StoreError, connect, retrying_for
from gitops.helm.models import Redis
from tests.support import redis_server as redis_servers
from tests.support.redis_server import RedisServer, running

redis_server = redis_servers.redis_server
PASSWORD = "s3cret-pa55"


def values(address: str, **sections: Any) -> Redis:
    return Redis.model_validate({"address": address, **sections})


@pytest.fixture
def opened() -> Iterator[list[redis.Redis]]:
    clients: list[redis.Redis] = []
    yield clients
    for client in clients:
        client.close()


def client_for(
    opened: list[redis.Redis], settings: Redis, secrets: SecretsDir | None
) -> redis.Redis:
    client = connect(settings, secrets)
    opened.append(client)
    return client


def test_retry_policy_from_values() -> None:
    none = retrying_for(values("h:1", connection={"maxRetries": -1}).connection)
    three = retrying_for(values("h:1").connection)

    assert isinstance(none.stop, tenacity.stop_after_attempt)
    assert isinstance(three.stop, tenacity.stop_after_attempt)
    assert isinstance(three.wait, tenacity.wait_exponential_jitter)
    assert (none.stop.max_attempt_number, three.stop.max_attempt_number) == (1, 4)
    assert three.wait.multiplier == pytest.approx(0.008)
    assert three.wait.max == pytest.approx(0.512)


def test_redis_restarted_within_the_backoff_is_retried(
    redis_server: RedisServer, opened: list[redis.Redis]
) -> None:
    settings = values(redis_server.address, connection={"maxRetries": 3, "minRetryBackoff": "10ms"})
    retrying = retrying_for(settings.connection)
    # The restart happens in the first backoff sleep: deterministic, no timing involved.
    restart = retrying.copy(before_sleep=lambda state: redis_server.restart())
    store = Store(client_for(opened, settings, None), retrying=restart)
    store.generation()  # a pooled connection exists, and will break
    redis_server.kill()

    generation, created = store.ensure_generation()

    assert created and generation
    assert redis_server.starts == 2


def test_without_retries_a_dead_redis_is_a_store_error(
    redis_server: RedisServer, opened: list[redis.Redis]
) -> None:
    settings = values(redis_server.address, connection={"maxRetries": 0})
    store = Store(client_for(opened, settings, None), retrying=retrying_for(settings.connection))
    store.ensure_generation()
    redis_server.kill()

    with pytest.raises(StoreError, match=r"ConnectionError after 1 attempt") as caught:
        store.inputs("c1")
    assert not isinstance(caught.value, CacheLost)


def test_cache_lost_is_not_retried(redis_server: RedisServer, opened: list[redis.Redis]) -> None:
    settings = values(redis_server.address, connection={"maxRetries": 5})
    sleeps: list[int] = []
    retrying = retrying_for(settings.connection).copy(
        before_sleep=lambda state: sleeps.append(state.attempt_number)
    )
    store = Store(client_for(opened, settings, None), retrying=retrying)
    store.ensure_generation()
    redis_server.restart()

    with pytest.raises(CacheLost):
        store.replace_inputs("c1", [], now=1)
    # The pool silently reopens a connection that broke while idle; the lost cache is
    # raised at once, never slept on.
    assert sleeps == []


def _write_secret(root: Path, secret: str, data: dict[str, str]) -> SecretsDir:
    secrets = SecretsDir(root)
    for key, value in data.items():
        secrets.write(secret, key, value.encode())
    return secrets


def test_auth_with_an_acl_user(tmp_path: Path, opened: list[redis.Redis]) -> None:
    acl = ["--user", "default", "off", "--user", "mesh", "on", f">{PASSWORD}", "~*", "&*", "+@all"]
    for server in running(tmp_path / "redis", args=acl):
        auth = {"enabled": True, "secretName": "redis-auth"}
        good = _write_secret(
            tmp_path / "good", "redis-auth", {"username": "mesh", "password": PASSWORD}
        )
        bad = _write_secret(
            tmp_path / "bad", "redis-auth", {"username": "mesh", "password": "nope"}
        )

        store = Store(client_for(opened, values(server.address, auth=auth), good))
        assert store.ensure_generation()[1]

        refused = Store(client_for(opened, values(server.address, auth=auth), bad))
        with pytest.raises(StoreError, match="after 1 attempt") as caught:
            refused.generation()
        assert PASSWORD not in str(caught.value) and "nope" not in str(caught.value)


def test_auth_with_requirepass_and_no_username_key(
    tmp_path: Path, opened: list[redis.Redis]
) -> None:
    for server in running(tmp_path / "redis", args=["--requirepass", PASSWORD]):
        secrets = _write_secret(tmp_path / "s", "pw", {"pass": PASSWORD})
        auth = {"enabled": True, "secretName": "pw", "passwordKey": "pass"}

        assert (
            Store(client_for(opened, values(server.address, auth=auth), secrets)).generation()
            is None
        )


def test_auth_settings_that_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="secretName is not set"):
        connect(values("h:1", auth={"enabled": True}), None)
    with pytest.raises(StoreError, match="Secret redis-auth has no key password"):
        connect(
            values("h:1", auth={"enabled": True, "secretName": "redis-auth"}), SecretsDir(tmp_path)
        )
    with pytest.raises(StoreError, match=r"redis\.address is not set"):
        connect(Redis(), None)


def _pki(root: Path) -> tuple[str, str]:
    """A CA and a server certificate for 127.0.0.1 under `root`; returns the CA PEM and
    an unrelated CA's PEM."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    pem = serialization.Encoding.PEM
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = cert("test-ca", ca_key, "test-ca", ca_key, True)
    other = cert("other-ca", other_key, "other-ca", other_key, True)
    server = cert("redis", server_key, "test-ca", ca_key, False)
    root.mkdir(parents=True)
    (root / "ca.crt").write_bytes(ca.public_bytes(pem))
    (root / "server.crt").write_bytes(server.public_bytes(pem))
    (root / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca.public_bytes(pem).decode(), other.public_bytes(pem).decode()


def test_tls_verified_with_the_ca_from_the_secret(
    tmp_path: Path, opened: list[redis.Redis]
) -> None:
    pki = tmp_path / "pki"
    ca_pem, other_pem = _pki(pki)
    tls = [
        "--tls-cert-file", str(pki / "server.crt"),
        "--tls-key-file", str(pki / "server.key"),
        "--tls-ca-cert-file", str(pki / "ca.crt"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    for server in running(tmp_path / "redis", tls=True, args=tls):
        certs = {"enabled": True, "secretName": "redis-ca"}
        good = _write_secret(tmp_path / "good", "redis-ca", {"ca.crt": ca_pem})
        wrong = _write_secret(tmp_path / "wrong", "redis-ca", {"ca.crt": other_pem})
        no_retry = {"maxRetries": 0}

        store = Store(client_for(opened, values(server.address, certs=certs), good))
        assert store.ensure_generation()[1]

        untrusted = values(server.address, certs=certs, connection=no_retry)
        with pytest.raises(StoreError, match="certificate verify failed"):
            Store(client_for(opened, untrusted, wrong)).generation()
        plain = values(server.address, connection=no_retry)
        with pytest.raises(StoreError):
            Store(client_for(opened, plain, None)).generation()


def _pooled_ids(client: redis.Redis, times: int) -> set[int]:
    return {int(client.client_id()) for _ in range(times)}


def test_connection_age_and_idle_limits(
    redis_server: RedisServer, opened: list[redis.Redis]
) -> None:
    default = client_for(opened, values(redis_server.address), None)
    aged = client_for(opened, values(redis_server.address, connection={"maxConnAge": "1ns"}), None)
    idle = client_for(opened, values(redis_server.address, connection={"idleTimeout": "1ns"}), None)

    assert len(_pooled_ids(default, 3)) == 1  # one connection, reused
    assert len(_pooled_ids(aged, 3)) == 3  # every take found it too old: reopened
    assert len(_pooled_ids(idle, 3)) == 3  # every take found it idle too long: reopened


@pytest.mark.parametrize(("fifo", "expected"), [(False, "newest"), (True, "oldest")])
def test_pool_order(
    redis_server: RedisServer, opened: list[redis.Redis], fifo: bool, expected: str
) -> None:
    settings = values(redis_server.address, connection={"poolFifo": fifo, "poolSize": 4})
    pool = client_for(opened, settings, None).connection_pool
    first, second = pool.get_connection(), pool.get_connection()
    pool.release(first)
    pool.release(second)

    taken = pool.get_connection()
    pool.release(taken)

    assert taken is (first if expected == "oldest" else second)
    assert pool.max_connections == 4
