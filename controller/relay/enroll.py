"""The agent's side of registration: get a client certificate, keep it, renew it in time.

Called by `gitops agent` before it opens its streams (gloo-semantics.md section 5.1):
`client_identity` says whether the stored certificate is still usable; if not, `register`
(over `credentials.registration_channel`, with the bootstrap token) gets one and stores it in
`relay-client-tls-secret`; later `renew_at` says when to `renew` (over the mutual-TLS relay
channel, no token needed, so the token Secret may be deleted after the first registration).

Failures are classified by what the agent should do next (STYLE rule 4):
`EnrollmentRefused` - the server said no (wrong token, cluster not in the config, bad name);
retrying soon will not help, an operator has to act; `EnrollmentUnavailable` - the server
could not be reached or failed; back off and retry.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import grpc

from controller import pki
from controller.relay import relay_pb2, relay_pb2_grpc
from controller.secrets import SecretsDir
from gitops.helm.models import AgentRelay

#: Seconds a Register/Renew call may take; signing is fast, so this is all network.
CALL_TIMEOUT = 30.0
#: Answers that will not change by retrying the same request.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


class EnrollmentError(grpc.RpcError):
    """Register or Renew did not produce a certificate.

    A `grpc.RpcError` with the call's `code()` and `details()`, so a caller that handles
    RPC failures generically handles these too; the subclasses say what to do next.
    """

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self._code = code
        self._message = message

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message


class EnrollmentRefused(EnrollmentError):
    """The server refused (or answered nonsense): wait for an operator, retry rarely."""


class EnrollmentUnavailable(EnrollmentError):
    """The server was unreachable or failed: back off and retry."""


def client_identity(
    secrets: SecretsDir,
    agent_relay: AgentRelay,
    *,
    cluster: str | None = None,
    now: datetime | None = None,
) -> tuple[bytes, bytes] | None:
    """(key, chain) from `relay-client-tls-secret`, if it is there, matches its key, verifies
    against the relay root CA now (not expired, same root as configured) and, given
    `cluster`, names it. None means: register."""
    secret = agent_relay.client_tls_secret.name
    if not (secrets.has(secret, "tls.key") and secrets.has(secret, "tls.crt")):
        return None
    key_pem, chain_pem = secrets.read(secret, "tls.key"), secrets.read(secret, "tls.crt")
    root_secret = agent_relay.root_tls_secret.name
    root_pem = secrets.read(root_secret if secrets.has(root_secret, "ca.crt") else secret, "ca.crt")
    when = now or datetime.now(UTC)
    named = pki.verified_cluster(chain_pem, root_pem, now=when)
    if named is None or (cluster is not None and named != cluster):
        return None
    try:
        matches = _matches(key_pem, chain_pem)
    except pki.PkiError:
        return None
    return (key_pem, chain_pem) if matches else None


def register(
    channel: grpc.Channel, secrets: SecretsDir, agent_relay: AgentRelay, cluster: str
) -> tuple[bytes, bytes]:
    """Register `cluster` with the bootstrap token; store and return (key, chain).

    Raises EnrollmentRefused, EnrollmentUnavailable, or SecretError (no token Secret)."""
    token = secrets.read_text(agent_relay.token_secret.name, agent_relay.token_secret.key)
    key_pem, csr_pem = pki.new_key_and_csr(cluster)
    request = relay_pb2.RegisterRequest(cluster=cluster, token=token, csr_pem=csr_pem)
    try:
        response = relay_pb2_grpc.RelayStub(channel).Register(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        raise _classified("Register", exc) from None
    return _store(secrets, agent_relay, cluster, key_pem, response)


def renew(
    channel: grpc.Channel, secrets: SecretsDir, agent_relay: AgentRelay, cluster: str
) -> tuple[bytes, bytes]:
    """A fresh certificate over the mutual-TLS `channel` (the current certificate is the
    credential); stored and returned as (key, chain). Raises like `register`."""
    key_pem, csr_pem = pki.new_key_and_csr(cluster)
    try:
        response = relay_pb2_grpc.RelayStub(channel).Renew(
            relay_pb2.RenewRequest(csr_pem=csr_pem), timeout=CALL_TIMEOUT
        )
    except grpc.RpcError as exc:
        raise _classified("Renew", exc) from None
    return _store(secrets, agent_relay, cluster, key_pem, response)


def renew_at(
    chain_pem: bytes,
    ratio: float,
    *,
    jitter: float,
    now: datetime,
    rng: random.Random | None = None,
) -> datetime:
    """When to renew the certificate: `ratio` of its lifetime before it expires, and a
    further random `jitter` fraction of the lifetime earlier, so agents registered together
    do not all renew in the same second. Never before `now` (a past time means renew now).
    """
    leaf = pki.certificates(chain_pem)[0]
    # Our certificates start CLOCK_SKEW before they were issued (for clocks behind the
    # server's); the lifetime the ratio applies to is the one asked for.
    span = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    lifetime = span - pki.CLOCK_SKEW if span > pki.CLOCK_SKEW else span
    spread = (rng or random.Random()).uniform(0, jitter)
    return max(now, leaf.not_valid_after_utc - lifetime * (ratio + spread))


def _matches(key_pem: bytes, chain_pem: bytes) -> bool:
    key = pki.load_private_key(key_pem)
    return bool(pki.certificates(chain_pem)[0].public_key() == key.public_key())


def _store(
    secrets: SecretsDir,
    agent_relay: AgentRelay,
    cluster: str,
    key_pem: bytes,
    response: relay_pb2.RegisterResponse | relay_pb2.RenewResponse,
) -> tuple[bytes, bytes]:
    chain_pem, root_pem = response.cert_chain_pem, response.ca_bundle_pem
    try:
        usable = _matches(key_pem, chain_pem) and pki.cluster_of(chain_pem) == cluster
    except pki.PkiError:
        usable = False
    if not usable or not root_pem:
        # Storing it would replace a working certificate with one that cannot work.
        raise EnrollmentRefused(
            f"the server's certificate for cluster {cluster!r} does not match the request",
            grpc.StatusCode.INTERNAL,
        )
    secret = agent_relay.client_tls_secret.name
    secrets.write(secret, "tls.crt", chain_pem)
    secrets.write(secret, "ca.crt", root_pem)
    secrets.write(secret, "tls.key", key_pem)
    return key_pem, chain_pem


def _classified(rpc: str, exc: grpc.RpcError) -> EnrollmentError:
    code = exc.code()
    message = f"{rpc} failed: {code.name}: {exc.details() or 'no details'}"
    if code in _REFUSALS:
        return EnrollmentRefused(message, code)
    return EnrollmentUnavailable(message, code)
