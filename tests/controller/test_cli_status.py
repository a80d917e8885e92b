"""`gitops status` against a real server and two real agents (Redis, Git, mTLS), read as a
user reads it: the table, the JSON, the exit code."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from controller.commands.status import sync_state
from tests.support.redis_server import running
from tests.support.runtime import CLUSTERS, Installation, commit, installation, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"
TOKEN = "s3cret-status-token"


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Installation]:
    for redis in running(tmp_path / "redis"):
        yield from installation(tmp_path / "install", redis.address)


def _status(install: Installation, *args: str) -> Result:
    api = f"http://127.0.0.1:{install.running.ports['api']}"
    return CliRunner().invoke(main, ["status", "--api", api, *args])


def _rows(output: str) -> dict[str, list[str]]:
    return {
        line.split()[0]: line.split() for line in output.splitlines() if line.startswith("cluster")
    }


def _head(install: Installation) -> str:
    return (install.repo / ".git" / "refs" / "heads" / "main").read_text().strip()


def test_after_a_sync_both_clusters_are_synced_with_their_objects(install: Installation) -> None:
    server = install.start_synced()
    head = _head(install)
    result = _status(install)
    assert result.exit_code == 0, result.output
    header, columns = result.output.splitlines()[:2]
    assert header == f"config {head[:8]}; safe mode off; leader"
    assert columns.split() == [
        "CLUSTER", "SYNC", "VERSION", "OBJECTS", "DRIFT", "PUBLISHED", "APPLIED"
    ]  # fmt: skip
    rows = _rows(result.output)
    assert sorted(rows) == list(CLUSTERS)
    for cluster in CLUSTERS:
        c = server.fleet.clusters[cluster]
        assert rows[cluster] == [
            cluster, "Synced", str(c.version), str(len(c.outputs)), "0", head[:8], head[:8]
        ]  # fmt: skip
        assert len(c.outputs) > 10
    assert "\x1b[" not in result.output  # no colour outside a terminal

    # The JSON says the same.
    result = _status(install, "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["revision"], body["leader"], body["inSync"]) == (head, True, True)
    assert body["safeMode"]["active"] is False
    got = {c["name"]: c for c in body["clusters"]}
    for cluster in CLUSTERS:
        c = server.fleet.clusters[cluster]
        assert got[cluster]["sync"] == "synced"
        assert got[cluster]["objects"] == len(c.outputs)
        assert got[cluster]["drift"] == 0
        assert got[cluster]["outputVersion"] == got[cluster]["appliedVersion"] == c.version
        assert got[cluster]["publishedRevision"] == got[cluster]["appliedRevision"] == head


def test_a_restarted_server_still_names_the_commit_each_cluster_runs(
    install: Installation,
) -> None:
    """The published commit is kept with the outputs in Redis: a restart (or another
    replica) knows it without a new commit, and posts sync statuses on it again."""
    install.start_synced()
    head = _head(install)
    server = install.restart_server()
    install.wait_synced()
    for cluster in CLUSTERS:
        assert server.fleet.clusters[cluster].published_revision == head
    result = _status(install)
    assert result.exit_code == 0, result.output
    for cluster in CLUSTERS:
        assert _rows(result.output)[cluster][1:2] + _rows(result.output)[cluster][5:] == [
            "Synced", head[:8], head[:8]
        ]  # fmt: skip


def test_a_stopped_agent_leaves_its_cluster_pending_after_a_commit(
    install: Installation,
) -> None:
    server = install.start_synced()
    first = _head(install)
    fleet = server.fleet
    before = {c: fleet.clusters[c].version for c in CLUSTERS}
    install.stop_agent("cluster2")
    wait_until(
        lambda: (
            fleet.clusters["cluster2"].push_streams == 0
            and fleet.clusters["cluster2"].pull_streams == 0
        ),
        what="cluster2's agent gone",
    )
    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "five retries", {RETRIES: text.replace("attempts: 3", "attempts: 5")}
    )
    server.reload()
    wait_until(
        lambda: all(fleet.clusters[c].version > before[c] for c in CLUSTERS),
        what="both clusters published",
    )
    install.wait_synced("cluster1")

    result = _status(install)
    assert result.exit_code == 1, result.output
    rows = _rows(result.output)
    assert rows["cluster1"][1:2] + rows["cluster1"][5:] == ["Synced", sha[:8], sha[:8]]
    # cluster2's agent still runs the first commit: its version is older than published.
    assert rows["cluster2"][1:2] + rows["cluster2"][5:] == ["Pending", sha[:8], first[:8]]
    assert "  cluster2: no agent connected" in result.output.splitlines()

    result = _status(install, "--format", "json")
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    got = {c["name"]: c for c in body["clusters"]}
    assert body["inSync"] is False and body["revision"] == sha != first
    assert (got["cluster1"]["sync"], got["cluster2"]["sync"]) == ("synced", "pending")
    assert got["cluster2"]["connected"] is False
    assert got["cluster2"]["appliedVersion"] == before["cluster2"]
    assert got["cluster2"]["appliedRevision"] == first
    assert got["cluster2"]["outputVersion"] == fleet.clusters["cluster2"].version


def test_a_commit_held_for_a_manual_sync_is_held_and_refused_one_refused(
    install: Installation,
) -> None:
    install.server_overrides = {"gitops": {"sync": {"automated": False, "failOnInvalid": True}}}
    server = install.start_server()
    for cluster in CLUSTERS:
        install.start_agent(cluster)
    fleet = server.fleet
    head = _head(install)
    wait_until(
        lambda: (
            all(fleet.clusters[c].held_revision == head for c in CLUSTERS if c in fleet.clusters)
            and set(CLUSTERS) <= set(fleet.clusters)
        ),
        what="the first commit held",
    )
    result = _status(install)
    assert result.exit_code == 1, result.output
    rows = _rows(result.output)
    assert [rows[c][1:] for c in CLUSTERS] == [["Held", "-", "0", "0", "-", "-"]] * 2
    assert f"  cluster1: {head[:8]} waits for a manual sync (gitops sync)" in result.output

    sha = commit(install.repo, "a broken file", {"bookinfo/routes/broken.yaml": "a: [\n"})
    server.reload()
    wait_until(lambda: fleet.clusters["cluster1"].refused_revision == sha, what="refused")
    body = json.loads(_status(install, "--format", "json").output)
    row = body["clusters"][0]
    assert (row["name"], row["sync"]) == ("cluster1", "refused")
    assert row["detail"].startswith(f"{sha[:8]} refused: ") and "failOnInvalid" in row["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_not_listening_is_exit_2_without_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    api = f"http://127.0.0.1:{_free_port()}"
    for extra, env in (
        (["--token-file", str(token_file)], {}),
        ([], {"MESH_GITOPS_API_TOKEN": TOKEN}),
    ):
        result = CliRunner().invoke(main, ["status", "--api", api, *extra], env=env)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: cannot reach {api}: ")
        assert "Traceback" not in result.output and TOKEN not in result.output
        assert result.stdout == ""


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    bad_format = CliRunner().invoke(main, ["status", "--format", "yaml"])
    assert bad_format.exit_code == 2 and "Invalid value for '--format'" in bad_format.output
    missing = CliRunner().invoke(main, ["status", "--token-file", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "Error: cannot read --token-file" in missing.output
    no_scheme = CliRunner().invoke(main, ["status", "--api", "localhost:1"])
    assert no_scheme.exit_code == 2 and no_scheme.stderr.startswith("Error: cannot reach")
    with_password = CliRunner().invoke(main, ["status", "--api", "http://u:pw@127.0.0.1:1"])
    assert with_password.exit_code == 2 and "pw" not in with_password.stderr


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": "cluster1",
        "connected": True,
        "outputVersion": 3,
        "appliedVersion": 3,
        "drift": 0,
        "awaited": False,
        "pushesFrozen": False,
        "errors": 0,
        "publishedRevision": "a" * 40,
        "appliedRevision": "a" * 40,
        "refused": None,
        "heldRevision": None,
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, "synced"),
        ({"drift": 2}, "synced"),
        ({"appliedVersion": 2, "appliedRevision": None}, "pending"),
        ({"outputVersion": None, "appliedVersion": None}, "pending"),
        # The same number from an older cache generation is not the published version.
        ({"appliedRevision": None}, "pending"),
        ({"heldRevision": "b" * 40}, "held"),
        ({"errors": 1, "heldRevision": "b" * 40}, "failed"),
        ({"refused": {"revision": "b" * 40, "reason": "x"}, "errors": 1}, "refused"),
        ({"awaited": True, "refused": {"revision": "b" * 40, "reason": "x"}}, "awaited"),
        ({"pushesFrozen": True}, "awaited"),
    ],
)
def test_sync_state_of_one_row(changes: dict[str, Any], state: str) -> None:
    assert sync_state(_row(**changes)) == state


def test_gitops_sync_reports_a_bad_or_unreachable_api_without_traceback_or_password() -> None:
    no_scheme = CliRunner().invoke(main, ["sync", "--api", "localhost:1"])
    assert no_scheme.exit_code == 2 and no_scheme.stderr.startswith("Error: cannot reach")
    assert no_scheme.exception is None or isinstance(no_scheme.exception, SystemExit)
    with_password = CliRunner().invoke(main, ["sync", "--api", "http://u:pw@127.0.0.1:1"])
    assert with_password.exit_code == 2 and with_password.stderr.startswith("Error: cannot reach")
    assert "pw" not in with_password.stderr
