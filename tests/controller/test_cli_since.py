"""`gitops render --since REV`: only the clusters a change can reach, each as a full render."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLUSTER3 = """\
apiVersion: admin.gloo.solo.io/v2
kind: KubernetesCluster
metadata: {name: cluster3, namespace: gloo-mesh}
spec: {clusterDomain: cluster.local}
"""
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def setup(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples-repo", repo)
    (repo / "clusters" / "cluster3.yaml").write_text(CLUSTER3)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(ROOT / "deploy" / "demo" / "clusters", snapshot)
    (snapshot / "cluster3").mkdir()
    (snapshot / "cluster3" / "namespaces.yaml").write_text(NAMESPACE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    return repo, snapshot


def render(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["render", *args])
    return result.exit_code, result.stdout


def test_since_renders_only_the_clusters_a_policy_edit_reaches(tmp_path: Path) -> None:
    repo, snapshot = setup(tmp_path)
    policy = repo / "bookinfo" / "policies" / "retry-timeout.yaml"
    policy.write_text(policy.read_text().replace("attempts: 3", "attempts: 4"))
    git(repo, "commit", "-qam", "more retries")
    since, full = tmp_path / "since", tmp_path / "full"
    code, out = render(str(repo), "--snapshot", str(snapshot), "-o", str(since), "--since", "base")
    assert code == 0, out
    assert "unchanged since base (not rendered): cluster3" in out
    assert sorted(p.name for p in since.iterdir()) == ["cluster1.yaml", "cluster2.yaml"]
    assert render(str(repo), "--snapshot", str(snapshot), "-o", str(full))[0] == 0
    for name in ("cluster1.yaml", "cluster2.yaml"):
        assert (since / name).read_bytes() == (full / name).read_bytes()
    assert "attempts: 4" in (since / "cluster1.yaml").read_text()


def test_since_renders_everything_after_a_workspace_change(tmp_path: Path) -> None:
    repo, snapshot = setup(tmp_path)
    workspaces = repo / "workspaces" / "bookinfo.yaml"
    workspaces.write_text(workspaces.read_text().replace("allow_ingress", "allow-ingress"))
    git(repo, "commit", "-qam", "relabel")
    out_dir = tmp_path / "out"
    code, out = render(
        str(repo), "--snapshot", str(snapshot), "-o", str(out_dir), "--since", "base"
    )
    assert "unchanged since base (not rendered): none" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "cluster1.yaml",
        "cluster2.yaml",
        "cluster3.yaml",
    ]
    assert code in (0, 1)


def test_since_needs_git_history(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(ROOT / "examples-repo", plain)
    result = CliRunner().invoke(
        main,
        [
            "render",
            str(plain),
            "--snapshot",
            str(ROOT / "deploy" / "demo" / "clusters"),
            "-o",
            str(tmp_path / "out"),
            "--since",
            "HEAD~1",
        ],
    )
    assert result.exit_code == 2
