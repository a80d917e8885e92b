"""The relay's PKI: a root CA, the signing CA that issues agent certificates, the server cert.

`gitops pki init` (`controller.commands.pki`) calls `init` to write the management side's
Secrets in the secrets-directory layout (DESIGN.md section 5, gloo-semantics.md section 5.1);
the server's `controller.relay.registration.Registrar` calls `issue_client` for Register and
Renew; the agent (`controller.relay.enroll`) calls `new_key_and_csr`, `cluster_of` and
`not_after`. Uses `cryptography` only: ECDSA P-256 keys, SHA-256 signatures. Time is passed
in, never read here, so certificates for any moment can be made in tests.

Layout written by `init` (every file 0600, directories 0700):

    relay-root-tls-secret/ca.crt                          the root (trust anchor of both sides)
    relay-tls-signing-secret/{tls.key,tls.crt,ca.crt}     signs agent certificates (clientAuth only)
    relay-server-tls-secret/{tls.key,tls.crt,ca.crt}      the relay's server certificate
    relay-identity-token-secret/token                     the bootstrap token agents register with
    root-ca.key                                           generated roots only: keep it offline

`tls.crt` holds a certificate and its issuers up to, not including, the root; `ca.crt` the root.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.secrets import SecretsDir
from gitops import names

ROOT_SECRET = "relay-root-tls-secret"
SIGNING_SECRET = "relay-tls-signing-secret"
SERVER_SECRET = "relay-server-tls-secret"
TOKEN_SECRET = "relay-identity-token-secret"
#: Outside the Secret layout on purpose: nothing mounts it, and it should not stay on disk.
ROOT_KEY_FILE = "root-ca.key"

ROOT_LIFETIME = timedelta(days=3650)
#: Shorter than the root: re-running `init` with the same root replaces it and the server
#: certificate while agents keep their certificates (they chain to the unchanged root).
SIGNING_LIFETIME = timedelta(days=1825)
SERVER_LIFETIME = timedelta(days=730)
#: Certificates start this far in the past, so an agent whose clock lags the server's a
#: little does not reject (or present) a certificate "not yet valid".
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_SERVER_NAMES = ("gloo-mesh-mgmt-server.gloo-mesh", "localhost")


class PkiError(Exception):
    """A key, certificate or CSR is unusable; the message says which and why (no key data)."""


@dataclass(frozen=True)
class Authority:
    """A CA that signs: its key, its certificate, and the chain an issued leaf is sent with."""

    key_pem: bytes
    cert_pem: bytes
    #: The CA certificate and its issuers up to, not including, the root.
    chain_pem: bytes


# -- reading -------------------------------------------------------------------------------


def certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise PkiError("not a PEM certificate") from None
    return certs


def not_after(cert_pem: bytes) -> datetime:
    """When the first certificate in `cert_pem` (a leaf, in a chain) expires (UTC)."""
    return certificates(cert_pem)[0].not_valid_after_utc


def cluster_of(cert_pem: bytes) -> str | None:
    """The cluster a client certificate identifies: its one DNS SAN, which the CN (if any)
    must repeat. None for anything else (no SAN, several, or a name breaking the rules)."""
    cert = certificates(cert_pem)[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns = san.get_values_for_type(x509.DNSName)
    if len(dns) != 1 or names.cluster_name_problem(dns[0]):
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if any(cn.value != dns[0] for cn in cns):
        return None
    return dns[0]


def verified_cluster(chain_pem: bytes, root_pem: bytes, *, now: datetime) -> str | None:
    """The cluster of a client certificate chain if it verifies against `root_pem` at `now`
    as a TLS client certificate (RFC 5280 path validation, clientAuth), else None."""
    try:
        leaf, *intermediates = certificates(chain_pem)
        roots = certificates(root_pem)
    except PkiError:
        return None
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(now)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError:
        return None
    return cluster_of(chain_pem)


def load_private_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise PkiError("not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"unsupported key type {type(key).__name__} (use ECDSA or RSA)")
    return key


def authority(key_pem: bytes, chain_pem: bytes) -> Authority:
    """A signing CA from its key and `tls.crt` (its certificate first), checked to match."""
    key = load_private_key(key_pem)
    chain = certificates(chain_pem)
    _check_ca(chain[0], key, "the signing certificate")
    return Authority(key_pem, chain[0].public_bytes(serialization.Encoding.PEM), chain_pem)


def _check_ca(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, what: str
) -> None:
    if cert.public_key() != key.public_key():
        raise PkiError(f"{what} does not match its private key")
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if not ca:
        raise PkiError(f"{what} is not a CA certificate (basicConstraints CA:TRUE)")


# -- writing -------------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _sign(
    subject: str,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] | None,
    signer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    ca: bool,
    path_length: int | None = None,
    usage: Sequence[x509.ObjectIdentifier] = (),
    dns: Sequence[str] = (),
    now: datetime,
    lifetime: timedelta,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    end = now + lifetime
    if issuer is not None:
        # A certificate outliving its issuer would fail verification once the issuer expires.
        end = min(end, issuer[0].not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        ski = issuer[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return builder.sign(signer_key, hashes.SHA256())


def issue_client(
    signer: Authority, csr_pem: bytes, cluster: str, *, lifetime: timedelta, now: datetime
) -> bytes:
    """A client certificate for `cluster` (leaf, then the signer's chain) from an agent's CSR.

    Only the CSR's public key is used: the identity (DNS SAN and CN) is `cluster`, whatever
    names or extensions the CSR asks for. The CSR must be signed by its own key, which proves
    the caller holds the private key it wants certified. Raises PkiError.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise PkiError("the CSR is not a PEM certificate signing request") from None
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature, x509.UnsupportedGeneralNameType):
        valid = False
    if not valid:
        raise PkiError("the CSR's signature does not verify")
    public_key = csr.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise PkiError(f"the CSR's key uses curve {public_key.curve.name} (use P-256/P-384)")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise PkiError(f"the CSR's RSA key has {public_key.key_size} bits (at least 2048)")
    else:
        raise PkiError(f"the CSR's key type {type(public_key).__name__} is not ECDSA or RSA")
    signer_key = load_private_key(signer.key_pem)
    [signer_cert] = certificates(signer.cert_pem)
    leaf = _sign(
        cluster,
        public_key,
        (signer_cert, signer_key),
        signer_key,
        ca=False,
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
        dns=[cluster],
        now=now,
        lifetime=lifetime,
    )
    return _pem(leaf) + signer.chain_pem


