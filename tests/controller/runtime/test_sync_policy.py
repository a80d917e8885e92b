"""End to end: the sync policy (`gitops.sync`): self-heal, prune, allowEmpty, failOnInvalid."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from controller.cli import main
from tests.support.runtime import Installation, commit, owned_files, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"
REVIEWS = "bookinfo/routes/reviews.yaml"


def test_self_heal_puts_a_hand_edited_file_back(install: Installation) -> None:
    server = install.start_synced()
    root = install.cluster_dir("cluster1")
    rel = sorted(owned_files(root))[0]
    original = (root / rel).read_text()
    (root / rel).write_text(original.replace("mesh-gitops", "someone-else", 1))
    wait_until(lambda: (root / rel).read_text() == original, what="the file put back")
    wait_until(lambda: server.fleet.clusters["cluster1"].drift == 0, what="drift cleared")


def _config_files(repo: Path) -> list[str]:
    keep = ("clusters/", "workspaces/", "helm/")
    return sorted(
        str(p.relative_to(repo))
        for p in repo.rglob("*.yaml")
        if ".git" not in p.parts and not str(p.relative_to(repo)).startswith(keep)
    )


def test_a_commit_that_would_empty_the_clusters_is_refused(install: Installation) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    server = install.start_synced()
    before = {c: dict(server.fleet.clusters[c].outputs) for c in ("cluster1", "cluster2")}
    sha = commit(install.repo, "delete everything", dict.fromkeys(_config_files(install.repo)))
    c1 = server.fleet.clusters["cluster1"]
    wait_until(lambda: c1.refused_revision == sha, what="the commit considered")
    assert "refusing to prune all" in c1.refused
    for cluster, outputs in before.items():
        assert dict(server.fleet.clusters[cluster].outputs) == outputs
        assert install.converged(cluster)


def test_prune_off_keeps_what_the_translation_stopped_rendering(install: Installation) -> None:
    install.server_overrides = {"gitops": {"sync": {"prune": False}}}
    server = install.start_synced()
    c1 = server.fleet.clusters["cluster1"]
    routes = {o for o in c1.outputs if "reviews" in o.name and o.kind == "VirtualService"}
    assert routes
    sha = commit(install.repo, "drop the reviews routes", {REVIEWS: None})
    server.reload()
    fleet = server.fleet
    wait_until(
        lambda: fleet.translated is not None and fleet.translated.revision == sha,
        what="the commit translated",
    )
    assert routes <= set(c1.outputs)  # not pruned
    assert install.converged("cluster1")


def test_fail_on_invalid_publishes_nothing_of_a_commit_with_an_invalid_resource(
    install: Installation,
) -> None:
    install.server_overrides = {"gitops": {"sync": {"failOnInvalid": True}}}
    server = install.start_synced()
    before = {c: dict(server.fleet.clusters[c].outputs) for c in ("cluster1", "cluster2")}
    text = (install.repo / RETRIES).read_text()
    sha = commit(
        install.repo,
        "a good change and a bad file",
        {
            RETRIES: text.replace("attempts: 3", "attempts: 7"),
            "bookinfo/routes/broken.yaml": "apiVersion: [unclosed\n",
        },
    )
    server.reload()
    c1 = server.fleet.clusters["cluster1"]
    wait_until(lambda: c1.refused_revision == sha, what="the commit considered")
    assert "failOnInvalid" in c1.refused
    for cluster, outputs in before.items():
        assert dict(server.fleet.clusters[cluster].outputs) == outputs


def test_with_automated_sync_off_a_commit_waits_for_gitops_sync(install: Installation) -> None:
    install.server_overrides = {"gitops": {"sync": {"automated": False}}}
    server = install.start_server()
    for cluster in ("cluster1", "cluster2"):
        install.start_agent(cluster)
    fleet = server.fleet
    wait_until(lambda: fleet.clusters["cluster1"].held_revision, what="the first commit held")
    assert fleet.clusters["cluster1"].version == 0  # nothing applied without a sync
    api = f"http://127.0.0.1:{server.ports['api']}"
    result = CliRunner().invoke(main, ["sync", "--api", api])
    assert result.exit_code == 0, result.output
    install.wait_synced()
    # A new commit waits again; `gitops sync` applies it.
    before = fleet.clusters["cluster1"].version
    text = (install.repo / RETRIES).read_text()
    sha = commit(install.repo, "retries", {RETRIES: text.replace("attempts: 3", "attempts: 8")})
    server.reload()
    wait_until(lambda: fleet.clusters["cluster1"].held_revision == sha, what="the commit held")
    assert fleet.clusters["cluster1"].version == before
    assert CliRunner().invoke(main, ["sync", "--api", api]).exit_code == 0
    wait_until(
        lambda: fleet.clusters["cluster1"].version > before and install.synced("cluster1"),
        what="the synced commit applied",
    )
    assert fleet.clusters["cluster1"].published_revision == sha
