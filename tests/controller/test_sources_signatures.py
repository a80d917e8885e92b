"""Commit signature verification: real keys (gpg, ssh-keygen), real commits signed by the
`git` CLI, checked by `controller.sources.signatures.Verifier` and cached and reported by
`controller.server.verification.Verification`."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ObjectType

from controller.secrets import SecretsDir
from controller.server import verification
from controller.server.verification import Verification
from controller.sources.signatures import SignatureError, Verifier
from tests.support.git_servers import run_git
from tests.support.signing import DAY, Keyring, PgpKey, SshKey, signed_commit, ssh_key

SECRET = "allowed-signers"


@dataclass(frozen=True)
class Keys:
    keyring: Keyring
    alice_ssh: SshKey
    mallory_ssh: SshKey
    alice_pgp: PgpKey
    mallory_pgp: PgpKey


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    folder = tmp_path_factory.mktemp("ssh")
    keyring = Keyring()
    try:
        yield Keys(
            keyring,
            ssh_key(folder, "alice@example.com"),
            ssh_key(folder, "mallory@example.com"),
            keyring.new_key("Alice <alice@example.com>"),
            keyring.new_key("Mallory <mallory@example.com>"),
        )
    finally:
        keyring.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    return path


def _secrets(root: Path, files: dict[str, bytes | str]) -> SecretsDir:
    for name, data in files.items():
        target = root / SECRET / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return SecretsDir(root)


def _verifier(tmp_path: Path, keys: Keys) -> Verifier:
    secrets = _secrets(
        tmp_path / "secrets",
        {"alice.pub": keys.alice_ssh.public, "alice.asc": keys.alice_pgp.public},
    )
    return Verifier.from_secret(secrets, SECRET)


def _commit(repo: Path, key: SshKey | PgpKey, keys: Keys, message: str = "change") -> str:
    return signed_commit(repo, message, {"a.yaml": f"{message}\n"}, key, keys.keyring)


def _ssh_fingerprint(key: SshKey) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key.private}.pub"], capture_output=True, check=True
    )
    return out.stdout.decode().split()[1]


def _git_verify_commit(repo: Path, sha: str, keyring: Keyring) -> tuple[int, str]:
    """What `git verify-commit` says about `sha` with the signer's own keyring: its exit
    code and gpg's status lines (`--raw`)."""
    done = subprocess.run(
        ["git", "-c", "gpg.program=gpg", "verify-commit", "--raw", sha],
        cwd=repo,
        env=keyring.env,
        capture_output=True,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def _tampered(repo: Path, sha: str) -> str:
    """The same commit object with its message changed and its signature kept."""
    odb = pygit2.Repository(str(repo)).odb
    _, raw = odb.read(sha)
    forged = raw.replace(b"\nchange\n", b"\nsomething else\n")
    assert forged != raw
    return str(odb.write(ObjectType.COMMIT, forged))


# -- verdicts --------------------------------------------------------------------------------


def test_a_commit_signed_with_an_allowed_ssh_key_is_accepted(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    sha = _commit(repo, keys.alice_ssh, keys)
    verdict = _verifier(tmp_path, keys).verify(pygit2.Repository(str(repo)), sha)
    assert verdict.ok, verdict.reason
    assert verdict.signer == f"alice@example.com ({_ssh_fingerprint(keys.alice_ssh)})"


def test_a_commit_signed_with_an_allowed_openpgp_key_is_accepted(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    sha = _commit(repo, keys.alice_pgp, keys)
    verdict = _verifier(tmp_path, keys).verify(pygit2.Repository(str(repo)), sha)
    assert verdict.ok, verdict.reason
    assert verdict.signer == f"Alice <alice@example.com> ({keys.alice_pgp.fingerprint})"


def test_an_unsigned_commit_is_refused(tmp_path: Path, keys: Keys, repo: Path) -> None:
    (repo / "a.yaml").write_text("a: 1\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "unsigned")
    sha = run_git(repo, "rev-parse", "HEAD")
    verdict = _verifier(tmp_path, keys).verify(pygit2.Repository(str(repo)), sha)
    assert not verdict.ok
    assert verdict.reason == f"commit {sha[:12]} is not signed"


def test_an_ssh_signature_by_another_key_is_refused_naming_its_fingerprint(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    sha = _commit(repo, keys.mallory_ssh, keys)
    verdict = _verifier(tmp_path, keys).verify(pygit2.Repository(str(repo)), sha)
    assert not verdict.ok
    fingerprint = _ssh_fingerprint(keys.mallory_ssh)
    assert verdict.reason == (
        f"signed by a key not in allowed keys secret '{SECRET}' (key fingerprint {fingerprint})"
    )


def test_an_openpgp_signature_by_another_key_is_refused_naming_its_fingerprint(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    sha = _commit(repo, keys.mallory_pgp, keys)
    verdict = _verifier(tmp_path, keys).verify(pygit2.Repository(str(repo)), sha)
    assert not verdict.ok
    assert verdict.reason == (
        f"signed by a key not in allowed keys secret '{SECRET}' "
        f"(key fingerprint {keys.mallory_pgp.fingerprint})"
    )


@pytest.mark.parametrize("kind", ["ssh", "pgp"])
def test_a_tampered_commit_has_a_bad_signature(
    tmp_path: Path, keys: Keys, repo: Path, kind: str
) -> None:
    key = keys.alice_ssh if kind == "ssh" else keys.alice_pgp
    sha = _commit(repo, key, keys)
    forged = _tampered(repo, sha)
    verifier = _verifier(tmp_path, keys)
    verdict = verifier.verify(pygit2.Repository(str(repo)), forged)
    assert not verdict.ok
    assert verdict.reason.startswith("bad signature"), verdict.reason
    assert verifier.verify(pygit2.Repository(str(repo)), sha).ok  # the original still is


def test_a_commit_signed_before_its_key_was_revoked_is_refused(tmp_path: Path, repo: Path) -> None:
    # The Secret holds the key as published after revocation: gpg says REVKEYSIG.
    keyring = Keyring()
    try:
        bob = keyring.new_key("Bob <bob@example.com>")
        sha = signed_commit(repo, "change", {"a.yaml": "a: 1\n"}, bob, keyring)
        # gpg writes a revocation certificate for every key it makes; importing it revokes.
        certificate = (keyring.home / "openpgp-revocs.d" / f"{bob.fingerprint}.rev").read_text()
        armored = certificate[certificate.index(":-----BEGIN") + 1 :]
        (tmp_path / "bob.rev").write_text(armored)
        keyring.gpg("--import", str(tmp_path / "bob.rev"))
        revoked = keyring.gpg("--armor", "--export", bob.fingerprint)
    finally:
        keyring.close()
    secrets = _secrets(tmp_path / "secrets", {"bob.asc": revoked})
    verdict = Verifier.from_secret(secrets, SECRET).verify(pygit2.Repository(str(repo)), sha)
    assert not verdict.ok
    assert verdict.reason.startswith("signed by a revoked key"), verdict.reason


@pytest.mark.parametrize(
    ("expiring", "expires", "refusal"),
    [
        ("key", "1d", ("signed by an expired key", "EXPKEYSIG")),
        ("key", "1y", None),
        ("signature", "1d", ("the signature has expired", "EXPSIG")),
        ("signature", "1y", None),
    ],
)
def test_expired_keys_and_signatures_are_refused_as_git_verify_commit_refuses_them(
    tmp_path: Path, repo: Path, expiring: str, expires: str, refusal: tuple[str, str] | None
) -> None:
    # The key was made three days ago and signed in its first hour (gpg's faked clock).
    # gpg judges expiry when it verifies, not when it signed, and so does `git
    # verify-commit`: after a day of validity the key (EXPKEYSIG) or the signature
    # (`--default-sig-expire` through git's gpg.program: EXPSIG) has expired and the commit
    # is refused; with a year it is accepted, so the faked past alone refuses nothing.
    made = int(time.time()) - 3 * DAY
    keyring = Keyring()
    try:
        key_expires = expires if expiring == "key" else "never"
        carol = keyring.new_key("Carol <carol@example.com>", created=made, expires=key_expires)
        signature_expires = expires if expiring == "signature" else None
        files = {"a.yaml": "a: 1\n"}
        sha = signed_commit(repo, "change", files, carol, keyring, made + 3600, signature_expires)
        git_exit, git_status = _git_verify_commit(repo, sha, keyring)
    finally:
        keyring.close()
    secrets = _secrets(tmp_path / "secrets", {"carol.asc": carol.public})  # with its expiry
    verdict = Verifier.from_secret(secrets, SECRET).verify(pygit2.Repository(str(repo)), sha)
    if refusal is None:
        assert verdict.ok, verdict.reason
        assert verdict.signer == f"Carol <carol@example.com> ({carol.fingerprint})"
        assert git_exit == 0, git_status
    else:
        reason, status = refusal
        assert not verdict.ok
        assert verdict.reason == f"{reason} (key fingerprint {carol.fingerprint})"
        assert git_exit != 0 and f"[GNUPG:] {status}" in git_status, git_status


def test_a_key_file_may_hold_several_ssh_keys_and_comments(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    text = f"# the release team\n\n{keys.mallory_ssh.public}{keys.alice_ssh.public}"
    verifier = Verifier.from_secret(_secrets(tmp_path / "s", {"team": text}), SECRET)
    assert len(verifier.ssh_keys) == 2
    sha = _commit(repo, keys.alice_ssh, keys)
    assert verifier.verify(pygit2.Repository(str(repo)), sha).ok
    # OpenPGP signatures are refused by fingerprint when only SSH keys are allowed.
    other = _commit(repo, keys.alice_pgp, keys, "second")
    verdict = verifier.verify(pygit2.Repository(str(repo)), other)
    assert not verdict.ok and keys.alice_pgp.fingerprint in verdict.reason


def test_verification_leaves_no_temporary_directories(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    def leftovers() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("gitops-*-verify-*")}

    before = leftovers()
    verifier = _verifier(tmp_path, keys)
    for key in (keys.alice_ssh, keys.alice_pgp, keys.mallory_pgp):
        verifier.verify(pygit2.Repository(str(repo)), _commit(repo, key, keys, str(key)[:20]))
    assert leftovers() <= before


# -- the allowed keys secret -----------------------------------------------------------------


def test_a_secret_without_keys_is_an_error(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path / "s", {})
    (tmp_path / "s" / SECRET).mkdir(parents=True)
    with pytest.raises(SignatureError, match=f"allowed keys secret '{SECRET}' holds no keys"):
        Verifier.from_secret(secrets, SECRET)


def test_a_missing_secret_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="allowed keys secret 'nope' not found"):
        Verifier.from_secret(SecretsDir(tmp_path), "nope")


def test_a_key_file_that_is_no_key_names_the_file_and_line_not_the_content(
    tmp_path: Path, keys: Keys
) -> None:
    text = f"{keys.alice_ssh.public}not-a-key hunter2\n"
    secrets = _secrets(tmp_path / "s", {"team.pub": text})
    with pytest.raises(SignatureError) as caught:
        Verifier.from_secret(secrets, SECRET)
    message = str(caught.value)
    assert "line 2 of key file 'team.pub'" in message
    assert "hunter2" not in message


def test_an_ssh_key_ssh_keygen_rejects_is_an_error(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path / "s", {"k.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x\n"})
    with pytest.raises(SignatureError, match="ssh-keygen does not accept the key"):
        Verifier.from_secret(secrets, SECRET)


def test_an_unreadable_openpgp_block_is_an_error(tmp_path: Path) -> None:
    broken = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    secrets = _secrets(tmp_path / "s", {"k.asc": broken})
    with pytest.raises(
        SignatureError,
        match=rf"key file 'k\.asc' in allowed keys secret '{SECRET}' has an OpenPGP block",
    ):
        Verifier.from_secret(secrets, SECRET)


# -- the server's gate -----------------------------------------------------------------------


def test_a_refused_commit_is_checked_once_and_gets_a_translation_failure(
    tmp_path: Path, keys: Keys, repo: Path
) -> None:
    gate = Verification(_verifier(tmp_path, keys), str(repo), tmp_path / "cache", "acme")
    good = _commit(repo, keys.alice_ssh, keys)
    (repo / "b.yaml").write_text("b: 1\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "unsigned")
    bad = run_git(repo, "rev-parse", "HEAD")
    assert gate.refusal(good) == ""
    for _ in range(3):
        assert gate.refusal(bad) == f"commit {bad[:12]} is not signed"
    assert gate.checks == 2  # one per commit, however often it is asked
    statuses = gate.statuses()
    assert list(statuses) == [(bad, "acme/translation")]
    status = statuses[(bad, "acme/translation")]
    assert status.state.value == "failure"
    assert status.description == f"not synced: commit {bad[:12]} is not signed"


def test_the_refused_commits_remembered_are_bounded(tmp_path: Path, keys: Keys, repo: Path) -> None:
    gate = Verification(_verifier(tmp_path, keys), str(repo), tmp_path / "cache", "acme")
    shas = []
    for n in range(verification.REFUSED + 3):
        run_git(repo, "commit", "-q", "--allow-empty", "-m", f"unsigned {n}")
        shas.append(run_git(repo, "rev-parse", "HEAD"))
        gate.refusal(shas[-1])
    assert [sha for sha, _ in gate.statuses()] == shas[3:]
