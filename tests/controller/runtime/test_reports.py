"""End to end: every commit status links to `/reports/<sha>` on the server's API listener,
and that URL serves the commit's report (JSON and HTML) while the server runs and after it
restarts (from Redis)."""

from __future__ import annotations

from typing import Any

import httpx

from gitops.statuses import Status
from tests.support.runtime import Installation, commit, notes_on, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"
CONTEXTS = {
    "mesh-gitops/translation",
    "mesh-gitops/sync/cluster1",
    "mesh-gitops/sync/cluster2",
    "mesh-gitops/drift/cluster1",
    "mesh-gitops/drift/cluster2",
}


def _all_success(install: Installation, sha: str) -> dict[str, Status] | None:
    found = notes_on(install.repo, sha)
    done = found.keys() == CONTEXTS and all(s.state.value == "success" for s in found.values())
    return found if done else None


def _report(url: str) -> dict[str, Any]:
    response = httpx.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_statuses_link_to_the_report_of_their_commit(install: Installation) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    server = install.start_synced()
    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )
    statuses = wait_until(lambda: _all_success(install, sha), what="statuses on the commit")

    url = f"http://127.0.0.1:{server.ports['api']}/reports/{sha}"
    assert {s.target_url for s in statuses.values()} == {url}
    # What the note holds is what the reporter wants: nothing is due to be posted again.
    reporter = server.loop.reporter if server.loop else None
    assert reporter is not None
    wanted = {context: s for (at, context), s in reporter.wanted().items() if at == sha}
    assert wanted == statuses

    body = wait_until(
        lambda: (
            (b := _report(url))["sections"].get("sync", {}).get("clusters", {}).keys()
            == {"cluster1", "cluster2"}
            and b
        ),
        what="both clusters in the report",
    )
    assert body["sha"] == sha
    for name in ("cluster1", "cluster2"):
        row = body["sections"]["sync"]["clusters"][name]
        cluster = server.fleet.clusters[name]
        assert row["state"] == "success"
        assert row["publishedVersion"] == row["appliedVersion"] == cluster.version
        assert row["objects"] == len(cluster.outputs) > 0
        assert row["drift"] == 0 and row["errors"] == []
    translation = body["sections"]["translation"]
    translated = server.fleet.translated
    assert translated is not None and translated.revision == sha
    assert translation["state"] == "success"
    assert translation["counts"]["ACCEPTED"] == len(translated.reports) > 0
    assert translation["counts"]["INVALID"] == 0
    assert set(body["sections"]["statuses"]["statuses"]) == CONTEXTS

    page = httpx.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for shown in ("cluster1", "cluster2", "ACCEPTED", str(len(translated.reports)), sha):
        assert shown in page.text
    assert httpx.get(f"{url}.json").json() == body

    # A restarted server has nothing in memory: the report comes from Redis.
    server = install.restart_server()
    again = _report(f"http://127.0.0.1:{server.ports['api']}/reports/{sha}.json")
    assert again["sections"]["sync"] == body["sections"]["sync"]
    assert again["sections"]["translation"] == translation


def test_an_invalid_resource_is_listed_with_its_file_and_escaped_in_the_page(
    install: Installation,
) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    server = install.start_synced()
    text = (install.repo / RETRIES).read_text()
    # The loader takes any string as a name: a hostile one reaches the report as data.
    hostile = text.replace("attempts: 3", 'attempts: "x"').replace(
        "name: reviews-retries", 'name: "<script>alert(1)</script>"'
    )
    assert hostile != text
    sha = commit(install.repo, "hostile", {RETRIES: hostile})
    wait_until(
        lambda: (
            (s := notes_on(install.repo, sha).get("mesh-gitops/translation"))
            and s.state.value == "failure"
        ),
        what="the translation status",
    )
    url = f"http://127.0.0.1:{server.ports['api']}/reports/{sha}"
    translation = _report(url)["sections"]["translation"]
    assert translation["state"] == "failure"
    problems = translation["resources"] + translation["diagnostics"]
    assert any(p.get("file") == RETRIES and p.get("line", 0) > 0 for p in problems), problems
    assert [r["name"] for r in translation["resources"]] == ["<script>alert(1)</script>"]
    assert translation["counts"]["INVALID"] == 1
    page = httpx.get(url).text
    assert RETRIES in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page, "the hostile name, shown escaped"


def test_a_nack_whose_errors_change_under_the_same_status_rebuilds_the_report(
    install: Installation,
) -> None:
    """The sync status shows the first error and a count; the report lists every error,
    so a NACK that changes only the later errors must still rewrite the report."""
    server = install.start_synced()
    fleet = server.fleet
    sha = fleet.clusters["cluster1"].published_revision
    assert sha is not None
    url = f"http://127.0.0.1:{server.ports['api']}/reports/{sha}.json"
    version = fleet.wire_version(fleet.clusters["cluster1"].version)

    def errors_shown() -> list[str]:
        response = httpx.get(url)
        if response.status_code == 404:  # not written yet
            return []
        rows = response.json()["sections"].get("sync", {}).get("clusters", {})
        return [e["object"] for e in rows.get("cluster1", {}).get("errors", [])]

    def sync_status() -> Status | None:
        return notes_on(install.repo, sha).get("mesh-gitops/sync/cluster1")

    # What the relay hands the fleet when the agent NACKs (controller/server/streams.py).
    fleet.acked("cluster1", version, {"a": "cannot write a", "b": "cannot write b"})
    wait_until(lambda: errors_shown() == ["a", "b"], what="the first NACK in the report")
    first = wait_until(
        lambda: (s := sync_status()) and s.state.value == "failure" and s, what="a failure"
    )
    fleet.acked("cluster1", version, {"a": "cannot write a", "c": "cannot write c"})
    wait_until(lambda: errors_shown() == ["a", "c"], what="the second NACK in the report")
    assert sync_status() == first, "the same status: only the report had something new"
