"""Secrets, read from a directory laid out like Kubernetes Secret mounts.

`<dir>/<secretName>/<key>` holds one key's bytes (DESIGN.md section 10). Values files name
Secrets, never hold their data; `gitops serve` and `gitops agent` get `--secrets DIR`, and
`gitops pki init` writes the relay's Secrets in this layout. Errors name the Secret and key,
never the content.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretError(Exception):
    """A Secret or key is missing or unreadable (the message never holds secret data)."""


class SecretsDir:
    """The secrets directory: `read(secret, key)`; the agent also `write`s its certificate."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, secret: str, key: str) -> Path:
        if not secret or "/" in secret or secret in (".", ".."):
            raise SecretError(f"{secret!r} is not a Secret name")
        if not key or "/" in key or key in (".", ".."):
            raise SecretError(f"{key!r} is not a key of Secret {secret}")
        return self.root / secret / key

    def has(self, secret: str, key: str) -> bool:
        return self.path(secret, key).is_file()

    def read(self, secret: str, key: str) -> bytes:
        path = self.path(secret, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SecretError(f"Secret {secret} has no key {key} (looked for {path})") from None
        except OSError as exc:
            raise SecretError(f"Secret {secret} key {key}: {exc.strerror}") from None

    def read_text(self, secret: str, key: str) -> str:
        return self.read(secret, key).decode().strip()

    def write(self, secret: str, key: str, data: bytes) -> None:
        """Write one key atomically, readable by the owner only (keys and certificates)."""
        path = self.path(secret, key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{key}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