def new_key_and_csr(cluster: str) -> tuple[bytes, bytes]:
    """A fresh P-256 key and a CSR naming `cluster` (the agent's side of Register/Renew)."""
    key = _new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cluster)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cluster)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def init(
    out: Path,
    *,
    clusters: Sequence[str] = (),
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    root: tuple[bytes, bytes] | None = None,
    now: datetime,
    overwrite: bool = False,
) -> None:
    """Write the management side's relay Secrets under `out` (see the module docstring).

    `root` is `(key_pem, cert_pem)` of your own CA; without it a root is generated and its
    key written to `out/root-ca.key`. `clusters` are only checked against the naming rules:
    the clusters themselves are KubernetesClusters in Git. Refuses to replace an existing
    PKI unless `overwrite` (every agent would have to re-register). Raises PkiError.
    """
    problems = [p for c in clusters if (p := names.cluster_name_problem(c))]
    if problems:
        raise PkiError("; ".join(problems))
    if not server_names:
        raise PkiError("the server certificate needs at least one name")
    store = SecretsDir(out)
    existing = [f"{s}/{k}" for s, k in _LAYOUT if store.has(s, k)]
    if existing and not overwrite:
        raise PkiError(
            f"{out} already holds a relay PKI ({existing[0]}); pass overwrite to replace"
        )
    now = now.astimezone(UTC)
    if root is None:
        root_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = _new_key()
        root_cert = _sign(
            "mesh-gitops relay root CA",
            root_key.public_key(),
            None,
            root_key,
            ca=True,
            path_length=1,
            now=now,
            lifetime=ROOT_LIFETIME,
        )
        key_file = out / ROOT_KEY_FILE
        out.mkdir(parents=True, exist_ok=True)
        key_file.unlink(missing_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_bytes(_key_pem(root_key))
    else:
        root_key = load_private_key(root[0])
        [root_cert, *_] = certificates(root[1])
        _check_ca(root_cert, root_key, "the root certificate")
        if root_cert.not_valid_after_utc <= now + SIGNING_LIFETIME / 10:
            raise PkiError(f"the root certificate expires on {root_cert.not_valid_after_utc}")
    root_pem = _pem(root_cert)

    signing_key = _new_key()
    signing_cert = _sign(
        "mesh-gitops relay signing CA",
        signing_key.public_key(),
        (root_cert, root_key),
        root_key,
        ca=True,
        path_length=0,
        # Limits what a stolen signing key can mint: client certificates, no server ones.
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
        now=now,
        lifetime=SIGNING_LIFETIME,
    )
    server_key = _new_key()
    server_cert = _sign(
        server_names[0],
        server_key.public_key(),
        (root_cert, root_key),
        root_key,
        ca=False,
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        dns=server_names,
        now=now,
        lifetime=SERVER_LIFETIME,
    )
    store.write(ROOT_SECRET, "ca.crt", root_pem)
    for secret, key, cert in (
        (SIGNING_SECRET, signing_key, signing_cert),
        (SERVER_SECRET, server_key, server_cert),
    ):
        store.write(secret, "tls.key", _key_pem(key))
        store.write(secret, "tls.crt", _pem(cert))
        store.write(secret, "ca.crt", root_pem)
    store.write(TOKEN_SECRET, "token", _random.token_urlsafe(32).encode())


#: Every (Secret, key) `init` writes.
_LAYOUT = (
    (ROOT_SECRET, "ca.crt"),
    (SIGNING_SECRET, "tls.key"),
    (SIGNING_SECRET, "tls.crt"),
    (SIGNING_SECRET, "ca.crt"),
    (SERVER_SECRET, "tls.key"),
    (SERVER_SECRET, "tls.crt"),
    (SERVER_SECRET, "ca.crt"),
    (TOKEN_SECRET, "token"),
)
