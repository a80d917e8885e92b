"""End to end: what happens in a directory-backed cluster reaches the server.

Drift: an owned file edited or deleted by hand is reported by the agent's watch and shows
in the server's cluster state and `/api/clusters`. NACK: an object the backend cannot
write is NACKed with an error naming it; the server records the NACK, does not count that
version as applied, and its next publish sends the whole desired set (a delta from the
NACKed version would skip the object that failed), so the cluster converges once the
obstacle is gone.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from controller.server.fleet_view import FleetView
from tests.support.runtime import Installation, commit, owned_files, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"
OUTLIERS = "bookinfo/virtual-destinations/outlier-detection.yaml"


def _api_cluster(install: Installation, name: str) -> dict[str, Any]:
    port = install.running.ports["api"]
    body = httpx.get(f"http://127.0.0.1:{port}/api/clusters", timeout=10).json()
    (found,) = [c for c in body["clusters"] if c["name"] == name]
    return dict(found)


def _drift(install: Installation, name: str) -> int:
    (state,) = [s for s in FleetView(install.running.fleet).clusters() if s.name == name]
    return state.drift


def _edit(install: Installation, repo_file: str, old: str, new: str) -> None:
    text = (install.repo / repo_file).read_text()
    assert old in text
    commit(install.repo, f"{old} -> {new}", {repo_file: text.replace(old, new)})


def test_hand_edits_and_deletions_of_owned_files_are_reported_as_drift(
    install: Installation,
) -> None:
    # Reported only: with selfHeal (the default) they would be put back at once.
    install.server_overrides = {"gitops": {"sync": {"selfHeal": False}}}
    install.start_server()
    install.start_agent("cluster1")
    install.start_agent("cluster2")
    install.wait_synced()
    root = install.cluster_dir("cluster1")
    edited, deleted = sorted(owned_files(root))[:2]
    assert _drift(install, "cluster1") == 0

    path = root / edited
    path.write_text(path.read_text().replace("mesh-gitops", "someone-else", 1) + "\n# hand\n")
    wait_until(lambda: _drift(install, "cluster1") == 1, what="the edit reported as drift")
    assert _api_cluster(install, "cluster1")["drift"] == 1

    (root / deleted).unlink()
    wait_until(lambda: _drift(install, "cluster1") == 2, what="the deletion reported as drift")
    assert _api_cluster(install, "cluster1")["drift"] == 2
    # Only cluster1 drifted; the agent never deletes what it did not write.
    assert _drift(install, "cluster2") == 0
    assert path.exists()


def _nacks(install: Installation, cluster: str) -> float:
    """The NACK counter of `/metrics`, as Prometheus would scrape it."""
    port = install.running.ports["metrics"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            named = "nack" in sample.name and sample.name.endswith("_total")
            if named and sample.labels.get("cluster") == cluster:
                return float(sample.value)
    return 0.0


def _retried(doc: dict[str, Any]) -> bool:
    return any("retries" in route for route in doc.get("spec", {}).get("http", []))


def test_an_object_that_cannot_be_applied_is_nacked_then_converges(
    install: Installation,
) -> None:
    server = install.start_server()
    install.start_agent("cluster1")
    install.start_agent("cluster2")
    install.wait_synced()
    fleet = server.fleet
    c1 = fleet.clusters["cluster1"]
    root = install.cluster_dir("cluster1")
    target = next(rel for rel, doc in sorted(owned_files(root).items()) if _retried(doc))
    good, before = c1.applied, c1.version
    nacks = _nacks(install, "cluster1")

    # A directory where the file should go: the write fails even for root. The agent
    # reports the missing file as drift, and selfHeal's resend of the current version may
    # be NACKed first: wait for the NACK of the new commit's version.
    (root / target).unlink()
    (root / target).mkdir()
    (root / target / "keep").write_text("not yours\n")
    _edit(install, RETRIES, "attempts: 3", "attempts: 5")
    server.reload()
    wait_until(lambda: c1.version > before and c1.errors, what="cluster1 to NACK")
    (failed,) = c1.errors
    name = target.rpartition(".yaml")[0].partition(".")[2]
    assert "VirtualService" in failed and name in failed
    assert target in c1.errors[failed]
    assert c1.applied == good != fleet.wire_version(c1.version)
    agent = fleet.store.agent("cluster1")
    assert agent["errors"] == "1" and name in agent["error_details"]
    assert _nacks(install, "cluster1") > nacks
    install.wait_synced("cluster2")  # the other cluster is not held back

    # The obstacle goes; the next publish changes another object only, but the agent gets
    # everything (it never applied the NACKed version), so the retried route lands too.
    (root / target / "keep").unlink()
    (root / target).rmdir()
    full = c1.sent_full
    _edit(install, OUTLIERS, "baseEjectionTime: 30s", "baseEjectionTime: 60s")
    server.reload()
    install.wait_synced()
    assert c1.sent_full > full and c1.errors == {}
    assert install.converged("cluster1") and install.converged("cluster2")
    retries = [r["retries"]["attempts"] for r in owned_files(root)[target]["spec"]["http"]]
    assert set(retries) == {5}
