"""End to end: `git commit` in the config repository reaches both clusters with no reload
call (the Git loop polls and watches), and the commit gets its statuses as git notes."""

from __future__ import annotations

from controller.status.notes import NotesWriter
from tests.support.runtime import ALL_SUCCESS, Installation, commit, states_on, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"


def test_a_commit_is_applied_everywhere_and_reported_on_that_commit(
    install: Installation,
) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    server = install.start_synced()
    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )
    # No reload call: the poll (or the local watch) notices the commit.
    wait_until(lambda: server.fleet.clusters["cluster1"].published_revision == sha, what="publish")
    install.wait_synced()
    for cluster in ("cluster1", "cluster2"):
        assert server.fleet.clusters[cluster].published_revision == sha
    wait_until(lambda: states_on(install.repo, sha) == ALL_SUCCESS, what="statuses on the commit")


def test_a_broken_commit_deletes_nothing_and_fails_translation_naming_the_file(
    install: Installation,
) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    server = install.start_synced()
    before = {c: dict(server.fleet.clusters[c].outputs) for c in ("cluster1", "cluster2")}
    sha = commit(install.repo, "oops", {RETRIES: "apiVersion: [unclosed\n"})
    wait_until(
        lambda: states_on(install.repo, sha).get("mesh-gitops/translation") == "failure",
        what="the translation status",
    )
    notes = NotesWriter(install.repo, remote=None)
    try:
        description = notes.latest(sha)["mesh-gitops/translation"].description
    finally:
        notes.close()
    assert RETRIES in description
    for cluster, outputs in before.items():
        assert dict(server.fleet.clusters[cluster].outputs) == outputs
        assert install.converged(cluster)
