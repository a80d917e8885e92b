"""`gitops demo`: the whole product on one machine, from the embedded defaults.

Called by the CLI (`controller/cli_runtime.py`). Under one folder it creates a bare Git
"remote" seeded from `examples-repo/` and a working clone of it, the relay's PKI, a
management server (`controller.server.app.Server`, built-in Redis, every listener on a
free loopback port, following the remote with a 5 s poll) and one agent per demo cluster
(`controller.agent.runner.Agent`) on a directory-backed cluster seeded from
`deploy/demo/clusters/<name>`. It waits for the first sync and prints a per-cluster table
(the `gitops status` one, `controller/commands/status.py`, from the server's API);
`--once` stops there (exit 0 only if every cluster synced), otherwise it keeps printing
the table until Ctrl-C, with what to try next.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from controller import pki
from controller.agent.runner import Agent
from controller.backends.directory import DirectoryBackend
from controller.commands.status import StatusError, fetch, render_text
from controller.secrets import SecretsDir
from controller.server.app import Server
from gitops.helm.models import Values

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples-repo"
CLUSTERS_SEED = ROOT / "deploy" / "demo" / "clusters"
CLUSTERS = ("cluster1", "cluster2")
_LISTENERS = ("relay", "registration", "health", "metrics", "api")


class DemoError(Exception):
    """The demo cannot run here; the message says why."""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=mesh-gitops demo", "-c", "user.email=demo@localhost", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@dataclass
class Demo:
    """One demo installation under `base` (see the module docstring)."""

    base: Path
    say: Callable[[str], None]
    server: Server | None = None
    agents: list[Agent] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.base / "config"

    def prepare(self) -> None:
        if not EXAMPLES.is_dir() or not CLUSTERS_SEED.is_dir():
            raise DemoError(f"the demo's data is missing ({EXAMPLES}, {CLUSTERS_SEED})")
        if shutil.which("git") is None:
            raise DemoError("the demo needs the `git` command")
        if self.base.exists():
            shutil.rmtree(self.base)
        remote = self.base / "remote.git"
        remote.mkdir(parents=True)
        _git(remote, "init", "-q", "--bare", "-b", "main")
        shutil.copytree(EXAMPLES, self.work)
        _git(self.work, "init", "-q", "-b", "main")
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-q", "-m", "mesh config from examples-repo")
        _git(self.work, "remote", "add", "origin", str(remote))
        _git(self.work, "push", "-q", "origin", "main")
        pki.init(self.base / "secrets", clusters=CLUSTERS, now=datetime.now(UTC))
        for name in CLUSTERS:
            shutil.copytree(CLUSTERS_SEED / name, self.base / "clusters" / name)

    def start(self) -> None:
        remote = (self.base / "remote.git").as_uri()
        values = Values.model_validate(
            {
                "common": {"cluster": "mgmt"},
                "gitops": {
                    "repo": {"url": remote, "ref": "main", "interval": "5s"},
                    "listen": {k: "127.0.0.1:0" for k in _LISTENERS},
                },
            }
        )
        secrets = SecretsDir(self.base / "secrets")
        self.server = Server(values, secrets, self.base / "server", self.base / "cache")
        self.server.start()
        for name in CLUSTERS:
            self.agents.append(self._agent(name, secrets))

    def _agent(self, name: str, server_secrets: SecretsDir) -> Agent:
        assert self.server is not None
        ports = self.server.ports
        own = SecretsDir(self.base / "agent-secrets" / name)
        for secret, key in (
            ("relay-root-tls-secret", "ca.crt"),
            ("relay-identity-token-secret", "token"),
        ):
            own.write(secret, key, server_secrets.read(secret, key))
        values = Values.model_validate(
            {
                "common": {"cluster": name},
                "glooAgent": {
                    "relay": {
                        "serverAddress": f"127.0.0.1:{ports['relay']}",
                        "authority": "localhost",
                    }
                },
                "gitops": {"relay": {"registrationAddress": f"127.0.0.1:{ports['registration']}"}},
            }
        )
        state = self.base / "agent-state" / name
        backend = DirectoryBackend(name, self.base / "clusters" / name, state)
        agent = Agent(name, values, own, backend, state)
        agent.start()
        return agent

    def synced(self) -> bool:
        assert self.server is not None
        fleet = self.server.fleet
        with fleet.lock:
            return all(
                (c := fleet.clusters.get(name)) is not None
                and c.version > 0
                and c.applied == fleet.wire_version(c.version)
                for name in CLUSTERS
            )

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.synced():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def table(self) -> str:
        """The `gitops status` table, read from the demo server's own API."""
        assert self.server is not None
        try:
            view = fetch(f"http://127.0.0.1:{self.server.ports['api']}")
        except StatusError as exc:
            raise DemoError(str(exc)) from None
        return render_text(view)

    def next_steps(self) -> str:
        assert self.server is not None
        cluster1 = self.base / "clusters" / "cluster1"
        return "\n".join(
            [
                "What to try next:",
                f"  edit a policy in {self.work}, then `git commit -am ... && git push`:",
                "    both clusters follow within seconds;",
                f"  edit an applied file under {cluster1}: drift is reported and put back;",
                f"  `gitops diff {self.work} --base main --head <branch> "
                f"--snapshot {CLUSTERS_SEED}` previews a branch;",
                f"  `gitops status --api http://127.0.0.1:{self.server.ports['api']}` shows this "
                "table; each commit's report is at /reports/<sha> on the same address;",
                f"  the API: http://127.0.0.1:{self.server.ports['api']}/api/clusters",
            ]
        )

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        self.agents = []
        if self.server is not None:
            self.server.stop()
            self.server = None
