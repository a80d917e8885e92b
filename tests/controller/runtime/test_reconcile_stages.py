"""The server times each stage of a reconcile (`mesh_gitops_reconcile_stage_seconds`):
a commit is fetched, loaded, translated and published, and `/metrics` says how long each
took. `bench/e2e.py` splits its commit-to-applied latency with these."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from controller.server.app import Server
from tests.support.runtime import Installation, commit, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"
STAGES = ("fetch", "load", "translate", "publish")


def _stages(server: Server) -> dict[str, tuple[float, float]]:
    """stage -> (count, sum of seconds), scraped from the metrics listener."""
    text = httpx.get(f"http://127.0.0.1:{server.ports['metrics']}/metrics").text
    found: dict[str, tuple[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mesh_gitops_reconcile_stage_seconds":
            continue
        for sample in family.samples:
            count, total = found.get(sample.labels["stage"], (0.0, 0.0))
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            found[sample.labels["stage"]] = (count, total)
    return found


def test_a_commit_is_timed_stage_by_stage(install: Installation) -> None:
    server = install.start_synced()
    started = _stages(server)
    # The start itself fetched, loaded, translated and published the first commit.
    assert all(started.get(stage, (0, 0))[0] >= 1 for stage in STAGES), started
    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 6")}
    )
    server.reload()
    wait_until(lambda: server.fleet.clusters["cluster1"].published_revision == sha, what="publish")
    wait_until(lambda: _stages(server)["publish"][0] > started["publish"][0], what="publish")
    after = _stages(server)
    for stage in STAGES:
        assert after[stage][0] > started[stage][0], stage
        assert after[stage][1] > started[stage][1], stage
