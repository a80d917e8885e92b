"""Previews end to end: a real Git repository made from examples-repo/, two branches, the demo
snapshots; the merge conflict case; and `gitops diff`'s output formats and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.commands.diff import diff
from controller.preview import MergeConflict, preview
from controller.sources.directory import SourceError
from controller.sources.snapshots import read_snapshot_dir
from gitops.preview import Change
from tests.support.git_servers import run_git

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "deploy" / "demo" / "clusters"
REVIEWS = ROOT / "examples-repo" / "bookinfo" / "routes" / "reviews.yaml"

ACCESS_POLICY = """\
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata:
  name: ratings-callers
  namespace: bookinfo-backends
spec:
  applyToWorkloads:
  - selector:
      labels:
        app: ratings
  config:
    authz:
      allowedClients:
      - serviceAccountSelector:
          name: bookinfo-reviews
          namespace: bookinfo-backends
"""


def _commit(repo: Path, message: str) -> None:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)


def _reweight(repo: Path, v1: int, v2: int) -> None:
    path = repo / "bookinfo" / "routes" / "reviews.yaml"
    text = REVIEWS.read_text()
    assert "weight: 80" in text and "weight: 20" in text
    path.write_text(
        text.replace("weight: 80", f"weight: {v1}").replace("weight: 20", f"weight: {v2}")
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main = examples-repo; canary = 50/50 reviews; access = + an AccessPolicy;
    clash-a / clash-b = two different weights on the same line."""
    root = tmp_path_factory.mktemp("previews") / "config"
    shutil.copytree(ROOT / "examples-repo", root)
    run_git(root, "init", "-q", "-b", "main")
    _commit(root, "examples")
    for branch, change in (
        ("canary", lambda: _reweight(root, 50, 50)),
        (
            "access",
            lambda: (root / "bookinfo" / "policies" / "ratings-callers.yaml").write_text(
                ACCESS_POLICY
            ),
        ),
        ("clash-a", lambda: _reweight(root, 60, 40)),
        ("clash-b", lambda: _reweight(root, 70, 30)),
    ):
        run_git(root, "checkout", "-q", "-b", branch, "main")
        change()
        _commit(root, branch)
    run_git(root, "checkout", "-q", "main")
    return root


def test_weight_change_is_previewed_per_cluster(repo: Path) -> None:
    result = preview(repo, "main", "canary", read_snapshot_dir(SNAPSHOTS)).preview
    assert result.changed
    assert [c.cluster for c in result.clusters] == ["cluster1", "cluster2"]
    bullets = [b for c in result.clusters for b in c.semantics]
    assert any(
        "weight shift" in b and "version-v1 80 -> 50" in b and "version-v2 20 -> 50" in b
        for b in bullets
    )
    changed = [o for c in result.clusters for o in c.changes]
    assert changed and all(o.change is Change.CHANGED for o in changed)
    assert {o.kind for o in changed} == {"VirtualService"}
    assert result.meta["head"].startswith("canary (")


def test_access_policy_grants_access(repo: Path) -> None:
    result = preview(repo, "main", "access", read_snapshot_dir(SNAPSHOTS)).preview
    added = [o for c in result.clusters for o in c.changes if o.change is Change.ADDED]
    assert "AuthorizationPolicy" in {o.kind for o in added}
    bullets = [b for c in result.clusters for b in c.semantics]
    assert any(
        "sa/bookinfo-reviews gained access to bookinfo-backends/app=ratings" in b for b in bullets
    )


def test_same_ref_is_no_change(repo: Path) -> None:
    result = preview(repo, "main", "main", read_snapshot_dir(SNAPSHOTS)).preview
    assert not result.changed
    assert all(c.counts_line() == "no change" for c in result.clusters)


def test_merge_conflict_lists_the_paths(repo: Path) -> None:
    with pytest.raises(MergeConflict) as caught:
        preview(repo, "clash-a", "clash-b", read_snapshot_dir(SNAPSHOTS))
    assert caught.value.paths == ("bookinfo/routes/reviews.yaml",)
    assert "does not merge cleanly" in str(caught.value)


def test_unknown_ref(repo: Path) -> None:
    with pytest.raises(SourceError, match="ref 'nope' not found"):
        preview(repo, "main", "nope", read_snapshot_dir(SNAPSHOTS))


def _cli(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(diff, list(args))
    return done.exit_code, done.stdout, done.stderr


def test_cli_exit_codes_and_formats(repo: Path) -> None:
    snap = ["--snapshot", str(SNAPSHOTS)]
    code, out, _ = _cli(str(repo), "--base", "main", "--head", "main", *snap)
    assert code == 0 and out.startswith("cluster1: no change; cluster2: no change")
    code, out, _ = _cli(str(repo), "--base", "main", "--head", "canary", *snap)
    assert code == 1 and "weight shift" in out
    assert "\x1b[" not in out  # no colour when not on a terminal
    code, out, _ = _cli(str(repo), "--base", "main", "--head", "canary", *snap, "--format", "json")
    assert code == 1 and json.loads(out)["changed"] is True
    code, out, _ = _cli(
        str(repo), "--base", "main", "--head", "canary", *snap, "--format", "markdown"
    )
    assert code == 1 and out.startswith("## Mesh preview") and "```diff" in out


def test_cli_errors_exit_2(repo: Path, tmp_path: Path) -> None:
    snap = ["--snapshot", str(SNAPSHOTS)]
    code, _, err = _cli(str(repo), "--base", "clash-a", "--head", "clash-b", *snap)
    assert code == 2 and err.startswith("Error: ") and "bookinfo/routes/reviews.yaml" in err
    code, _, err = _cli(str(repo), "--base", "main", "--head", "nope", *snap)
    assert code == 2 and "Error: ref 'nope' not found" in err
    code, _, err = _cli(str(tmp_path), "--base", "main", "--head", "canary", *snap)
    assert code == 2 and "not inside a Git repository" in err
    code, _, err = _cli(str(repo), "--base", "main", "--head", "canary")
    assert code == 2 and "--snapshot" in err


def test_cli_colours_on_a_terminal(repo: Path) -> None:
    # CliRunner's color=True stands in for a TTY: click keeps the styles.
    args = [str(repo), "--base", "main", "--head", "canary", "--snapshot", str(SNAPSHOTS)]
    done = CliRunner().invoke(diff, args, color=True)
    assert done.exit_code == 1
    assert "\x1b[32m+      weight: 50" in done.stdout
