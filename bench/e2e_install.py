"""The installation `bench/e2e.py` measures: `gitops serve` and `gitops agent` processes.

Only `bench/e2e.py` uses it. Everything is real and on loopback: the synthetic fleet's
config repository (`bench/fleet.py`) committed in a working repository and pushed to a bare
one (the "remote" the server follows; libgit2 cannot push the server's git notes into a
non-bare repository), `gitops pki init`,
one `gitops serve` process (its built-in redis-server on a unix socket in its data dir),
and one `gitops agent --directory` process per cluster over mutual TLS, its folder seeded
from the fleet's discovery snapshot of that cluster.

The server is a process of its own, as in production, so the bench's polling never takes
the server's interpreter lock. It is restarted for each trigger mode (its values differ:
the bare repository as a local path or a `file://` URL, webhooks on or off, the poll interval)
on the same relay and registration ports, so the agents keep running and reconnect by
themselves. The bench reads the server only from outside: `ports.json`, `/api/clusters`,
`/metrics`, and the git notes it writes (`refs/notes/mesh-gitops`).
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2
from prometheus_client.parser import text_string_to_metric_families

from bench import fleet as fleets
from bench.relay import GITOPS, agent_command, agent_config, git, spawn

NOTES_REF = "refs/notes/mesh-gitops"
WEBHOOK_SECRET = "gitops-webhooks"
#: How long a setup wait (server start, the first sync) may take before the bench gives up.
SETUP_TIMEOUT_S = 300.0
#: A poll interval long enough never to fire during a run (webhook and watch modes).
NEVER = "24h"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Install:
    """Config repository, PKI, cluster folders, the server process and the agent processes."""

    def __init__(self, base: Path, fleet: fleets.Fleet) -> None:
        self.base, self.fleet = base, fleet
        self.names = [f"cluster-{c:03d}" for c in range(1, fleet.clusters + 1)]
        self.repo = base / "repo"
        self.remote = base / "remote.git"
        self.secrets = base / "secrets"
        self.relay_port, self.registration_port = free_port(), free_port()
        self.token = secrets.token_urlsafe(24)
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log: Path | None = None
        self.ports: dict[str, int] = {}
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self._api: http.client.HTTPConnection | None = None
        self._notes: pygit2.Repository | None = None

    def cluster_dir(self, name: str) -> Path:
        return self.base / "clusters" / name

    def prepare(self) -> None:
        from controller import pki

        shutil.copytree(self.fleet.repo, self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "fleet")
        git(self.base, "init", "-q", "--bare", "-b", "main", str(self.remote))
        git(self.repo, "remote", "add", "origin", str(self.remote))
        git(self.repo, "push", "-q", "origin", "main")
        pki.init(self.secrets, now=datetime.now(UTC))
        hook = self.secrets / WEBHOOK_SECRET / "generic"
        hook.parent.mkdir(parents=True)
        hook.write_text(self.token)
        for name in self.names:
            shutil.copytree(self.fleet.snapshot / name, self.cluster_dir(name))
        self._notes = pygit2.Repository(str(self.remote))

    # -- the server -----------------------------------------------------------------------

    def start_server(self, mode: str, interval: str, coalesce: str) -> None:
        """`gitops serve` for one trigger mode: `watch` reads the bare repository as a
        local path (file watching); `webhook` and `poll` as a `file://` URL (no watching);
        only `webhook` serves `/hooks/generic`; only `poll` polls within a run."""
        local = "127.0.0.1:0"
        gitops: dict[str, Any] = {
            "repo": {
                "url": str(self.remote) if mode == "watch" else self.remote.as_uri(),
                "ref": "main",
                "interval": interval if mode == "poll" else NEVER,
            },
            "listen": {
                "relay": f"127.0.0.1:{self.relay_port}",
                "registration": f"127.0.0.1:{self.registration_port}",
                "health": local,
                "metrics": local,
                "api": local,
            },
            "relay": {"certLifetime": "8760h"},
            "webhooks": {"coalesce": coalesce},
        }
        if mode == "webhook":
            gitops["webhooks"]["secretName"] = WEBHOOK_SECRET
        values = {
            "common": {"cluster": "mgmt"},
            "glooMgmtServer": {"enabled": True},
            "gitops": gitops,
        }
        data = self.base / f"server-{mode}"
        data.mkdir()
        # Each mode starts without the previous mode's notes, so every mode's first pushes
        # cost the same (the notes writer would otherwise fetch and merge them first).
        git(self.remote, "update-ref", "-d", NOTES_REF)
        (data / "values.yaml").write_text(json.dumps(values))  # JSON is YAML
        self.server_log = self.base / "logs" / f"server-{mode}.log"
        command = [str(GITOPS), "serve", "--values", str(data / "values.yaml")]
        command += ["--secrets", str(self.secrets), "--data-dir", str(data)]
        command += ["--log-level", "info"]
        self.server = spawn(command, self.server_log)
        ports = data / "ports.json"
        self.wait(ports.exists, "the server's ports.json")
        self.ports = json.loads(ports.read_text())

    def stop_server(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.server is not None:
            _terminate(self.server)
            self.server = None

    # -- the agents -----------------------------------------------------------------------

    def start_agents(self) -> None:
        logs = self.base / "logs"
        logs.mkdir(exist_ok=True)
        for name in self.names:
            values, agent_secrets = agent_config(
                self.base, self.secrets, name, self.relay_port, self.registration_port
            )
            state = self.base / "agent-state" / name
            command = agent_command(name, values, agent_secrets, self.cluster_dir(name), state)
            self.agents[name] = spawn(command, logs / f"{name}.log")

    def pids(self) -> list[int]:
        return [p.pid for p in self.agents.values()]

    # -- reading the server from outside --------------------------------------------------

    def _get(self, port: str, path: str) -> bytes:
        reused = port == "api" and self._api is not None
        try:
            return self._get_once(port, path)
        except (ConnectionError, http.client.RemoteDisconnected):
            if not reused:
                raise
            # The server closes a keep-alive connection idle for a few seconds (uvicorn's
            # default 5 s; a poll-mode wait is longer): open a new one, once.
            return self._get_once(port, path)

    def _get_once(self, port: str, path: str) -> bytes:
        if port == "api" and self._api is not None:
            connection = self._api
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.ports[port], timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self._api = None
            raise
        if port == "api":
            self._api = connection  # keep-alive: one connection for the many polls
        else:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:200]!r}")
        return body

    def clusters(self) -> dict[str, dict[str, Any]]:
        """`/api/clusters`, by cluster name."""
        data = json.loads(self._get("api", "/api/clusters"))
        return {c["name"]: c for c in data["clusters"]}

    def stage_metrics(self) -> dict[str, tuple[float, float]]:
        """`mesh_gitops_reconcile_stage_seconds`: stage -> (sum of seconds, count)."""
        text = self._get("metrics", "/metrics").decode()
        found: dict[str, list[float]] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "mesh_gitops_reconcile_stage_seconds":
                continue
            for sample in family.samples:
                pair = found.setdefault(sample.labels["stage"], [0.0, 0.0])
                if sample.name.endswith("_sum"):
                    pair[0] = sample.value
                elif sample.name.endswith("_count"):
                    pair[1] = sample.value
        return {stage: (pair[0], pair[1]) for stage, pair in found.items()}

    def webhook(self, sha: str) -> None:
        """`POST /hooks/generic` as a CI job would send it (the token never leaves here)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.ports["api"], timeout=10)
        body = json.dumps({"ref": "refs/heads/main", "sha": sha}).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            connection.request("POST", "/hooks/generic", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 202:
            raise RuntimeError(f"POST /hooks/generic answered {response.status}")

    def note(self, sha: str) -> dict[str, str]:
        """The statuses on `sha` in `refs/notes/mesh-gitops`: context -> state."""
        assert self._notes is not None
        try:
            note = self._notes.lookup_note(sha, NOTES_REF)
        except KeyError:
            return {}
        statuses = json.loads(note.message).get("statuses", {})
        return {context: s.get("state", "") for context, s in statuses.items()}

    def statuses_done(self, sha: str) -> bool:
        """The note on `sha` shows success for the translation and every cluster's sync."""
        states = self.note(sha)
        wanted = ["mesh-gitops/translation", *(f"mesh-gitops/sync/{n}" for n in self.names)]
        return all(states.get(context) == "success" for context in wanted)

    def synced(self, revision: str) -> bool:
        """The server loaded `revision` and every agent ACKed what was published to it."""
        try:
            data = json.loads(self._get("api", "/api/clusters"))
        except (OSError, http.client.HTTPException, RuntimeError):
            return False
        by_name = {c["name"]: c for c in data["clusters"]}
        return data.get("revision") == revision and all(
            (c := by_name.get(n)) is not None
            and c["connected"]
            and c["outputVersion"] is not None
            and c["appliedVersion"] == c["outputVersion"]
            for n in self.names
        )

    # -- waiting and stopping -------------------------------------------------------------

    def alive(self) -> None:
        """Raise if the server or an agent exited."""
        if self.server is not None and self.server.poll() is not None:
            assert self.server_log is not None
            tail = self.server_log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError("the server exited; its log ends:\n" + "\n".join(tail))
        dead = [n for n, p in self.agents.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"agent(s) exited: {', '.join(dead[:5])} (see logs/)")

    def wait(self, check: Callable[[], bool], what: str, timeout: float = SETUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.stop_server()
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.agents.values():
            _terminate(proc)
        self.agents.clear()
        if self._notes is not None:
            self._notes.free()
            self._notes = None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
