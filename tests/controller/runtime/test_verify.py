"""End to end: `gitops.repo.verify: head`. A commit signed by an allowed key reaches both
clusters; an unsigned one, or one signed by a key outside the allowed keys Secret, is not
loaded or synced (the clusters keep the last good config, nothing is deleted) and its git
note says why on `<prefix>/translation`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.server.app import ServeError, Server
from controller.status.notes import NotesWriter
from tests.support.runtime import (
    CLUSTERS,
    DeletionWatch,
    Installation,
    commit,
    owned_files,
    wait_until,
)
from tests.support.signing import SshKey, signed_commit, ssh_key

RETRIES = "bookinfo/policies/retry-timeout.yaml"
SIGNERS = "commit-signers"
TRANSLATION = "mesh-gitops/translation"


@pytest.fixture
def alice(install: Installation) -> SshKey:
    key = ssh_key(install.base / "keys", "alice@example.com")
    allowed = install.secrets.root / SIGNERS / "alice.pub"
    allowed.parent.mkdir(parents=True)
    allowed.write_text(key.public)
    return key


@pytest.fixture
def verified(install: Installation, alice: SshKey) -> Iterator[Installation]:
    """Verification on. Commits reach the server through the file watch: the poll's hour
    keeps it from touching the remote-head check, which the test reads."""
    install.server_overrides = {
        "gitops": {"repo": {"interval": "1h", "verify": "head", "allowedKeysSecret": SIGNERS}}
    }
    yield install


def _retries(install: Installation, attempts: int) -> dict[str, str | None]:
    text = (install.repo / RETRIES).read_text()
    old = next(line for line in text.splitlines() if "attempts:" in line)
    return {RETRIES: text.replace(old, old.split(":")[0] + f": {attempts}")}


def _applied(install: Installation, attempts: int) -> bool:
    needle = f"attempts: {attempts}"
    for cluster in CLUSTERS:
        root = install.cluster_dir(cluster)
        if not any(needle in (root / rel).read_text() for rel in owned_files(root)):
            return False
    return True


def _note(repo: Path, sha: str, context: str) -> tuple[str, str] | None:
    notes = NotesWriter(repo, remote=None)
    try:
        status = notes.latest(sha).get(context)
    finally:
        notes.close()
    return (status.state.value, status.description) if status else None


def _state(install: Installation, sha: str, state: str) -> str:
    """Wait until `sha`'s translation note has `state`; its description."""

    def check() -> str | None:
        note = _note(install.repo, sha, TRANSLATION)
        return note[1] if note and note[0] == state else None

    return str(wait_until(check, what=f"translation {state} on {sha[:12]}"))


def _unsigned(sha: str) -> str:
    return f"not synced: commit {sha[:12]} is not signed"


def test_only_commits_signed_by_an_allowed_key_are_synced(
    verified: Installation, alice: SshKey
) -> None:
    install = verified
    good = signed_commit(install.repo, "six retries", _retries(install, 6), alice)
    server = install.start_synced()
    assert all(server.fleet.clusters[c].published_revision == good for c in CLUSTERS)
    assert _applied(install, 6)
    _state(install, good, "success")

    before = {c: owned_files(install.cluster_dir(c)) for c in CLUSTERS}
    dirs = [install.cluster_dir(c) for c in CLUSTERS]
    with DeletionWatch(dirs) as deletions:
        # Unsigned: refused, and the poll's check says the branch has not moved since, so
        # the refused head is not fetched (and refused) again on every interval.
        unsigned = commit(install.repo, "nine retries, unsigned", _retries(install, 9))
        assert _state(install, unsigned, "failure") == _unsigned(unsigned)
        assert server.read_revision == unsigned
        assert server.loop is not None and server.loop.head() is False

        # Signed, but by a key the Secret does not list: refused naming the key.
        mallory = ssh_key(install.base / "keys", "mallory@example.com")
        forged = signed_commit(install.repo, "nine retries, mallory", {}, mallory)
        reason = _state(install, forged, "failure")
        assert reason.startswith(
            f"not synced: signed by a key not in allowed keys secret '{SIGNERS}'"
        )
        assert mallory.public.split()[0] not in reason  # a fingerprint, not the key

        for cluster in CLUSTERS:
            assert server.fleet.clusters[cluster].published_revision == good
            assert owned_files(install.cluster_dir(cluster)) == before[cluster]
            assert install.converged(cluster)
        assert server.bundle is not None and server.bundle.revision == good
    assert deletions.samples > 0 and deletions.vanished == set()
    assert not _applied(install, 9)

    # alice signs the next commit: it is synced, the refused ones stay refused.
    fixed = signed_commit(install.repo, "nine retries, signed", {}, alice)
    wait_until(lambda: _applied(install, 9), what="the signed commit applied")
    install.wait_synced()
    assert all(server.fleet.clusters[c].published_revision == fixed for c in CLUSTERS)
    _state(install, fixed, "success")
    assert _note(install.repo, unsigned, TRANSLATION) == ("failure", _unsigned(unsigned))


def test_an_unsigned_head_at_start_loads_nothing_and_is_reported(
    verified: Installation,
) -> None:
    install = verified
    before = {c: owned_files(install.cluster_dir(c)) for c in CLUSTERS}
    server = install.start_server()
    sha = server.read_revision
    assert sha is not None
    assert server.bundle is None
    assert _state(install, sha, "failure") == _unsigned(sha)
    for cluster in CLUSTERS:
        assert owned_files(install.cluster_dir(cluster)) == before[cluster]


def test_verification_with_a_missing_keys_secret_fails_at_start(install: Installation) -> None:

    install.server_overrides = {
        "gitops": {"repo": {"verify": "head", "allowedKeysSecret": "no-such-secret"}}
    }
    server = Server(
        install.server_values(), install.secrets, install.base / "s", install.base / "c"
    )
    try:
        with pytest.raises(ServeError, match="allowed keys secret 'no-such-secret' not found"):
            server.start()
    finally:
        server.stop()
