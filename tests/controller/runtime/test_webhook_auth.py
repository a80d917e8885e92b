"""End to end: a GitHub webhook with a bad signature (or an over-size body) starts nothing;
the correctly signed delivery brings the commit to both clusters.

The server follows the repository through a `file://` URL, so there is no local file
watch, and polls once an hour: after the commit, only a webhook can start a reconcile.

Why "no reconcile" is proven without sleeping: the webhook route hands a verified delivery
to the loop's `Trigger` before it answers, so once a refusal is answered the trigger
either already holds a fire or never will. `Trigger.wait_idle` then waits out any pending
coalesce window and the reload it starts; after it returns, an unchanged loaded revision
(`server.bundle`, `GET /api/clusters`), unchanged cluster files and no `reload:` log line
mean no reconcile happened. The signed delivery afterwards shows the same checks do see one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.runtime import (
    CLUSTERS,
    Installation,
    commit,
    owned_files,
    retry_attempts,
    wait_until,
)

KEY = b"hook-key-7d31a0"
RETRIES = "bookinfo/policies/retry-timeout.yaml"
MAX_BODY = 1024


@dataclass
class Hooked:
    install: Installation
    client: httpx.Client

    def deliver(self, body: bytes, key: bytes = KEY) -> httpx.Response:
        signature = hmac.new(key, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        return self.client.post("/hooks/github", content=body, headers=headers)

    def api_revision(self) -> str | None:
        revision: str | None = self.client.get("/api/clusters").json()["revision"]
        return revision


@pytest.fixture
def hooked(install: Installation) -> Iterator[Hooked]:
    install.secrets.write("gitops-webhooks", "github", KEY + b"\n")
    install.server_overrides = {
        "gitops": {
            "repo": {"url": f"file://{install.repo}", "interval": "1h"},
            "webhooks": {"secretName": "gitops-webhooks", "maxBodyBytes": MAX_BODY},
        }
    }
    server = install.start_synced()
    assert server.loop is not None and server.loop.watch is None  # no file watch
    port = server.ports["api"]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield Hooked(install, client)


def _files(install: Installation) -> dict[str, bytes]:
    return {
        f"{cluster}/{rel}": (install.cluster_dir(cluster) / rel).read_bytes()
        for cluster in CLUSTERS
        for rel in owned_files(install.cluster_dir(cluster))
    }


def test_a_badly_signed_webhook_starts_nothing_and_a_signed_one_syncs(
    hooked: Hooked, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.server.git_loop")
    install = hooked.install
    server = install.running
    assert server.loop is not None and server.bundle is not None
    loaded = server.bundle.revision
    assert loaded is not None and hooked.api_revision() == loaded
    files = _files(install)
    assert all(retry_attempts(install.cluster_dir(c)) == {3} for c in CLUSTERS)

    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )
    push = json.dumps({"ref": "refs/heads/main", "after": sha, "before": loaded}).encode()

    forged = hooked.deliver(push, key=b"not-the-key")
    assert forged.status_code == 401
    assert forged.json() == {"error": "Unauthorized", "detail": "signature does not match the body"}
    unsigned = hooked.client.post("/hooks/github", content=push)
    assert unsigned.status_code == 401
    # Correctly signed, but larger than maxBodyBytes: refused before it is read.
    padded = json.dumps({"ref": "refs/heads/main", "after": sha, "pad": "x" * MAX_BODY}).encode()
    too_big = hooked.deliver(padded)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "RequestEntityTooLarge"

    # See the module docstring: idle now means any reconcile a refusal had started is over.
    assert server.loop.trigger.wait_idle(timeout=30)
    assert server.bundle.revision == loaded
    assert hooked.api_revision() == loaded
    for cluster in CLUSTERS:
        assert server.fleet.clusters[cluster].published_revision == loaded
    assert _files(install) == files
    assert not [r for r in caplog.records if r.getMessage().startswith("reload:")]

    accepted = hooked.deliver(push)
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "accepted", "ref": "refs/heads/main", "sha": sha}
    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: (
                server.fleet.clusters[c].published_revision == sha and install.converged(c)
            ),
            what=f"{cluster} synced at the commit",
        )
        assert retry_attempts(install.cluster_dir(cluster)) == {6}
    assert hooked.api_revision() == sha
    reloads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reload:")]
    assert reloads == ["reload: webhook:github"]
