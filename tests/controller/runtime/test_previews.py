"""Pull-request previews in `gitops serve` (`controller/server/previews.py`).

End to end: a ref `refs/pull/N/head` in the config repository gets `mesh-gitops/preview`
as a git note and a `preview` report section; a commit to main recomputes it against the
new base; a conflicting ref fails naming the file; a Service an agent discovers turns a
failing preview (a route to that missing service) into a passing one. The pass-by-pass
behaviour (stale marking, change detection, the inputs rate limit, closed refs, remote
discovery) is driven through `check` and `refresh` on a real repository, with snapshots
from `deploy/demo/clusters`. `tests/controller/server/test_previews_plan.py` has `plan`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pygit2
import pytest

from controller.server.commit_reports import CommitReports, Section
from controller.server.preview_inputs import local_refs, matches, objects_tree
from controller.server.previews import Previews
from controller.sources import git
from controller.sources.snapshots import read_snapshot_dir
from controller.store.snapshot_dir import read_objects
from gitops import pipeline
from gitops.helm.gitops_block import Previews as PreviewSettings
from gitops.statuses import Status, StatusState
from gitops.tree import Tree
from tests.support.git_servers import run_git
from tests.support.runtime import (
    DEMO_CLUSTERS,
    Installation,
    commit,
    config_repo,
    notes_on,
    wait_until,
)

RETRIES = "bookinfo/policies/retry-timeout.yaml"
FAULT = "bookinfo/policies/fault-injection.yaml"
RATINGS = "bookinfo/routes/ratings.yaml"
CONTEXT = "mesh-gitops/preview"
PATTERNS = tuple(PreviewSettings().refs)
#: A Service `nosuch` next to `ratings` (what `to_nosuch` routes to), as an agent discovers it.
NOSUCH = """\
apiVersion: v1
kind: Service
metadata:
  name: nosuch
  namespace: bookinfo-backends
  labels:
    app: ratings
spec:
  selector:
    app: ratings
  ports:
  - name: http
    port: 9080
    protocol: TCP
    targetPort: 9080
