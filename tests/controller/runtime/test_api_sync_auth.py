"""End to end: `POST /api/sync` behind `gitops.api.tokenSecret`, and `gitops sync` sending it.

A real server with automated sync off, so a sync is observable: nothing is published to
the agents until a manual sync is accepted (`fleet.approved`, the clusters' versions).
The unit-level cases (schemes, rotation, an unreadable key) are
`tests/controller/server/test_api_auth.py`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from controller.cli import main
from tests.support.runtime import CLUSTERS, Installation, commit, wait_until

TOKEN = "sync-token-0b9d6f2e41"
RETRIES = "bookinfo/policies/retry-timeout.yaml"


@pytest.fixture
def guarded(install: Installation) -> Installation:
    install.secrets.write("gitops-api", "token", f"{TOKEN}\n".encode())
    install.server_overrides = {
        "gitops": {"sync": {"automated": False}, "api": {"tokenSecret": "gitops-api"}}
    }
    install.start_server()
    for cluster in CLUSTERS:
        install.start_agent(cluster)
    fleet = install.running.fleet
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: fleet.clusters[c].held_revision, what=f"{cluster} held")
    return install


def _api(install: Installation) -> str:
    return f"http://127.0.0.1:{install.running.ports['api']}"


def _nothing_synced(install: Installation) -> bool:
    fleet = install.running.fleet
    return fleet.approved is None and all(fleet.clusters[c].version == 0 for c in CLUSTERS)


def test_sync_needs_the_token_and_syncs_with_it(guarded: Installation) -> None:
    install = guarded
    fleet = install.running.fleet
    with httpx.Client(base_url=_api(install), timeout=30) as client:
        missing = client.post("/api/sync")
        assert missing.status_code == 401
        assert missing.json()["error"] == "Unauthorized"
        wrong = client.post("/api/sync", headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "Unauthorized", "detail": "token does not match"}
        # The endpoint answers after the sync is approved, so nothing can still be coming.
        assert _nothing_synced(install)
        # Reads stay open.
        assert client.get("/api/clusters").status_code == 200

        right = client.post("/api/sync", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 202
        head = install.running.bundle
        assert head is not None and right.json() == {"revision": head.revision}
    assert fleet.approved == head.revision
    install.wait_synced()
    for cluster in CLUSTERS:
        assert fleet.clusters[cluster].published_revision == head.revision


def test_gitops_sync_sends_the_token_from_a_file_or_the_environment(
    guarded: Installation, tmp_path: Path
) -> None:
    install = guarded
    fleet = install.running.fleet
    api = _api(install)
    runner = CliRunner()

    refused = runner.invoke(main, ["sync", "--api", api], env={"MESH_GITOPS_API_TOKEN": ""})
    assert refused.exit_code == 2
    assert "answered 401" in refused.output and "Unauthorized" in refused.output
    wrong_file = tmp_path / "wrong-token"
    wrong_file.write_text("not-the-token-4a1\n")
    refused = runner.invoke(main, ["sync", "--api", api, "--token-file", str(wrong_file)])
    assert refused.exit_code == 2
    assert "not-the-token-4a1" not in refused.output
    assert _nothing_synced(install)

    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    result = runner.invoke(main, ["sync", "--api", api, "--token-file", str(token_file)])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    install.wait_synced()

    # The next commit waits for a sync again; the token from the environment applies it.
    text = (install.repo / RETRIES).read_text()
    sha = commit(install.repo, "retries", {RETRIES: text.replace("attempts: 3", "attempts: 8")})
    install.running.reload()
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: fleet.clusters[c].held_revision == sha, what="held")
    result = runner.invoke(main, ["sync", "--api", api], env={"MESH_GITOPS_API_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert fleet.approved == sha
    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: fleet.clusters[c].published_revision == sha and install.synced(c),
            what=f"{cluster} synced at the commit",
        )


def test_a_token_file_that_cannot_be_read_stops_the_cli_before_any_request(
    tmp_path: Path,
) -> None:
    # No server at all: a request would fail with "cannot reach" instead.
    api = "http://127.0.0.1:9"
    runner = CliRunner()
    missing = runner.invoke(main, ["sync", "--api", api, "--token-file", str(tmp_path / "no")])
    assert missing.exit_code == 2
    assert "cannot read --token-file" in missing.output
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = runner.invoke(main, ["sync", "--api", api, "--token-file", str(empty)])
    assert result.exit_code == 2 and "is empty" in result.output
    spaced = tmp_path / "spaced"
    spaced.write_text("two words\n")
    result = runner.invoke(main, ["sync", "--api", api, "--token-file", str(spaced)])
    assert result.exit_code == 2 and "printable ASCII" in result.output
    assert "two words" not in result.output
