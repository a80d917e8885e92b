"""`controller.pki` and `gitops pki init`: layout, permissions, chains that verify, bring your
own root, and client certificates whose identity is the cluster whatever the CSR asks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller import pki
from controller.commands.pki import pki_group
from tests.support.pki import make_pki

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
LAYOUT = {
    "relay-root-tls-secret/ca.crt",
    "relay-tls-signing-secret/tls.key",
    "relay-tls-signing-secret/tls.crt",
    "relay-tls-signing-secret/ca.crt",
    "relay-server-tls-secret/tls.key",
    "relay-server-tls-secret/tls.crt",
    "relay-server-tls-secret/ca.crt",
    "relay-identity-token-secret/token",
}


def files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_init_writes_the_layout_owner_only(tmp_path: Path) -> None:
    pki.init(tmp_path, now=NOW)
    assert files(tmp_path) == LAYOUT | {"root-ca.key"}
    for name in files(tmp_path):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    token = (tmp_path / "relay-identity-token-secret/token").read_text()
    assert len(token) >= 43 and token.strip() == token
    root = (tmp_path / "relay-root-tls-secret/ca.crt").read_bytes()
    for secret in ("relay-tls-signing-secret", "relay-server-tls-secret"):
        assert (tmp_path / secret / "ca.crt").read_bytes() == root


def test_server_certificate_verifies_for_its_names_and_signing_ca_chains_to_root(
    tmp_path: Path,
) -> None:
    pki.init(tmp_path, server_names=("relay.example.com", "localhost"), now=NOW)
    root = x509.load_pem_x509_certificate((tmp_path / "relay-root-tls-secret/ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate(
        (tmp_path / "relay-server-tls-secret/tls.crt").read_bytes()
    )
    store = verification.Store([root])
    for name in ("relay.example.com", "localhost"):
        verifier = (
            verification.PolicyBuilder()
            .store(store)
            .time(NOW)
            .build_server_verifier(x509.DNSName(name))
        )
        assert verifier.verify(server, [])[-1] == root
    wrong = (
        verification.PolicyBuilder()
        .store(store)
        .time(NOW)
        .build_server_verifier(x509.DNSName("evil.example.com"))
    )
    with pytest.raises(verification.VerificationError):
        wrong.verify(server, [])
    signing = x509.load_pem_x509_certificate(
        (tmp_path / "relay-tls-signing-secret/tls.crt").read_bytes()
    )
    signing.verify_directly_issued_by(root)
    assert signing.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(
        (tmp_path / "relay-tls-signing-secret/tls.key").read_bytes(), None
    )
    assert key.public_key() == signing.public_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert pki.not_after(server.public_bytes(serialization.Encoding.PEM)) > NOW


def own_root(tmp_path: Path) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp root")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=9000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def test_bring_your_own_root_signs_everything_and_its_key_is_not_copied(tmp_path: Path) -> None:
    key_pem, cert_pem = own_root(tmp_path)
    out = tmp_path / "out"
    pki.init(out, root=(key_pem, cert_pem), now=NOW)
    assert files(out) == LAYOUT
    assert (out / "relay-root-tls-secret/ca.crt").read_bytes() == cert_pem
    root = x509.load_pem_x509_certificate(cert_pem)
    for secret in ("relay-tls-signing-secret", "relay-server-tls-secret"):
        x509.load_pem_x509_certificate(
            (out / secret / "tls.crt").read_bytes()
        ).verify_directly_issued_by(root)


def test_a_root_that_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    key_pem, _ = own_root(tmp_path)
    _, other_cert = own_root(tmp_path)
    with pytest.raises(pki.PkiError, match="does not match its private key"):
        pki.init(tmp_path / "out", root=(key_pem, other_cert), now=NOW)


def test_init_refuses_to_replace_an_existing_pki_unless_told(tmp_path: Path) -> None:
    pki.init(tmp_path, now=NOW)
    token = (tmp_path / "relay-identity-token-secret/token").read_bytes()
    with pytest.raises(pki.PkiError, match="already holds a relay PKI"):
        pki.init(tmp_path, now=NOW)
    pki.init(tmp_path, now=NOW, overwrite=True)
    assert (tmp_path / "relay-identity-token-secret/token").read_bytes() != token


def test_init_checks_cluster_names(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match="contains '_'"):
        pki.init(tmp_path, clusters=["good", "Cluster_1"], now=NOW)
    assert files(tmp_path) == set()


def csr_asking_for(names: list[str], cn: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM)


def test_issued_identity_is_the_cluster_whatever_the_csr_asks(tmp_path: Path) -> None:
    mgmt = make_pki(tmp_path)
    key, csr = csr_asking_for(["cluster2", "gloo-mesh-mgmt-server.gloo-mesh"], "cluster2")
    chain = pki.issue_client(mgmt.signer, csr, "cluster1", lifetime=timedelta(days=1), now=NOW)
    leaf, *rest = x509.load_pem_x509_certificates(chain)
    assert leaf.public_key() == key.public_key()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cluster1"]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cluster1"
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert [c.subject for c in rest] == [
        x509.load_pem_x509_certificate(mgmt.signer.cert_pem).subject
    ]
    assert pki.cluster_of(chain) == "cluster1"
    assert pki.not_after(chain) == NOW + timedelta(days=1)
    assert pki.verified_cluster(chain, mgmt.root_pem, now=NOW) == "cluster1"
    assert pki.verified_cluster(chain, mgmt.root_pem, now=NOW + timedelta(days=2)) is None


def test_a_csr_whose_signature_does_not_verify_is_refused(tmp_path: Path) -> None:
    mgmt = make_pki(tmp_path)
    _, csr = pki.new_key_and_csr("cluster1")
    der = bytearray(x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(pki.PkiError, match="signature does not verify"):
        pki.issue_client(mgmt.signer, tampered, "cluster1", lifetime=timedelta(days=1), now=NOW)
    with pytest.raises(pki.PkiError, match="not a PEM certificate signing request"):
        pki.issue_client(mgmt.signer, b"junk", "cluster1", lifetime=timedelta(days=1), now=NOW)


def test_cli_init_writes_the_pki_and_prints_no_secret(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    runner = CliRunner()
    result = runner.invoke(
        pki_group, ["init", "--out", str(out), "--cluster", "cluster1", "--cluster", "west"]
    )
    assert result.exit_code == 0, result.output
    assert files(out) == LAYOUT | {"root-ca.key"}
    assert "Clusters to register: cluster1, west" in result.stdout
    token = (out / "relay-identity-token-secret/token").read_text()
    assert token not in result.output
    assert "PRIVATE KEY" not in result.output

    again = runner.invoke(pki_group, ["init", "--out", str(out)])
    assert again.exit_code == 1
    assert "Error: " in again.stderr and "already holds a relay PKI" in again.stderr
    assert runner.invoke(pki_group, ["init", "--out", str(out), "--force"]).exit_code == 0


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(pki_group, ["init", "--out", str(tmp_path), "--cluster", "Cluster_1"])
    assert bad.exit_code == 2 and "contains '_'" in bad.stderr
    key_pem, cert_pem = own_root(tmp_path)
    (tmp_path / "root.crt").write_bytes(cert_pem)
    half = runner.invoke(
        pki_group, ["init", "--out", str(tmp_path / "o"), "--root-cert", str(tmp_path / "root.crt")]
    )
    assert half.exit_code == 2 and "go together" in half.stderr
    (tmp_path / "root.key").write_bytes(key_pem)
    both = runner.invoke(
        pki_group,
        [
            "init",
            "--out",
            str(tmp_path / "o"),
            "--root-cert",
            str(tmp_path / "root.crt"),
            "--root-key",
            str(tmp_path / "root.key"),
        ],
    )
    assert both.exit_code == 0, both.output
    assert (tmp_path / "o/relay-root-tls-secret/ca.crt").read_bytes() == cert_pem
    assert "root-ca.key" not in both.stdout
