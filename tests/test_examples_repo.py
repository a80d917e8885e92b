"""examples-repo/ (what users copy) must keep translating, and mean what its comments say.

Also runs the README's main command, `gitops render examples-repo --snapshot
deploy/demo/clusters -o OUT`, through the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gitops.reasons import State
from tests.test_golden import run_case

ROOT = Path(__file__).resolve().parents[1]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_examples_repo_is_clean_and_renders_both_clusters() -> None:
    outcome, out = run_case("examples-repo")
    assert not outcome.failed and outcome.warnings == 0
    assert all(r.state is State.ACCEPTED for r in outcome.reports)
    assert sorted(out) == ["cluster1", "cluster2"]


def test_examples_repo_reviews_canary_retries_and_failover() -> None:
    _, out = run_case("examples-repo")
    east_west = {"cluster1": "172.18.0.10", "cluster2": "172.18.0.20"}
    for cluster, other in (("cluster1", "cluster2"), ("cluster2", "cluster1")):
        objects = out[cluster]
        reviews = [
            vs
            for vs in by_kind(objects, "VirtualService")
            if vs["spec"]["hosts"] == ["reviews.bookinfo-backends.svc.cluster.local"]
        ]
        assert {vs["metadata"]["namespace"] for vs in reviews} == {
            "bookinfo-backends",
            "bookinfo-frontends",
        }
        route = reviews[0]["spec"]["http"][0]
        assert [(d["destination"]["subset"], d["weight"]) for d in route["route"]] == [
            ("version-v1", 80),
            ("version-v2", 20),
        ]
        assert route["retries"]["attempts"] == 3 and route["timeout"] == "10s"
        [we] = by_kind(objects, "WorkloadEntry")
        assert we["spec"]["address"] == east_west[other]
        vd_rule = next(
            dr
            for dr in by_kind(objects, "DestinationRule")
            if dr["spec"]["host"] == "reviews.global"
        )
        port = vd_rule["spec"]["trafficPolicy"]["portLevelSettings"][0]
        assert port["outlierDetection"]["consecutive5xxErrors"] == 2
        assert port["loadBalancer"]["localityLbSetting"]["enabled"] is True


def test_readme_render_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "render",
            "examples-repo",
            "--snapshot",
            "deploy/demo/clusters",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("cluster1: 11 objects")
    documents = list(yaml.safe_load_all((out / "cluster1.yaml").read_text()))
    assert len(documents) == 11
    assert {d["metadata"]["labels"]["relay.solo.io/cluster"] for d in documents} == {"cluster1"}
