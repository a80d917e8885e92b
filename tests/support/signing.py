"""Real signing keys and signed commits, for the commit signature verification tests.

OpenPGP keys are made by `gpg --quick-gen-key` in a private GNUPGHOME (one per `Keyring`,
under a short /tmp path because gpg-agent's socket path has a length limit); SSH keys by
`ssh-keygen -t ed25519`. Commits are signed by the `git` CLI exactly as a user signs them
(`commit -S` with `gpg.format=ssh` or with `gpg.program=gpg`), so the verifier sees what a
Git host would hand it. `Keyring.close` stops the gpg-agent that signing started.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.git_servers import git_env


@dataclass(frozen=True)
class SshKey:
    """An ed25519 key pair: `private` is the key file, `public` its `.pub` line."""

    private: Path
    public: str


@dataclass(frozen=True)
class PgpKey:
    """An OpenPGP key in a `Keyring`: its fingerprint and its armored public key."""

    fingerprint: str
    public: bytes


def ssh_key(folder: Path, comment: str) -> SshKey:
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / comment.replace("@", "-at-").replace(".", "-")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)],
        check=True,
        capture_output=True,
    )
    return SshKey(private, Path(f"{private}.pub").read_text())


class Keyring:
    """A private GNUPGHOME that makes keys and signs with them."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gpg-"))
        self.home.chmod(0o700)

    @property
    def env(self) -> dict[str, str]:
        return {**git_env(), "GNUPGHOME": str(self.home)}

    def gpg(self, *args: str) -> bytes:
        done = subprocess.run(
            ["gpg", "--batch", *args], env=self.env, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"gpg {args[0]} failed: {done.stderr.decode()}")
        return done.stdout

    def new_key(self, user: str) -> PgpKey:
        self.gpg("--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", "never")
        listing = self.gpg("--with-colons", "--list-keys", user).decode()
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:"
        )
        return PgpKey(fingerprint, self.gpg("--armor", "--export", fingerprint))

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, check=False, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def signed_commit(
    repo: Path,
    message: str,
    files: Mapping[str, str | None],
    key: SshKey | PgpKey,
    keyring: Keyring | None = None,
) -> str:
    """Write (or delete, for None) `files` in the working copy and commit them signed with
    `key`; the commit id."""
    for rel, text in files.items():
        if text is None:
            (repo / rel).unlink()
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
    if isinstance(key, SshKey):
        config = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}"]
        env = git_env()
    else:
        assert keyring is not None, "an OpenPGP key signs from its keyring"
        config = ["-c", "gpg.format=openpgp", "-c", "gpg.program=gpg"]
        config += ["-c", f"user.signingkey={key.fingerprint}"]
        env = keyring.env
    for args in (["add", "-A"], [*config, "commit", "-q", "-S", "--allow-empty", "-m", message]):
        done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode()}")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, check=True
    )
    return head.stdout.decode().strip()
