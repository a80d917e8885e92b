"""Real signing keys and signed commits, for the commit signature verification tests.

OpenPGP keys are made by `gpg --quick-gen-key` in a private GNUPGHOME (one per `Keyring`,
under a short /tmp path because gpg-agent's socket path has a length limit); SSH keys by
`ssh-keygen -t ed25519`. Commits are signed by the `git` CLI exactly as a user signs them
(`commit -S` with `gpg.format=ssh` or with `gpg.program=gpg`), so the verifier sees what a
Git host would hand it. `Keyring.close` stops the gpg-agent that signing started.

Expiry is tested without waiting and without faketime: gpg's own `--faked-system-time` makes
a key, or signs, at a moment in the past (`created=` / `signed_at=`), so a key made three
days ago that expired after one day, or a signature that expired after one day, has
expired by the time the test verifies it, with the real clock. git signs through a
`gpg.program` wrapper (`Keyring.program`) that passes gpg those options.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.git_servers import git_env

#: Seconds in a day, for key and signature expiry times.
DAY = 86400


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

    def new_key(self, user: str, created: int | None = None, expires: str = "never") -> PgpKey:
        """A signing key for `user`, made at the Unix time `created` (default: now) and
        expiring `expires` after that (gpg's syntax: `never`, `1d`, `seconds=N`)."""
        clock = faked_time(created) if created is not None else []
        self.gpg(*clock, "--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", expires)
        listing = self.gpg("--with-colons", "--list-keys", user).decode()
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:"
        )
        return PgpKey(fingerprint, self.gpg("--armor", "--export", fingerprint))

    def program(self, *options: str) -> str:
        """A `gpg.program` for git: gpg run with `options` before git's own arguments."""
        handle, path = tempfile.mkstemp(prefix="gpg-program-", dir=self.home)
        quoted = " ".join(shlex.quote(option) for option in options)
        os.write(handle, f'#!/bin/sh\nexec gpg {quoted} "$@"\n'.encode())
        os.close(handle)
        Path(path).chmod(0o700)
        return path

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, check=False, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def faked_time(when: int) -> list[str]:
    """gpg options that run it with its clock stopped at the Unix time `when`."""
    return ["--faked-system-time", f"{when}!"]


def signed_commit(
    repo: Path,
    message: str,
    files: Mapping[str, str | None],
    key: SshKey | PgpKey,
    keyring: Keyring | None = None,
    signed_at: int | None = None,
    signature_expires: str | None = None,
) -> str:
    """Write (or delete, for None) `files` in the working copy and commit them signed with
    `key`; the commit id. An OpenPGP signature may be made at the Unix time `signed_at`
    (the commit is dated then too) and expire `signature_expires` after it (`1d`)."""
    for rel, text in files.items():
        if text is None:
            (repo / rel).unlink()
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
    if isinstance(key, SshKey):
        assert signed_at is None and signature_expires is None, "only gpg's clock can be faked"
        config = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}"]
        env = git_env()
    else:
        assert keyring is not None, "an OpenPGP key signs from its keyring"
        options = faked_time(signed_at) if signed_at is not None else []
        if signature_expires is not None:
            options += ["--default-sig-expire", signature_expires]
        program = keyring.program(*options) if options else "gpg"
        config = ["-c", "gpg.format=openpgp", "-c", f"gpg.program={program}"]
        config += ["-c", f"user.signingkey={key.fingerprint}"]
        env = keyring.env
        if signed_at is not None:
            env |= {"GIT_AUTHOR_DATE": f"@{signed_at}", "GIT_COMMITTER_DATE": f"@{signed_at}"}
    for args in (["add", "-A"], [*config, "commit", "-q", "-S", "--allow-empty", "-m", message]):
        done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode()}")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, check=True
    )
    return head.stdout.decode().strip()
