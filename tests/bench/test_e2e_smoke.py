"""`bench/e2e.py` runs end to end on a tiny fleet and prints every mode's figures.

A smoke test of the benchmark script, not of performance: 2 clusters x 5 services, one
commit per mode, a 1 s poll. Nothing here asserts a duration; the figures only have to
be there, in the shape docs/benchmarks.md quotes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("trigger", "fetch", "load", "translate", "publish", "apply", "status")
NUMBER = r"\d+\.\d+"


def test_the_bench_runs_every_mode_and_prints_its_figures(tmp_path: Path) -> None:
    # The install lives in a short path: the server's Redis socket must fit a unix path.
    with tempfile.TemporaryDirectory(prefix="e2e-") as short:
        command = [sys.executable, "-m", "bench.e2e", "--clusters", "2", "--services", "5"]
        command += ["--commits", "1", "--interval", "1s"]
        command += ["--cache", str(tmp_path / "fleets"), "--tmpdir", short]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
        )
        # Every agent and the server were stopped and the install removed.
        left = list(Path(short).iterdir())
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "e2e: 2x5 (2 agent processes, directory backends), 1 commits per mode" in text
    sections = re.split(r"\n(?=(?:webhook|watch|poll) \()", text)[1:]
    assert [s.split(" ", 1)[0] for s in sections] == ["webhook", "watch", "poll"]
    for section in sections:
        mode = section.split(" ", 1)[0]
        assert re.search(rf"commit -> all ACKed: p50 {NUMBER} s, p99 {NUMBER} s", section)
        assert re.search(rf"commit -> statuses written: p50 {NUMBER} s", section), mode
        verdicts = re.findall(r"\((met|not met)\)", section)
        assert len(verdicts) == (1 if mode == "poll" else 2), section
        stages = re.search(r"stages \(median s\): (.*)", section)
        assert stages is not None, section
        named = dict(part.split() for part in stages.group(1).split(", "))
        assert tuple(named) == STAGES
        assert all(re.fullmatch(r"-?" + NUMBER, v) for v in named.values()), named
    assert left == []
