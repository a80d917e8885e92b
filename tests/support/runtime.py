"""A whole mesh-gitops installation on loopback, for end-to-end runtime tests and benches.

Real parts only: the config repository is a real Git repository (a copy of
`examples-repo/`, committed with `git`), the relay runs real gRPC with mutual TLS and
certificates from `gitops pki init`, the snapshot store is a real `redis-server`
(`tests/support/redis_server.py`), and each workload cluster is a directory-backed
cluster seeded from `deploy/demo/clusters/<name>`. Every listener is on 127.0.0.1 port 0.

Agents run in-process (`start_agent`) or as `gitops agent` subprocesses (`spawn_agent`,
which tests kill -9); `stop` stops every server and agent and reaps every process, since
warnings are errors and a leaked thread or process fails the test. `owned_files`,
`inodes` and `synced` are what the scenarios in `tests/controller/runtime/` look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from controller import pki
from controller.agent.runner import Agent
from controller.backends.directory import DirectoryBackend
from controller.secrets import SecretsDir
from controller.server.app import Server
from controller.status.notes import NotesWriter
from gitops.helm.models import Values
from gitops.statuses import Status
from tests.support.git_servers import run_git

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples-repo"
DEMO_CLUSTERS = ROOT / "deploy" / "demo" / "clusters"
CLUSTERS = ("cluster1", "cluster2")
GITOPS = Path(sys.executable).parent / "gitops"
MANAGED_BY = "app.kubernetes.io/managed-by"


def config_repo(path: Path, source: Path = EXAMPLES) -> Path:
    """A Git repository holding a copy of `source` on branch main, committed."""
    shutil.copytree(source, path)
    run_git(path, "init", "-q", "-b", "main")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "config")
    return path


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    """Write (or delete, for None) files in the repo and commit; returns the commit id."""
    for rel, text in files.items():
        target = repo / rel
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD").strip()


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def owned_files(cluster_dir: Path) -> dict[str, dict[str, Any]]:
    """The Istio objects an agent wrote into a directory-backed cluster, by relative path."""
    found = {}
    for path in sorted(cluster_dir.rglob("*.yaml")):
        if any(part.startswith(".") for part in path.relative_to(cluster_dir).parts):
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError):
            continue  # being replaced, or a test's obstacle
        for doc in docs:
            labels = ((doc or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY) == "mesh-gitops":
                found[str(path.relative_to(cluster_dir))] = doc
    return found


def retry_attempts(cluster_dir: Path) -> set[int]:
    """The retry attempts on any route of the cluster's owned VirtualServices (what a
    RetryTimeoutPolicy change shows up as)."""
    found = set()
    for obj in owned_files(cluster_dir).values():
        if obj.get("kind") == "VirtualService":
            for route in (obj.get("spec") or {}).get("http") or []:
                if "retries" in route:
                    found.add(route["retries"]["attempts"])
    return found


def notes_on(repo: Path, sha: str) -> dict[str, Status]:
    """The commit statuses the server wrote as git notes on `sha`, by context."""
    notes = NotesWriter(repo, remote=None)
    try:
        return notes.latest(sha)
    finally:
        notes.close()


def states_on(repo: Path, sha: str) -> dict[str, str]:
    """`notes_on`, state values only."""
    return {context: s.state.value for context, s in notes_on(repo, sha).items()}


#: What `states_on` shows for a commit translated, synced and drift-free in both clusters.
ALL_SUCCESS = {
    "mesh-gitops/translation": "success",
    **{f"mesh-gitops/{kind}/{c}": "success" for c in CLUSTERS for kind in ("sync", "drift")},
}


def inodes(cluster_dir: Path, paths: Iterable[str]) -> dict[str, int]:
    """The inode of each file: an agent's atomic write (a rename) always changes it."""
    return {rel: (cluster_dir / rel).stat().st_ino for rel in paths}


