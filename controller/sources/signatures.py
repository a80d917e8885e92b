"""Commit signature verification (`gitops.repo.verify: head`): is a commit signed by an
allowed key?

Sits beside the Git source (`controller.sources.git`): after `open_source` has read a
commit, `gitops serve` (`controller/server/verification.py`, called from
`Server.reload`) asks a `Verifier` about that commit before loading it. The Verifier is
built once, at server start, from the allowed-keys Secret (`gitops.repo.allowedKeysSecret`):
every key file in it holds either OpenPGP armored public key(s) or SSH public keys, one
per line as in `authorized_keys` (`ssh-ed25519 AAAA... comment`).

The checks are the ones `git verify-commit` runs, with the same tools and no crypto of our
own: an SSH signature is verified by `ssh-keygen -Y verify` against an `allowed_signers`
file built from the SSH keys (namespace `git`); an OpenPGP signature by `gpg --verify
--status-fd` in a private, temporary GNUPGHOME holding only the allowed keys. Both are
removed after every check. A tool that the keys need and that is not installed is a
`SignatureError` when the Verifier is built, so the server fails at start, not at the
first commit.

`verify` returns a `Verdict` for the signature (the reason is a one-line sentence fit for a
commit status); it raises `SignatureError` only when the check itself could not run (a tool
crashed or timed out), which says nothing about the commit and must not be cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from controller.secrets import SecretError, SecretsDir

__all__ = ["SignatureError", "Verdict", "Verifier"]

PGP_KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
PGP_SIGNATURE = b"-----BEGIN PGP SIGNATURE-----"
SSH_SIGNATURE = b"-----BEGIN SSH SIGNATURE-----"
#: The namespace `git` signs commits in (`ssh-keygen -Y sign -n git`).
NAMESPACE = "git"
#: Seconds a tool may take on one signature; far above the milliseconds it needs.
TIMEOUT = 30
_SSH_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")
_GPG_BAD = {
    "BADSIG": "bad signature",
    "EXPKEYSIG": "signed by an expired key",
    "REVKEYSIG": "signed by a revoked key",
    "EXPSIG": "the signature has expired",
}


class SignatureError(Exception):
    """The allowed keys are unusable or a tool is missing or failed; never holds key data."""


@dataclass(frozen=True)
class Verdict:
    """What verification says about one commit: `reason` is one line, `signer` who signed."""

    ok: bool
    reason: str
    signer: str = ""


@dataclass(frozen=True)
class SshKey:
    """One allowed SSH public key: type, base64 blob, comment, `SHA256:` fingerprint."""

    kind: str
    blob: str
    comment: str
    fingerprint: str


class Verifier:
    """Checks commit signatures against the keys of one Secret (see the module docstring)."""

    def __init__(self, secret: str, files: Mapping[str, bytes]) -> None:
        self.secret = secret
        self.pgp_keys: dict[str, bytes] = {}  # file name -> armored block(s)
        self.ssh_keys: dict[str, SshKey] = {}  # by fingerprint: a key listed twice is one
        ssh_lines: list[tuple[str, int, list[str]]] = []
        for name, data in sorted(files.items()):
            if PGP_KEY in data:
                self.pgp_keys[name] = data
                continue
            text = data.decode("utf-8", "replace")
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    ssh_lines.append((name, number, line.split(None, 2)))
        if not self.pgp_keys and not ssh_lines:
            raise SignatureError(f"allowed keys secret '{secret}' holds no keys")
        self.gpg = _tool("gpg", "gnupg", secret) if self.pgp_keys else shutil.which("gpg")
        self.ssh_keygen = _tool("ssh-keygen", "openssh-client", secret) if ssh_lines else None
        for name, number, fields in ssh_lines:
            key = self._ssh_key(name, number, fields)
            self.ssh_keys.setdefault(key.fingerprint, key)
        #: Primary key fingerprint -> user id, for every allowed OpenPGP key.
        self.pgp_fingerprints = self._pgp_fingerprints() if self.pgp_keys else {}

    @classmethod
    def from_secret(cls, secrets: SecretsDir, secret: str) -> Verifier:
        """Every key file of the Secret `<dir>/<secret>/` (hidden entries, such as a
        Kubernetes mount's `..data`, are skipped)."""
        try:
            folder = secrets.path(secret, "probe").parent
            names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
            files = {n: secrets.read(secret, n) for n in names if (folder / n).is_file()}
        except FileNotFoundError:
            raise SignatureError(f"allowed keys secret '{secret}' not found") from None
        except (OSError, SecretError) as exc:
            raise SignatureError(f"allowed keys secret '{secret}': {exc}") from None
        return cls(secret, files)

    # -- verification -------------------------------------------------------------------------

    def verify(self, repo: pygit2.Repository, commit_id: str) -> Verdict:
        """The verdict on the signature of `commit_id` in `repo`."""
        try:
            commit = repo[commit_id]
        except (KeyError, ValueError):
            raise SignatureError(f"commit {commit_id[:12]} is not in the repository") from None
        if not isinstance(commit, pygit2.Commit):
            raise SignatureError(f"{commit_id[:12]} is not a commit")
        signature, data = commit.gpg_signature
        if not signature or data is None:
            return Verdict(False, f"commit {commit_id[:12]} is not signed")
        if signature.lstrip().startswith(SSH_SIGNATURE):
            return self._verify_ssh(signature, data)
        if signature.lstrip().startswith(PGP_SIGNATURE):
            return self._verify_pgp(signature, data)
        return Verdict(
            False, f"commit {commit_id[:12]} has a signature that is neither OpenPGP nor SSH"
        )

    def _not_allowed(self, fingerprint: str) -> Verdict:
        return Verdict(
            False,
            f"signed by a key not in allowed keys secret '{self.secret}' "
            f"(key fingerprint {fingerprint})",
        )

    def _verify_ssh(self, signature: bytes, data: bytes) -> Verdict:
        fingerprint = _ssh_signature_fingerprint(signature)
        if fingerprint is None:
            return Verdict(False, "bad signature (the SSH signature cannot be read)")
        key = self.ssh_keys.get(fingerprint)
        if key is None or self.ssh_keygen is None:
            return self._not_allowed(fingerprint)
        with tempfile.TemporaryDirectory(prefix="gitops-ssh-verify-") as scratch:
            allowed, sig = Path(scratch) / "allowed_signers", Path(scratch) / "signature"
            allowed.write_text(f'allowed namespaces="{NAMESPACE}" {key.kind} {key.blob}\n')
            sig.write_bytes(signature)
            command = [self.ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", "allowed"]
            done = _run([*command, "-n", NAMESPACE, "-s", str(sig)], data)
        if done.returncode != 0:
            return Verdict(False, f"bad signature (key fingerprint {fingerprint})")
        signer = f"{key.comment} ({fingerprint})" if key.comment else fingerprint
        return Verdict(True, f"signed by {signer}", signer)

    def _verify_pgp(self, signature: bytes, data: bytes) -> Verdict:
        if self.gpg is None:
            return Verdict(
                False,
                f"signed with an OpenPGP key; allowed keys secret '{self.secret}' "
                "holds no OpenPGP keys",
            )
        with tempfile.TemporaryDirectory(prefix="gitops-gpg-verify-") as home:
            sig = Path(home) / "signature"
            sig.write_bytes(signature)
            if self.pgp_keys:
                self._gpg(home, ["--import"], b"\n".join(self.pgp_keys.values()), check=True)
            done = self._gpg(
                home,
                ["--trust-model", "always", "--status-fd", "1", "--verify", str(sig), "-"],
                data,
            )
        status: dict[str, list[str]] = {}
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("[GNUPG:] "):
                keyword, *args = line[9:].split(" ")
                status.setdefault(keyword, args)
        considered = (status.get("KEY_CONSIDERED") or ["?"])[0]
        for keyword, reason in _GPG_BAD.items():
            if keyword in status:
                return Verdict(False, f"{reason} (key fingerprint {considered})")
        if "ERRSIG" in status:
            args = status["ERRSIG"]
            fingerprint = args[6] if len(args) > 6 and args[6] != "-" else args[0]
            if "NO_PUBKEY" in status:
                return self._not_allowed(fingerprint)
            return Verdict(False, f"the signature cannot be checked (key {fingerprint})")
        if "GOODSIG" in status and "VALIDSIG" in status:
            valid = status["VALIDSIG"]
            primary = valid[9] if len(valid) > 9 else valid[0]
            user = self.pgp_fingerprints.get(primary, "")
            signer = f"{user} ({primary})" if user else primary
            return Verdict(True, f"signed by {signer}", signer)
        return Verdict(False, "bad signature (gpg found no good signature)")

    # -- keys ---------------------------------------------------------------------------------

    def _ssh_key(self, name: str, number: int, fields: list[str]) -> SshKey:
        where = f"line {number} of key file '{name}' in allowed keys secret '{self.secret}'"
        if len(fields) < 2 or not fields[0].startswith(_SSH_TYPES):
            raise SignatureError(
                f"{where} is neither an OpenPGP armored public key nor an SSH public key "
                "('ssh-ed25519 AAAA... comment')"
            )
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except binascii.Error:
            raise SignatureError(f"{where}: the key is not valid base64") from None
        assert self.ssh_keygen is not None
        with tempfile.TemporaryDirectory(prefix="gitops-ssh-key-") as scratch:
            path = Path(scratch) / "key.pub"
            path.write_text(f"{fields[0]} {fields[1]}\n")
            done = _run([self.ssh_keygen, "-l", "-f", str(path)], b"")
        if done.returncode != 0:
            raise SignatureError(f"{where}: ssh-keygen does not accept the key")
        comment = fields[2].strip() if len(fields) > 2 else ""
        return SshKey(fields[0], fields[1], comment, _fingerprint(blob))

    def _pgp_fingerprints(self) -> dict[str, str]:
        """Primary fingerprint -> first user id; refuses key files gpg finds no key in."""
        found: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="gitops-gpg-keys-") as home:
            for name, data in self.pgp_keys.items():
                done = self._gpg(
                    home, ["--with-colons", "--import-options", "show-only", "--import"], data
                )
                fingerprint, keys = "", 0
                for line in done.stdout.decode("utf-8", "replace").splitlines():
                    fields = line.split(":")
                    if fields[0] == "pub":
                        fingerprint = ""  # the next `fpr` is this primary key's
                    elif fields[0] == "fpr" and not fingerprint and len(fields) > 9:
                        fingerprint, keys = fields[9], keys + 1
                        found.setdefault(fingerprint, "")
                    elif fields[0] == "uid" and fingerprint and len(fields) > 9:
                        found[fingerprint] = found[fingerprint] or fields[9]
                if not keys or done.returncode != 0:
                    raise SignatureError(
                        f"key file '{name}' in allowed keys secret '{self.secret}' has an "
                        "OpenPGP block gpg cannot read"
                    )
        return found

    def _gpg(
        self, home: str, args: list[str], stdin: bytes, check: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        assert self.gpg is not None
        command = [self.gpg, "--batch", "--no-tty", "--no-autostart", "--homedir", home, *args]
        done = _run(command, stdin)
        if check and done.returncode != 0:
            raise SignatureError(f"gpg {args[0]} failed with exit code {done.returncode}")
        return done


def _tool(name: str, package: str, secret: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SignatureError(
            f"{name} is not installed (package {package}); it is needed to check commit "
            f"signatures against the keys in allowed keys secret '{secret}'"
        )
    return found


def _run(command: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            command, input=stdin, capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise SignatureError(f"{Path(command[0]).name} took over {TIMEOUT}s") from None
    except OSError as exc:
        raise SignatureError(f"{Path(command[0]).name} cannot run: {exc.strerror}") from None


def _fingerprint(blob: bytes) -> str:
    """A public key blob's fingerprint as `ssh-keygen -l` prints it (`SHA256:` base64)."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return "SHA256:" + digest.rstrip("=")


def _ssh_signature_fingerprint(signature: bytes) -> str | None:
    """The signing key's fingerprint, from the public key an SSHSIG blob carries.

    The format (OpenSSH's PROTOCOL.sshsig): "SSHSIG", uint32 version, string publickey,
    ... Only the key is read here; `ssh-keygen -Y verify` checks the signature itself.
    """
    lines = signature.decode("ascii", "replace").strip().splitlines()
    try:
        blob = base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return None
    size = int.from_bytes(blob[10:14], "big")
    key = blob[14 : 14 + size]
    return _fingerprint(key) if size and len(key) == size else None
