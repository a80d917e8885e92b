"""End to end: `gitops serve` with `gitops.status.provider: github` posts each commit's
statuses to the Git host (the wire-level stand-in in `tests/support/git_host.py`).

What a real install sees: every context ends `success` on the commit that was applied,
each context's states only move forward (pending, then a final state; never back), a
repeat of the latest status is never posted, every status links to `/reports/<sha>`, and
the API token goes only into the Authorization header, never into a log line.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from tests.support import git_host as git_host_module
from tests.support.git_host import TOKEN, GitHost
from tests.support.runtime import CLUSTERS, Installation, commit, wait_until

git_host = git_host_module.git_host

REPO = "acme/mesh-config"
RETRIES = "bookinfo/policies/retry-timeout.yaml"
CONTEXTS = [
    "mesh-gitops/translation",
    *(f"mesh-gitops/{kind}/{c}" for kind in ("sync", "drift") for c in CLUSTERS),
]
_ORDER = {"pending": 0, "success": 1, "failure": 1, "error": 1}


def _final(host: GitHost, sha: str) -> dict[str, str]:
    latest: dict[str, str] = {}
    for posted_sha, context, state in host.posted:
        if posted_sha == sha:
            latest[context] = state
    return latest


def test_statuses_reach_the_git_host_on_the_applied_commit(
    install: Installation, git_host: GitHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    install.secrets.write("gh-token", "token", TOKEN.encode() + b"\n")
    install.server_overrides = {
        "gitops": {
            "repo": {"url": f"file://{install.repo}", "interval": "1s"},
            "status": {
                "provider": "github",
                "apiUrl": git_host.url,
                "repository": REPO,
                "tokenSecret": "gh-token",
            },
        }
    }
    server = install.start_synced()
    first = server.bundle.revision if server.bundle else None
    assert first
    wait_until(
        lambda: _final(git_host, first) == dict.fromkeys(CONTEXTS, "success"),
        what="the first commit's statuses",
    )

    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )
    wait_until(
        lambda: _final(git_host, sha) == dict.fromkeys(CONTEXTS, "success"),
        what="the new commit's statuses",
    )

    # Only the two applied commits were ever posted to.
    assert {posted_sha for posted_sha, _, _ in git_host.posted} == {first, sha}
    for context in CONTEXTS:
        states = [s for posted_sha, c, s in git_host.posted if posted_sha == sha and c == context]
        # Forward only, and never the same state twice in a row (a repeat is skipped).
        assert [_ORDER[s] for s in states] == sorted(_ORDER[s] for s in states), (context, states)
        assert all(a != b for a, b in itertools.pairwise(states)), (context, states)

    posts = [c for c in git_host.calls if c.method == "POST"]
    assert posts and all(c.code == 201 for c in posts)
    api = server.ports["api"]
    for call in posts:
        assert call.body is not None
        sha_in_path = call.path.rsplit("/", 1)[-1]
        assert call.path == f"/repos/{REPO}/statuses/{sha_in_path}"
        assert call.body["target_url"].endswith(f":{api}/reports/{sha_in_path}")
        assert TOKEN not in str(call.body)
    assert TOKEN not in caplog.text
