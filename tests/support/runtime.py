"""A whole mesh-gitops installation on loopback, for end-to-end runtime tests and benches.

Real parts only: the config repository is a real Git repository (a copy of
`examples-repo/`, committed with `git`), the relay runs real gRPC with mutual TLS and
certificates from `gitops pki init`, the snapshot store is a real `redis-server`
(`tests/support/redis_server.py`), and each workload cluster is a directory-backed
cluster seeded from `deploy/demo/clusters/<name>`. Every listener is on 127.0.0.1 port 0.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller import pki
from controller.agent.runner import Agent
from controller.backends.directory import DirectoryBackend
from controller.secrets import SecretsDir
from controller.server.app import Server
from gitops.helm.models import Values
from tests.support.git_servers import run_git

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples-repo"
DEMO_CLUSTERS = ROOT / "deploy" / "demo" / "clusters"
CLUSTERS = ("cluster1", "cluster2")


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


@dataclass
class Installation:
    """The parts of one test installation; `server` and `agents` are started on demand."""

    base: Path
    repo: Path
    secrets: SecretsDir
    redis_address: str | None
    server_overrides: dict[str, Any] = field(default_factory=dict)
    server: Server | None = None
    agents: dict[str, Agent] = field(default_factory=dict)

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

    def agent_values(self, cluster: str) -> Values:
        assert self.server is not None, "start the server first"
        ports = self.server.ports
        return Values.model_validate(
            {
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
        )

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

    def start_agent(self, cluster: str) -> Agent:
        state = self.base / "agent-state" / cluster
        backend = DirectoryBackend(cluster, self.cluster_dir(cluster), state)
        agent = Agent(
            cluster, self.agent_values(cluster), self.agent_secrets(cluster), backend, state
        )
        agent.start()
        self.agents[cluster] = agent
        return agent

    def stop_agent(self, cluster: str) -> None:
        self.agents.pop(cluster).stop()

    def stop(self) -> None:
        for name in list(self.agents):
            self.stop_agent(name)
        if self.server is not None:
            self.server.stop()
            self.server = None


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