def file_of(obj: dict[str, Any]) -> str:
    """Where the directory backend keeps an output (`<namespace>/<Kind>.<name>.yaml`)."""
    meta = obj["metadata"]
    return f"{meta.get('namespace') or '_cluster'}/{obj['kind']}.{meta['name']}.yaml"


class DeletionWatch:
    """Samples clusters' owned files on a thread until closed; `vanished` lists every file
    that was there at the start and missing at some sample (a deletion, however brief)."""

    def __init__(self, dirs: Iterable[Path], interval: float = 0.02) -> None:
        self.dirs = list(dirs)
        self.start = {d: set(owned_files(d)) for d in self.dirs}
        self.vanished: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for d, paths in self.start.items():
                self.vanished |= {f"{d.name}/{rel}" for rel in paths if not (d / rel).is_file()}
            self.samples += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> DeletionWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Installation:
    """The parts of one test installation; `server` and `agents` are started on demand."""

    base: Path
    repo: Path
    secrets: SecretsDir
    redis_address: str | None
    server_overrides: dict[str, Any] = field(default_factory=dict)
    server: Server | None = None
    #: More servers on the same Redis (`start_replica`): replicas of `server`.
    replicas: list[Server] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cluster_dir(self, name: str) -> Path:
        return self.base / "clusters" / name

    def server_values(self) -> Values:
        raw: dict[str, Any] = {
            "common": {"cluster": "mgmt"},
            "glooMgmtServer": {"enabled": True},
            "redis": {"address": self.redis_address} if self.redis_address else {},
            "gitops": {
                "repo": {"url": str(self.repo), "ref": "main"},
                "listen": {
                    k: "127.0.0.1:0" for k in ("relay", "registration", "health", "metrics", "api")
                },
                "relay": {"certLifetime": "8760h"},
            },
        }
        _merge(raw, self.server_overrides)
        return Values.model_validate(raw)

    def start_server(self) -> Server:
        server = Server(
            self.server_values(), self.secrets, self.base / "server", self.base / "cache"
        )
        server.start()
        self.server = server
        return server

    def start_replica(self, name: str = "replica") -> Server:
        """Another server on the same Redis and config (its own data dir, Git cache and
        ports), as a second pod of the deployment would be; `stop` stops it."""
        assert self.redis_address, "replicas share one external Redis"
        server = Server(
            self.server_values(), self.secrets, self.base / name, self.base / f"cache-{name}"
        )
        server.start()
        self.replicas.append(server)
        return server

    def restart_server(self) -> Server:
        """Stop the server and start a new one on the same Redis, data dir and relay ports
        (so running agents find it again by themselves)."""
        old = self.running
        self.server = None
        old.stop()
        listen = {k: f"127.0.0.1:{old.ports[k]}" for k in ("relay", "registration")}
        _merge(self.server_overrides, {"gitops": {"listen": listen}})
        return self.start_server()

    @property
    def running(self) -> Server:
        assert self.server is not None, "start the server first"
        return self.server

    def synced(self, cluster: str) -> bool:
        """The cluster's agent ACKed the version the server last published to it."""
        fleet = self.running.fleet
        c = fleet.clusters.get(cluster)
        return bool(c and c.version and c.applied == fleet.wire_version(c.version))

    def start_synced(self) -> Server:
        """Start the server and an in-process agent per cluster; wait until all synced."""
        server = self.start_server()
        for cluster in CLUSTERS:
            self.start_agent(cluster)
        self.wait_synced()
        return server

    def wait_synced(self, *clusters: str, timeout: float = 20.0) -> None:
        for cluster in clusters or CLUSTERS:
            wait_until(lambda c=cluster: self.synced(c), timeout, f"{cluster} synced")

    def published_files(self, cluster: str) -> dict[str, dict[str, Any]]:
        """What the server last published to the cluster, by the file it belongs in."""
        outputs = self.running.fleet.clusters[cluster].outputs.values()
        return {file_of(o): o for o in outputs}

    def converged(self, cluster: str) -> bool:
        """Synced, and the cluster's owned files hold exactly the published objects."""
        if not self.synced(cluster):
            return False
        files = owned_files(self.cluster_dir(cluster))
        published = self.published_files(cluster)
        return files.keys() == published.keys() and all(
            files[rel]["spec"] == obj.get("spec") for rel, obj in published.items()
        )

    def agent_values_raw(self, cluster: str, server: Server | None = None) -> dict[str, Any]:
        """An agent's values, pointing at `server` (default: the installation's server)."""
        ports = (server or self.running).ports
        return {
            "common": {"cluster": cluster},
            "glooAgent": {
                "enabled": True,
                "relay": {
                    "serverAddress": f"127.0.0.1:{ports['relay']}",
                    "authority": "localhost",
                },
            },
            "gitops": {"relay": {"registrationAddress": f"127.0.0.1:{ports['registration']}"}},
        }

    def agent_values(self, cluster: str) -> Values:
        return Values.model_validate(self.agent_values_raw(cluster))

    def agent_secrets(self, cluster: str) -> SecretsDir:
        """The agent's own secrets dir: a copy of the root CA and the token, as an install
        copies them to the workload cluster."""
        path = self.base / "agent-secrets" / cluster
        for secret, key in (
            ("relay-root-tls-secret", "ca.crt"),
            ("relay-identity-token-secret", "token"),
        ):
            target = path / secret / key
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.secrets.read(secret, key))
        return SecretsDir(path)

    def start_agent(self, cluster: str, raw_values: dict[str, Any] | None = None) -> Agent:
        """An in-process agent; `raw_values` replaces `agent_values_raw(cluster)`."""
        state = self.base / "agent-state" / cluster
        backend = DirectoryBackend(cluster, self.cluster_dir(cluster), state)
        values = Values.model_validate(raw_values or self.agent_values_raw(cluster))
        agent = Agent(cluster, values, self.agent_secrets(cluster), backend, state)
        agent.start()
        self.agents[cluster] = agent
        return agent

    def stop_agent(self, cluster: str) -> None:
        self.agents.pop(cluster).stop()

    def spawn_agent(self, cluster: str) -> subprocess.Popen[bytes]:
        """`gitops agent --directory` as a subprocess (its output in `agent-<cluster>.log`),
        with the same secrets, state and cluster folder as `start_agent`."""
        values = self.base / f"agent-{cluster}.yaml"
        values.write_text(yaml.safe_dump(self.agent_values_raw(cluster)))
        command = [
            str(GITOPS), "agent",
            "--values", str(values),
            "--secrets", str(self.agent_secrets(cluster).root),
            "--cluster", cluster,
            "--directory", str(self.cluster_dir(cluster)),
            "--data-dir", str(self.base / "agent-state" / cluster),
        ]  # fmt: skip
        with open(self.base / f"agent-{cluster}.log", "ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}
            )
        self.processes[cluster] = process
        return process

    def kill_agent(self, cluster: str) -> None:
        """SIGKILL a spawned agent and reap it: no cleanup of any kind runs."""
        process = self.processes.pop(cluster)
        process.kill()
        process.wait()

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill_agent(name)
        for name in list(self.agents):
            self.stop_agent(name)
        if self.server is not None:
            self.server.stop()
            self.server = None
        while self.replicas:
            self.replicas.pop().stop()


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def installation(base: Path, redis_address: str | None) -> Iterator[Installation]:
    """Set up an installation under `base` (stopped at the end of the generator)."""
    secrets_dir = base / "secrets"
    pki.init(secrets_dir, clusters=CLUSTERS, now=datetime.now(UTC))
    for name in CLUSTERS:
        shutil.copytree(DEMO_CLUSTERS / name, base / "clusters" / name)
    inst = Installation(base, config_repo(base / "repo"), SecretsDir(secrets_dir), redis_address)
    try:
        yield inst
    finally:
        inst.stop()
