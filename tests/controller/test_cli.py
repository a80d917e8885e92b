"""The `gitops` CLI: output formats, files written, exit codes (0 clean, 1 invalid, 2 usage)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "examples-repo")
DEMO = str(ROOT / "deploy" / "demo" / "clusters")
INVALID = ROOT / "tests" / "golden" / "invalid-config"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_clean_repository_exits_0() -> None:
    code, out, _ = run("validate", EXAMPLES, "--snapshot", DEMO)
    assert code == 0
    assert out.strip().endswith("16 resources: 16 accepted; 0 errors, 0 warnings")


def test_validate_without_snapshot_checks_the_config_only() -> None:
    code, out, _ = run("validate", str(INVALID / "repo"))
    assert code == 1
    lines = out.splitlines()
    assert (
        "routes/ratings.yaml:13: error: RouteTable bookinfo-backends/ratings: SchemaViolation: "
        "spec.http[0].timeout: unknown field" in lines
    )


def test_validate_json_lists_diagnostics_and_reports() -> None:
    code, out, _ = run(
        "validate",
        str(INVALID / "repo"),
        "--snapshot",
        str(INVALID / "snapshot"),
        "--format",
        "json",
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["failed"] is True
    canary = next(r for r in doc["reports"] if r["name"] == "reviews-canary")
    assert canary["state"] == "INVALID"
    assert canary["reasons"][0]["reason"] == "InvalidValue"
    assert canary["reasons"][0]["field"] == "spec.http[0].forwardTo"
    assert {c["cluster"] for c in doc["clusters"]} == {"cluster1", "cluster2"}
    first = doc["diagnostics"][0]
    assert {"severity", "reason", "message", "file", "line"} <= set(first)


def test_render_writes_one_file_per_cluster_even_when_some_resources_are_invalid(
    tmp_path: Path,
) -> None:
    code, out, err = run(
        "render",
        str(INVALID / "repo"),
        "--snapshot",
        str(INVALID / "snapshot"),
        "-o",
        str(tmp_path),
    )
    assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster1.yaml", "cluster2.yaml"]
    assert "cluster1: 2 objects (2 VirtualService)" in out
    assert "DuplicateObject" in err


def test_render_is_byte_identical_across_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert run("render", EXAMPLES, "--snapshot", DEMO, "-o", str(first))[0] == 0
    assert run("render", EXAMPLES, "--snapshot", DEMO, "-o", str(second))[0] == 0
    for name in ("cluster1.yaml", "cluster2.yaml"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_render_needs_a_snapshot_usage_error() -> None:
    code, _, err = run("render", EXAMPLES, "-o", "/tmp/x")
    assert code == 2
    assert "--snapshot" in err


def test_missing_path_is_an_error_with_exit_2(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "nope"))
    assert code == 2
    assert err.startswith("Error: ")
    assert "Traceback" not in err


def test_unregistered_snapshot_cluster_is_a_warning(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    shutil.copytree(DEMO, snapshot)
    shutil.copytree(snapshot / "cluster2", snapshot / "cluster9")
    code, out, _ = run("validate", EXAMPLES, "--snapshot", str(snapshot))
    assert code == 0
    assert (
        "cluster9/: warning: UnregisteredCluster: [cluster9] snapshot for cluster cluster9 "
        "ignored: no KubernetesCluster named cluster9" in out.splitlines()
    )


def test_validate_a_git_repository_at_a_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "good")
    git("tag", "good")
    # A later commit breaks a file; the tag still validates clean.
    (repo / "bookinfo" / "routes" / "reviews.yaml").write_text("kind: [\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "break")
    assert run("validate", str(repo), "--snapshot", DEMO, "--ref", "good")[0] == 0
    code, out, _ = run("validate", str(repo), "--snapshot", DEMO)
    assert code == 1
    assert "bookinfo/routes/reviews.yaml:2: error: YamlSyntaxError" in out


def test_snapshot_folder_with_an_invalid_cluster_name_is_an_error(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    shutil.copytree(DEMO, snapshot)
    shutil.copytree(snapshot / "cluster2", snapshot / "Cluster_2")
    code, out, _ = run("validate", EXAMPLES, "--snapshot", str(snapshot))
    assert code == 1
    assert "Cluster_2/: error: InvalidClusterName: [Cluster_2] cluster name 'Cluster_2'" in out
