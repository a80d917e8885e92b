"""`gitops serve` as a user runs it: a process, its ports file, its endpoints, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.runtime import commit, config_repo, wait_until

GITOPS = Path(sys.executable).parent / "gitops"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GITOPS), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    secrets = tmp_path / "secrets"
    assert run("pki", "init", "--out", str(secrets)).returncode == 0
    repo = config_repo(tmp_path / "repo")
    values = tmp_path / "mgmt.yaml"
    listen = {k: "127.0.0.1:0" for k in ("relay", "registration", "health", "metrics", "api")}
    values.write_text(yaml.safe_dump({"gitops": {"repo": {"url": str(repo)}, "listen": listen}}))
    # A short data dir: the built-in Redis's unix socket path must fit in 107 bytes.
    data = Path(os.environ.get("TMPDIR", "/tmp")) / f"mg-serve-{os.getpid()}"
    args = ["serve", "--values", str(values), "--secrets", str(secrets), "--data-dir", str(data)]
    process = subprocess.Popen(
        [str(GITOPS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process, data, repo
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
        subprocess.run(["rm", "-rf", str(data)], check=False)


def test_serve_writes_its_ports_reports_safe_mode_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, data, _ = served
    ports_file = data / "ports.json"
    wait_until(ports_file.exists, what="ports.json")
    ports = json.loads(ports_file.read_text())
    assert set(ports) == {"relay", "registration", "health", "metrics", "api"}
    assert len(set(ports.values())) == 5 and all(p > 0 for p in ports.values())
    with httpx.Client(base_url="http://127.0.0.1", timeout=10) as http:
        assert http.get(f"http://127.0.0.1:{ports['health']}/healthz").status_code == 200
        ready = http.get(f"http://127.0.0.1:{ports['health']}/readyz")
        # An empty cache: safe mode waits for both registered clusters, by name.
        assert ready.status_code == 503
        assert ready.json()["safeMode"]["awaited"] == ["cluster1", "cluster2"]
        clusters = http.get(f"http://127.0.0.1:{ports['api']}/api/clusters").json()["clusters"]
        assert [(c["name"], c["connected"], c["awaited"]) for c in clusters] == [
            ("cluster1", False, True),
            ("cluster2", False, True),
        ]
        metrics = http.get(f"http://127.0.0.1:{ports['metrics']}/metrics").text
        assert "mesh_gitops_safe_mode 1.0" in metrics
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "listening" in stderr
    # The built-in Redis went away with the server.
    assert not (data / "redis" / "redis.sock").exists()


def test_sighup_reads_the_config_repository_again(
    served: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, data, repo = served
    ports_file = data / "ports.json"
    wait_until(ports_file.exists, what="ports.json")
    api = f"http://127.0.0.1:{json.loads(ports_file.read_text())['api']}/api/clusters"
    with httpx.Client(timeout=10) as http:
        first = http.get(api).json()["revision"]
        head = commit(repo, "a note", {"NOTES.md": "hello\n"})
        assert head != first
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: http.get(api).json()["revision"] == head, what="the new revision")
    assert process.poll() is None  # SIGHUP reloads; it does not stop the server


def test_serve_refuses_unknown_values_keys_with_the_key_path(tmp_path: Path) -> None:
    values = tmp_path / "bad.yaml"
    values.write_text("gitops:\n  listen:\n    relya: 127.0.0.1:0\n")
    result = run("serve", "--values", str(values))
    assert result.returncode == 2
    assert "relya" in result.stderr and "Error:" in result.stderr
