"""Register and Renew on the server: who may get a certificate, and for which cluster.

Called by `controller.relay.service.RelayService` (Register on either listener, Renew on the
mutual-TLS one); built once by `gitops serve` with `registrar_from_secrets`. The rules are
DESIGN.md section 5 and gloo-semantics.md section 5.1:

- Register needs the bootstrap token (compared in constant time). The token never appears
  in a log line, an exception or a status detail.
- The cluster must follow the naming rules and be a KubernetesCluster in the config
  (`known_clusters`, read on every call, so a cluster added in Git can register at once and
  one removed can no longer renew).
- The issued certificate's only identity is the cluster name (`controller.pki.issue_client`),
  whatever the CSR asks for. Renew issues for the identity of the caller's certificate.

Refusals raise `RegistrationRefused(code, reason)`; the service turns them into the gRPC
status (docs/relay.md lists the codes).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import grpc

from controller import pki
from controller.secrets import SecretsDir
from gitops import names
from gitops.helm.models import MgmtRelay

log = logging.getLogger(__name__)

#: Names longer than this are cut in messages: the name comes from an unauthenticated peer.
_SHOWN = 80


class RegistrationRefused(Exception):
    """A Register or Renew the server will not grant; `code` is the gRPC status to answer."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _shown(name: str) -> str:
    return repr(name if len(name) <= _SHOWN else name[:_SHOWN] + "...")


def check_cluster_name(name: str) -> str | None:
    """None if `name` is a valid cluster name, else why not (for a refusal's reason)."""
    if len(name) > 63:  # checked here so a huge name is not repeated in the reason
        problem: str | None = f"it is {len(name)} characters long (at most 63)"
    else:
        problem = names.cluster_name_problem(name)
    if problem is None:
        return None
    return (
        f"cluster {_shown(name)} breaks the naming rules: {problem} (lowercase letters, "
        "digits and '-', starting with a letter, at most 63 characters)"
    )


class Registrar:
    """Checks Register/Renew requests and signs the agent's CSR with the signing CA."""

    def __init__(
        self,
        *,
        token: str,
        signer: pki.Authority,
        root_pem: bytes,
        lifetime: timedelta,
        known_clusters: Callable[[], Collection[str]],
        clock: Callable[[], datetime],
    ) -> None:
        if not token:
            # An empty token would let anyone who sends an empty one register.
            raise ValueError("the registration token is empty")
        self._token = token.encode()
        self._signer = signer
        self._root_pem = root_pem
        self._lifetime = lifetime
        self._known_clusters = known_clusters
        self._clock = clock

    def register(self, cluster: str, token: str, csr_pem: bytes) -> tuple[bytes, bytes]:
        """(certificate chain, root CA) for `cluster`, if the token is right. Raises
        RegistrationRefused."""
        # Token first: an unauthenticated caller learns nothing about which clusters exist.
        if not hmac.compare_digest(token.encode(), self._token):
            log.warning("Register for cluster %s refused: wrong token", _shown(cluster))
            raise RegistrationRefused(grpc.StatusCode.UNAUTHENTICATED, "wrong token")
        return self._issue("Register", cluster, csr_pem)

    def renew(self, cluster: str, csr_pem: bytes) -> tuple[bytes, bytes]:
        """A fresh certificate for `cluster`, the identity of the caller's valid certificate."""
        return self._issue("Renew", cluster, csr_pem)

    def _issue(self, verb: str, cluster: str, csr_pem: bytes) -> tuple[bytes, bytes]:
        if reason := check_cluster_name(cluster):
            self._refuse(verb, cluster, grpc.StatusCode.INVALID_ARGUMENT, reason)
        if cluster not in self._known_clusters():
            self._refuse(
                verb,
                cluster,
                grpc.StatusCode.PERMISSION_DENIED,
                f"no KubernetesCluster named {cluster!r} in the config",
            )
        try:
            chain = pki.issue_client(
                self._signer, csr_pem, cluster, lifetime=self._lifetime, now=self._clock()
            )
        except pki.PkiError as exc:
            self._refuse(verb, cluster, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.info(
            "%s: issued a certificate for cluster %s, valid until %s",
            verb,
            cluster,
            pki.not_after(chain).isoformat(),
        )
        return chain, self._root_pem

    def _refuse(self, verb: str, cluster: str, code: grpc.StatusCode, reason: str) -> None:
        log.warning("%s for cluster %s refused: %s", verb, _shown(cluster), reason)
        raise RegistrationRefused(code, reason)


def registrar_from_secrets(
    secrets: SecretsDir,
    relay: MgmtRelay,
    *,
    lifetime: timedelta,
    known_clusters: Callable[[], Collection[str]],
    clock: Callable[[], datetime],
) -> Registrar | None:
    """The server's Registrar from its mounted Secrets; None with `disableCa` (agents bring
    their own certificates, so there is nothing to sign and no token). Raises SecretError
    or PkiError naming the Secret that is missing or unusable."""
    if relay.disable_ca:
        return None
    signing = relay.signing_tls_secret.name
    try:
        signer = pki.authority(secrets.read(signing, "tls.key"), secrets.read(signing, "tls.crt"))
    except pki.PkiError as exc:
        raise pki.PkiError(f"Secret {signing}: {exc}") from None
    token_secret = relay.token_secret
    token = secrets.read_text(token_secret.name, token_secret.key)
    if not token:
        raise pki.PkiError(f"Secret {token_secret.name} key {token_secret.key} is empty")
    return Registrar(
        token=token,
        signer=signer,
        root_pem=secrets.read(pki.ROOT_SECRET, "ca.crt"),
        lifetime=lifetime,
        known_clusters=known_clusters,
        clock=clock,
    )