"""


def pull_request(repo: Path, number: int, files: dict[str, str], start: str = "main") -> str:
    """Commit `files` on a branch from `start` and point `refs/pull/<number>/head` at it,
    as a Git host does for a pull request; main and the working copy stay where they were."""
    branch = f"pr-{number}"
    run_git(repo, "checkout", "-q", "-b", branch, start)
    sha = commit(repo, f"pull request {number}", files)
    run_git(repo, "checkout", "-q", "main")
    run_git(repo, "update-ref", f"refs/pull/{number}/head", sha)
    return sha


def edited(repo: Path, rel: str, old: str, new: str) -> dict[str, str]:
    text = (repo / rel).read_text()
    assert old in text, f"{old!r} not in {rel}"
    return {rel: text.replace(old, new, 1)}


def to_nosuch(repo: Path) -> dict[str, str]:
    """The ratings route sent to a service `nosuch`: INVALID until a cluster has it."""
    old = "      - ref:\n          name: ratings"
    return edited(repo, RATINGS, old, "      - ref:\n          name: nosuch")


# -- units: patterns and snapshot trees ------------------------------------------------------------


def test_default_patterns_match_pull_and_merge_request_heads_only() -> None:
    assert matches("refs/pull/12/head", PATTERNS)
    assert matches("refs/merge-requests/7/head", PATTERNS)
    assert not matches("refs/pull/12/merge", PATTERNS)
    assert not matches("refs/heads/main", PATTERNS)


def test_local_refs_lists_matching_refs_with_their_commits(tmp_path: Path) -> None:
    repo_path = config_repo(tmp_path / "repo")
    main = run_git(repo_path, "rev-parse", "main")
    for ref in ("refs/pull/1/head", "refs/pull/1/merge", "refs/merge-requests/3/head"):
        run_git(repo_path, "update-ref", ref, main)
    run_git(repo_path, "branch", "feature")
    repo = pygit2.Repository(str(repo_path))
    try:
        found = local_refs(repo, PATTERNS)
    finally:
        repo.free()
    assert found == {"refs/merge-requests/3/head": main, "refs/pull/1/head": main}


def test_objects_tree_reads_like_the_snapshot_directory_it_came_from() -> None:
    objects = read_objects(DEMO_CLUSTERS)
    from_dir = pipeline.load_inputs(read_snapshot_dir(DEMO_CLUSTERS))
    from_objects = pipeline.load_inputs({n: objects_tree(n, o) for n, o in objects.items()})
    for name, inputs in from_dir.items():
        other = from_objects[name]
        assert {(s.namespace, s.name) for s in other.services} == {
            (s.namespace, s.name) for s in inputs.services
        }
        assert other.service_accounts == inputs.service_accounts
        assert other.namespaces.keys() == inputs.namespaces.keys()
        assert not other.diagnostics


# -- passes on a real repository ----------------------------------------------------------------


def _snapshots() -> Mapping[str, Tree]:
    return read_snapshot_dir(DEMO_CLUSTERS)


def _previews(path: Path, reports: CommitReports, url: str | None = None) -> Previews:
    return Previews(
        path,
        "main",
        PATTERNS,
        snapshots=_snapshots,
        inputs=lambda: {"cluster1": 1, "cluster2": 1},
        reports=reports,
        url=url,
    )


def _status(previews: Previews, sha: str) -> Status:
    return previews.statuses()[(sha, CONTEXT)]


def _section(reports: CommitReports, sha: str) -> Section:
    sections = reports.get(sha)
    assert sections is not None and "preview" in sections, f"no preview report on {sha[:12]}"
    return sections["preview"]


def test_base_move_marks_the_preview_stale_then_recomputes_it(tmp_path: Path) -> None:
    repo = config_repo(tmp_path / "repo")
    head = pull_request(repo, 1, edited(repo, RETRIES, "attempts: 3", "attempts: 6"))
    reports = CommitReports()
    previews = _previews(repo, reports)

    jobs = previews.refresh()
    assert [job.ref for job in jobs] == ["refs/pull/1/head"]
    first_base = run_git(repo, "rev-parse", "main")
    pending = _status(previews, head)
    assert pending.state is StatusState.PENDING
    assert pending.description == f"computing preview against {first_base[:12]}"

    assert previews.check() == 1
    done = _status(previews, head)
    assert done.state is StatusState.SUCCESS
    assert "cluster1: +0 ~" in done.description and "cluster2" in done.description
    section = _section(reports, head)
    assert section.document["base"] == first_base and section.document["stale"] is False
    assert section.document["changed"] is True
    assert section.markdown and "refs/pull/1/head" in section.markdown
    # Nothing moved: the next pass computes nothing and the status stays.
    assert previews.check() == 0
    assert _status(previews, head) == done

    new_base = commit(repo, "slower fault", edited(repo, FAULT, "fixedDelay: 2s", "fixedDelay: 3s"))
    jobs = previews.refresh()
    assert [job.ref for job in jobs] == ["refs/pull/1/head"]
    stale = _status(previews, head)
    assert stale.state is StatusState.PENDING
    assert stale.description == f"base moved to {new_base[:12]}; previous preview stale"
    old = _section(reports, head)
    assert old.document["stale"] is True and old.document["base"] == first_base
    assert old.markdown and old.markdown.startswith("> **Stale**")

    assert previews.check() == 1
    assert _status(previews, head).state is StatusState.SUCCESS
    fresh = _section(reports, head)
    assert fresh.document["base"] == new_base and fresh.document["stale"] is False


def test_conflicts_invalid_resources_and_broken_files_fail_and_closed_refs_are_forgotten(
    tmp_path: Path,
) -> None:
    repo = config_repo(tmp_path / "repo")
    start = run_git(repo, "rev-parse", "main")
    commit(repo, "slower fault", edited(repo, FAULT, "fixedDelay: 2s", "fixedDelay: 3s"))
    clash = pull_request(repo, 2, edited(repo, FAULT, "fixedDelay: 3s", "fixedDelay: 4s"))
    # Branched before main's change, changing the same line another way.
    run_git(repo, "checkout", "-q", "-b", "old", start)
    conflict = commit(repo, "faster fault", edited(repo, FAULT, "fixedDelay: 2s", "fixedDelay: 1s"))
    run_git(repo, "checkout", "-q", "main")
    run_git(repo, "update-ref", "refs/pull/3/head", conflict)
    broken = pull_request(repo, 4, to_nosuch(repo))
    unparsable = pull_request(repo, 6, {"bookinfo/broken.yaml": "kind: [unclosed\n"})
    reports = CommitReports()
    previews = _previews(repo, reports)
    assert previews.check() == 4

    assert _status(previews, clash).state is StatusState.SUCCESS
    failed = _status(previews, conflict)
    assert failed.state is StatusState.FAILURE
    assert failed.description == f"merge conflict in {FAULT}"
    assert _section(reports, conflict).document["conflicts"] == [FAULT]
    invalid = _status(previews, broken)
    assert invalid.state is StatusState.FAILURE
    assert "newly invalid" in invalid.description
    assert any("INVALID" in i for i in _section(reports, broken).document["invalid"])

    file_error = _status(previews, unparsable)
    assert file_error.state is StatusState.FAILURE
    assert "file errors in bookinfo/broken.yaml" in file_error.description

    run_git(repo, "update-ref", "-d", "refs/pull/3/head")
    assert previews.check() == 0
    assert set(previews.open_refs()) == {"refs/pull/2/head", "refs/pull/4/head", "refs/pull/6/head"}
    assert (conflict, CONTEXT) not in previews.statuses()


def test_a_head_that_cannot_be_read_gets_status_error(tmp_path: Path) -> None:
    repo = config_repo(tmp_path / "repo")
    head = pull_request(repo, 5, {"bookinfo/extra.yaml": "kind: Namespace\n"})
    reports = CommitReports()
    # A configuration folder only in the working copy, in neither commit: nothing to render.
    (repo / "nowhere").mkdir()
    previews = _previews(repo / "nowhere", reports)
    assert previews.check() == 1
    status = _status(previews, head)
    assert status.state is StatusState.ERROR
    assert status.description.startswith("preview could not be computed:")
    assert "error" in _section(reports, head).document


def test_new_inputs_recompute_a_preview_once_per_interval_keeping_its_status(
    tmp_path: Path,
) -> None:
    repo = config_repo(tmp_path / "repo")
    head = pull_request(repo, 4, to_nosuch(repo))
    clusters = tmp_path / "clusters"
    shutil.copytree(DEMO_CLUSTERS, clusters)
    versions = {"cluster1": 1, "cluster2": 1}
    now = [1000.0]
    reports = CommitReports()
    previews = Previews(
        repo,
        "main",
        PATTERNS,
        snapshots=lambda: read_snapshot_dir(clusters),
        inputs=lambda: dict(versions),
        reports=reports,
        interval=30.0,
        clock=lambda: now[0],
    )
    assert previews.check() == 1
    failed = _status(previews, head)
    assert failed.state is StatusState.FAILURE and "newly invalid" in failed.description

    # cluster1's agent discovers the service the route needs (an input delta), 10s later.
    (clusters / "cluster1" / "bookinfo-backends" / "nosuch.yaml").write_text(NOSUCH)
    versions["cluster1"] += 1
    now[0] += 10
    assert previews.check() == 0  # within the interval: it waits
    assert _status(previews, head) == failed  # neither pending nor stale meanwhile
    kept = _section(reports, head)
    assert kept.document["stale"] is False and kept.document["invalid"]

    now[0] += 20  # the interval since the last computation has passed
    assert previews.check() == 1
    fixed = _status(previews, head)
    assert fixed.state is StatusState.SUCCESS, fixed.description
    assert _section(reports, head).document["invalid"] == []

    # More churn right after: again at most once per interval.
    versions["cluster2"] += 1
    now[0] += 1
    assert previews.check() == 0
    now[0] += 29
    assert previews.check() == 1
    assert _status(previews, head) == fixed


def test_a_remote_source_fetches_moved_pull_refs_into_the_cache(tmp_path: Path) -> None:
    work = config_repo(tmp_path / "work")
    head = pull_request(work, 7, edited(work, RETRIES, "attempts: 3", "attempts: 6"))
    bare = tmp_path / "remote.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    run_git(bare, "update-ref", "refs/pull/7/head", head)
    url = bare.as_uri()
    git.open_remote(url, "main", tmp_path / "cache")  # the server's first fetch
    cache = git.cache_path(url, tmp_path / "cache")
    reports = CommitReports()
    previews = _previews(cache, reports, url=url)

    assert previews.check() == 1
    assert _status(previews, head).state is StatusState.SUCCESS
    assert run_git(cache, "rev-parse", "refs/pull/7/head") == head
    assert previews.check() == 0

    run_git(bare, "update-ref", "-d", "refs/pull/7/head")  # the pull request is closed
    assert previews.check() == 0
    assert previews.open_refs() == {}
    with pytest.raises(AssertionError):
        run_git(cache, "rev-parse", "--verify", "-q", "refs/pull/7/head")


# -- end to end --------------------------------------------------------------------------------


def _posted(install: Installation, sha: str, state: str) -> Status | None:
    status = notes_on(install.repo, sha).get(CONTEXT)
    return status if status is not None and status.state.value == state else None


def test_a_pull_request_ref_gets_a_preview_status_and_report(install: Installation) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    repo = install.repo
    # The ref folders exist before the local watch starts: watchdog warns (an error here)
    # when a folder and its subfolder appear at once under a recursive watch.
    for number in (1, 2):
        (repo / ".git" / "refs" / "pull" / str(number)).mkdir(parents=True)
    server = install.start_synced()
    head = pull_request(repo, 1, edited(repo, RETRIES, "attempts: 3", "attempts: 6"))

    status = wait_until(lambda: _posted(install, head, "success"), what="the preview status")
    assert "cluster1: +0 ~" in status.description and "cluster2: +0 ~" in status.description
    loop = server.loop
    assert loop is not None
    first = _section(loop.reports, head)
    main = run_git(repo, "rev-parse", "main")
    assert first.document["base"] == main and first.document["ref"] == "refs/pull/1/head"

    # main moves: the preview is recomputed against the new base.
    new_base = commit(repo, "slower fault", edited(repo, FAULT, "fixedDelay: 2s", "fixedDelay: 3s"))
    wait_until(
        lambda: _section(loop.reports, head).document["base"] == new_base, what="the recompute"
    )
    assert _section(loop.reports, head).document["stale"] is False
    wait_until(lambda: _posted(install, head, "success"), what="the recomputed status")

    # A pull request branched before that commit, changing the same line: a conflict.
    old = first.document["base"]
    run_git(repo, "checkout", "-q", "-b", "clash", old)
    clash = commit(repo, "faster fault", edited(repo, FAULT, "fixedDelay: 2s", "fixedDelay: 1s"))
    run_git(repo, "checkout", "-q", "main")
    run_git(repo, "update-ref", "refs/pull/2/head", clash)
    failed = wait_until(lambda: _posted(install, clash, "failure"), what="the conflict status")
    assert failed.description == f"merge conflict in {FAULT}"


def test_a_service_an_agent_discovers_recomputes_an_open_preview(install: Installation) -> None:
    install.server_overrides = {"gitops": {"repo": {"interval": "1s"}}}
    repo = install.repo
    (repo / ".git" / "refs" / "pull" / "4").mkdir(parents=True)  # see the test above
    server = install.start_synced()
    head = pull_request(repo, 4, to_nosuch(repo))
    failed = wait_until(lambda: _posted(install, head, "failure"), what="the failing preview")
    assert "newly invalid" in failed.description
    loop = server.loop
    assert loop is not None
    assert _section(loop.reports, head).document["invalid"]

    # Neither the pull request nor main moves: only cluster1's inputs do.
    (install.cluster_dir("cluster1") / "bookinfo-backends" / "nosuch.yaml").write_text(NOSUCH)
    fixed = wait_until(lambda: _posted(install, head, "success"), what="the recomputed preview")
    assert "newly invalid" not in fixed.description
    section = _section(loop.reports, head)
    assert section.document["invalid"] == [] and section.document["stale"] is False
    assert section.document["base"] == run_git(repo, "rev-parse", "main")
