"""`gitops demo --once`: the whole product from the embedded defaults, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GITOPS = Path(sys.executable).parent / "gitops"


def test_the_demo_syncs_both_clusters_once_and_exits_zero(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    result = subprocess.run(
        [str(GITOPS), "demo", "--once", "--dir", str(base), "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("cluster")]
    assert [(r[0], r[1]) for r in rows] == [("cluster1", "Synced"), ("cluster2", "Synced")]
    assert all(int(r[3]) > 0 for r in rows)  # objects applied
    # The clusters are folders; the agents wrote the Istio objects into them.
    written = list((base / "clusters" / "cluster1").rglob("VirtualService.*.yaml"))
    assert written
    # A bare remote and a working clone of the example config were created.
    assert (base / "remote.git" / "HEAD").is_file() and (base / "config" / ".git").is_dir()
