"""Benchmark of the relay (issue 4): fan-out of a change, a full resync, the store, memory.

Run from the repository root: `python -m bench.relay` (100 clusters x 100 services; about
3 minutes) or `python -m bench.relay --clusters 5` (a quick check, under a minute).

Setup, all real parts on loopback: the synthetic fleet `CxS` of `bench/fleet.py` (at
100x100 each cluster's desired outputs are ~1.3 MB of wire JSON: 990 WorkloadEntries,
110 DestinationRules, 100 VirtualServices, 10 ServiceEntries); its config repository
committed to a Git repository in a temp dir; `gitops pki init` (mutual TLS, agents register
with the bootstrap token); the server in this process (`controller.server.app.Server`, the
built-in local Redis, every listener on 127.0.0.1:0, `gitops.repo.url` = that repository);
one `gitops agent --directory` process per cluster, its directory seeded from the fleet's
snapshot of that cluster. Agents start in batches (each batch has pushed its full input
snapshot before the next starts), so a 2-CPU machine is not swamped by 100 interpreters
importing at once; then safe mode lifts, the fleet is translated and published, and the
bench waits until every cluster ACKed its published version.

Figures (stdout; progress goes to stderr), each with its target and met / not met:

1. Change fan-out: edit the `attempts` of K RetryTimeoutPolicies (K chosen so that each
   cluster's delta, K VirtualServices, is ~100 KB of wire JSON; the stricter reading of "a
   100 KB delta"), commit, call `server.reload()` (what SIGHUP does: fetch, load), and time
   until every agent ACKed the new version. Repeated `--changes` times, alternating two
   values; p50 / p99 / max (target p99 <= 2 s). The split: reload (fetch + parse), until
   the last cluster was published (translate + Redis writes), until the last ACK (relay,
   apply, ACK). The measured delta (bytes of changed objects per cluster) is printed.
2. Full resync: `Fleet.resync` of every cluster (the operator's hard refresh): every Pull
   stream sends its agent the whole desired set (~1.3 MB) at the version it has, and every
   agent plans it against its inventory, applies it (rewriting only files that differ) and
   ACKs. Timed from the request to the last ACK (target <= 5 s).
3. The Redis store (`bench/store.py`'s functions, on a fresh private redis-server once the
   agents and server are stopped): `replace_inputs` of a 10,000-object snapshot (median of
   5, target <= 200 ms) and `load_inputs` of 100 clusters x 3,000 objects (target <= 3 s).
4. Memory: this process's VmRSS after sync (the server; the bench adds little), and every
   agent's VmRSS (sum, mean, max) from /proc/<pid>/status.

The CPU seconds of the server process and of all agents are printed per phase: on two
CPUs they show whether the server or the agents' apply is the bottleneck. ACK times come
from wrapping `server.fleet.acked` in this process (the runtime records no ACK timestamp).

`--relay-only` runs every agent as the real `Agent` (registration, mTLS, Push, Pull,
decode, plan, ACK) on a directory backend that applies in memory, in a process of its own
(`python -m bench.relay --relay-only-agent ...`): the directory backend renders YAML and
fsyncs one file per object, which on a 2-CPU machine shared by 100 agents dominates
everything else, while a real agent applies on its own cluster's CPUs.

Options: `--clusters N`, `--services S`, `--changes K`, `--delta-kb KB` (each change's
delta per cluster, default 100; 1 is a one-policy edit), `--batch B` (agents started at
once), `--tmpdir DIR` (where the installation lives; the disk matters for the fsyncs),
`--keep` (keep the temp dir), `--skip-store`, `--relay-only`.
Every agent and the server are stopped and the temp dir removed at the end, also on
Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fleet as fleets

ROOT = Path(__file__).resolve().parent.parent
GITOPS = ROOT / ".venv" / "bin" / "gitops"
MB = 1024 * 1024
CHANGE_TARGET_S = 2.0
RESYNC_TARGET_S = 5.0
DELTA_BYTES = 100_000
#: How long one wait (a batch's snapshots, a sync) may take before the bench gives up.
WAIT_TIMEOUT_S = 300.0
#: Pause after each measured change: agents' file watchers see their own writes and settle.
SETTLE_S = 1.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def out(text: str) -> None:
    print(text, flush=True)


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "not met"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 10 runs is the worst run)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- processes and /proc -------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command (which may hold spaces) start after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


class CpuMeter:
    """CPU seconds of the server (this process) and of all agents since `start`."""

    def __init__(self, agents: Callable[[], Iterable[int]]) -> None:
        self.agents = agents
        self.start()

    def _now(self) -> tuple[float, float]:
        return cpu_s(), sum(cpu_s(pid) for pid in self.agents())

    def start(self) -> None:
        self.base = self._now()

    def text(self) -> str:
        server, agents = self._now()
        return f"CPU: server {server - self.base[0]:.1f} s, agents {agents - self.base[1]:.1f} s"


# -- the installation ----------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class Bench:
    """One installation: config repo, PKI, in-process server, agent processes."""

    def __init__(self, base: Path, fleet: fleets.Fleet, apply: bool) -> None:
        self.base, self.fleet, self.apply = base, fleet, apply
        self.names = [f"cluster-{c:03d}" for c in range(1, fleet.clusters + 1)]
        self.repo = base / "repo"
        self.server: Any = None
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    # setup

    def prepare(self) -> None:
        from controller import pki

        shutil.copytree(self.fleet.repo, self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "fleet")
        pki.init(self.base / "secrets", now=datetime.now(UTC))
        for name in self.names:
            shutil.copytree(self.fleet.snapshot / name, self.base / "clusters" / name)

    def start_server(self) -> None:
        from controller.secrets import SecretsDir
        from controller.server.app import Server
        from gitops.helm.models import Values

        listen = ("relay", "registration", "health", "metrics", "api")
        values = Values.model_validate(
            {
                "common": {"cluster": "mgmt"},
                "glooMgmtServer": {"enabled": True},
                "gitops": {
                    "repo": {"url": str(self.repo), "ref": "main"},
                    "listen": {k: "127.0.0.1:0" for k in listen},
                    "relay": {"certLifetime": "8760h"},
                },
            }
        )
        self.server = Server(
            values, SecretsDir(self.base / "secrets"), self.base / "server", self.base / "cache"
        )
        self.server.start()

    def _agent_files(self, name: str) -> tuple[Path, Path, Path]:
        ports = self.server.ports
        values, secrets = agent_config(
            self.base, self.base / "secrets", name, ports["relay"], ports["registration"]
        )
        return values, secrets, self.base / "agent-state" / name

    def start_agent(self, name: str) -> None:
        values, secrets, state = self._agent_files(name)
        directory = self.base / "clusters" / name
        if self.apply:
            command = agent_command(name, values, secrets, directory, state)
        else:
            command = [sys.executable, "-m", "bench.relay", "--relay-only-agent", name]
            command += [str(values), str(secrets), str(directory), str(state)]
        self.agents[name] = spawn(command, self.base / "logs" / f"{name}.log")

    def start_agents(self, batch: int) -> None:
        fleet = self.server.fleet
        for start in range(0, len(self.names), batch):
            names = self.names[start : start + batch]
            for name in names:
                self.start_agent(name)

            def pushed(names: list[str] = names) -> bool:
                with fleet.lock:
                    return all(n in fleet.clusters and fleet.clusters[n].complete for n in names)

            self.wait(pushed, f"full input snapshots of {names[0]}..{names[-1]}")
            log(f"agents {start + len(names)}/{len(self.names)} connected and pushed")

    def wait(self, check: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            dead = [n for n, p in self.agents.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"agent(s) exited: {', '.join(dead[:5])} (see logs/)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.005)

    # state

    def versions(self) -> dict[str, str]:
        fleet = self.server.fleet
        with fleet.lock:
            return {n: fleet.wire_version(fleet.clusters[n].version) for n in self.names}

    def synced(self, newer_than: Mapping[str, str] | None = None) -> bool:
        fleet = self.server.fleet
        with fleet.lock:
            for n in self.names:
                c = fleet.clusters.get(n)
                if c is None or not c.version:
                    return False
                version = fleet.wire_version(c.version)
                if newer_than is not None and version == newer_than[n]:
                    return False
                if c.applied != version:
                    return False
        return True

    def ack_times(self, versions: Mapping[str, str]) -> list[float]:
        """When each cluster's agent ACKed the given version (the fleet records it)."""
        fleet = self.server.fleet
        with fleet.lock:
            times = []
            for n, v in versions.items():
                c = fleet.clusters[n]
                assert c.applied == v and c.acked_at is not None, f"{n} has not ACKed {v}"
                times.append(c.acked_at)
            return times

    # teardown

    def stop(self) -> None:
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.agents.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.agents.clear()
        if self.server is not None:
            self.server.stop()
            self.server = None


# -- measurements --------------------------------------------------------------------------


def wire_size(obj: Mapping[str, Any]) -> int:
    from controller.relay import wire

    return len(wire.encode(obj).json)


def output_sizes(bench: Bench) -> list[int]:
    fleet = bench.server.fleet
    with fleet.lock:
        return [sum(wire_size(o) for o in fleet.clusters[n].outputs.values()) for n in bench.names]


def delta_sizes(bench: Bench) -> list[int]:
    """Per cluster: wire bytes of the objects its last version changed or added."""
    fleet = bench.server.fleet
    with fleet.lock:
        sizes = []
        for n in bench.names:
            published = fleet.clusters[n].published
            sizes.append(sum(len(published.encoded[oid]) for oid in published.changed))
        return sizes


_ATTEMPTS = re.compile(r"attempts: \d+")


def retry_edit(repo: Path, services: set[str], attempts: int) -> int:
    """Set `attempts` in the RetryTimeoutPolicies of `services`; returns files written."""
    written = 0
    for path in sorted(repo.glob("team-*/services-*.yaml")):
        docs = path.read_text().split("---\n")
        changed = False
        for i, doc in enumerate(docs):
            match = re.search(r"^  name: (svc-\d+)-retry$", doc, re.MULTILINE)
            if match and match.group(1) in services:
                docs[i] = _ATTEMPTS.sub(f"attempts: {attempts}", doc)
                changed = True
        if changed:
            path.write_text("---\n".join(docs))
            written += 1
    return written


def pick_services(bench: Bench, delta_bytes: int) -> set[str]:
    """Enough services, spread over the namespaces, that a retry edit changes about
    `delta_bytes` of VirtualServices per cluster (at least one)."""
    fleet = bench.server.fleet
    with fleet.lock:
        vs = [
            wire_size(o)
            for o in fleet.clusters[bench.names[0]].outputs.values()
            if o.get("kind") == "VirtualService"
        ]
    services = bench.fleet.services
    k = max(1, min(services, round(delta_bytes / statistics.mean(vs))))
    return {f"svc-{round(j * services / k):04d}" for j in range(k)}


def measure_changes(bench: Bench, count: int, delta_bytes: int, cpu: CpuMeter) -> list[float]:
    services = pick_services(bench, delta_bytes)
    log(f"change: {len(services)} RetryTimeoutPolicies per change")
    rows: list[tuple[float, float, float, float]] = []
    deltas: list[int] = []
    cpu.start()
    for n in range(count):
        files = retry_edit(bench.repo, services, 4 if n % 2 == 0 else 5)
        git(bench.repo, "commit", "-qam", f"retry attempts, change {n + 1}")
        before = bench.versions()
        t0 = time.time()
        bench.server.reload()
        t_reload = time.time()
        bench.wait(lambda b=before: bench.synced(b), f"change {n + 1} ACKed by all")
        versions = bench.versions()
        fleet = bench.server.fleet
        with fleet.lock:
            published = max(fleet.clusters[c].published_at or 0.0 for c in bench.names)
        last_ack = max(bench.ack_times(versions))
        sizes = delta_sizes(bench)
        deltas.extend(sizes)
        rows.append((last_ack - t0, t_reload - t0, published - t0, last_ack - published))
        log(
            f"change {n + 1}: {files} files, delta {statistics.mean(sizes) / 1000:.0f} KB/cluster, "
            f"all ACKed in {last_ack - t0:.2f} s"
        )
        time.sleep(SETTLE_S)
    totals = [r[0] for r in rows]
    mean_delta = statistics.mean(deltas)
    out(
        f"\n1. change fan-out: {len(services)} RetryTimeoutPolicies edited per commit -> "
        f"{len(services)} VirtualServices per cluster; delta {mean_delta / 1000:.0f} KB of wire "
        f"JSON per cluster (min {min(deltas) / 1000:.0f}, max {max(deltas) / 1000:.0f}), "
        f"{mean_delta * len(bench.names) / MB:.1f} MB over {len(bench.names)} clusters"
    )
    out("   change  total   reload  published  fan-out (s)")
    for i, (total, reload_s, published_s, fan_out) in enumerate(rows, 1):
        out(f"   {i:>6}  {total:5.2f}   {reload_s:5.2f}   {published_s:8.2f}   {fan_out:6.2f}")
    p99 = percentile(totals, 99)
    out(
        f"   reload -> all {len(bench.names)} ACKed: p50 {statistics.median(totals):.2f} s, "
        f"p99 {p99:.2f} s, max {max(totals):.2f} s "
        f"(target p99 <= {CHANGE_TARGET_S:.0f} s: {verdict(p99, CHANGE_TARGET_S)})"
    )
    out(
        f"   split (median): reload {statistics.median(r[1] for r in rows):.2f} s, "
        f"translate+publish {statistics.median(r[2] - r[1] for r in rows):.2f} s, "
        f"last publish -> last ACK {statistics.median(r[3] for r in rows):.2f} s; "
        f"{cpu.text()} over {count} changes"
    )
    return totals


def measure_resync(bench: Bench, cpu: CpuMeter) -> float:
    fleet = bench.server.fleet
    sizes = output_sizes(bench)
    versions = bench.versions()
    sent_before = {n: fleet.clusters[n].sent_full for n in bench.names}
    cpu.start()
    t0 = time.time()
    fleet.resync(*bench.names)

    def resynced() -> bool:
        with fleet.lock:
            return all(
                fleet.clusters[n].sent_full > sent_before[n]
                and (fleet.clusters[n].acked_at or 0) >= t0
                and fleet.clusters[n].applied == versions[n]
                for n in bench.names
            )

    bench.wait(resynced, "the full resync ACKed by all")
    last_ack = max(bench.ack_times(versions))
    total = last_ack - t0
    out(
        f"\n2. full resync: {len(sizes)} clusters x {statistics.mean(sizes) / MB:.2f} MB "
        f"(= {sum(sizes) / MB:.0f} MB of wire JSON), every agent sent its full desired set"
    )
    out(
        f"   request -> all ACKed: {total:.2f} s "
        f"(target <= {RESYNC_TARGET_S:.0f} s: {verdict(total, RESYNC_TARGET_S)}); {cpu.text()}"
    )
    return total


def measure_memory(bench: Bench) -> None:
    agents = [rss_mb(p.pid) for p in bench.agents.values()]
    out(
        f"\n4. memory after sync: server (this process) VmRSS {rss_mb():.0f} MB; "
        f"agents VmRSS sum {sum(agents):,.0f} MB, mean {statistics.mean(agents):.0f} MB, "
        f"max {max(agents):.0f} MB ({len(agents)} processes)"
    )


def measure_store(clusters: int) -> None:
    from bench import store as store_bench
    from controller.store import LocalRedis, Store, connect
    from gitops.helm.models import Redis

    with (
        tempfile.TemporaryDirectory(prefix="bench-relay-redis-") as tmp,
        LocalRedis(Path(tmp)) as local,
    ):
        client = connect(Redis(), None, unix_socket=local.socket_path)
        try:
            store = Store(client)
            store.ensure_generation()
            replace = store_bench.time_replace(store)
            median = statistics.median(replace)
            store.clean(set())
            load, count = store_bench.time_load(store, 100, 3_000)
        finally:
            client.close()
    out(
        f"\n3. Redis store: replace_inputs of a 10,000-object snapshot median "
        f"{median * 1000:.0f} ms (target <= 200 ms: {verdict(median, 0.2)}); "
        f"load_inputs of 100 clusters x 3,000 = {count:,} objects {load:.2f} s "
        f"(target <= 3 s: {verdict(load, 3.0)})"
    )


# -- main ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, base: Path) -> None:
    size = fleets.FleetSize(args.clusters, args.services)
    found = fleets.ensure(size)
    log(found.describe())
    bench = Bench(base, found, apply=not args.relay_only)
    cpu = CpuMeter(lambda: [p.pid for p in bench.agents.values()])
    try:
        bench.prepare()
        bench.start_server()
        log(f"server up: {bench.server.ports}")
        t0 = time.time()
        bench.start_agents(args.batch)
        pushed = time.time()
        bench.wait(bench.synced, "the initial sync")
        log(f"all {len(bench.names)} clusters synced")
        sizes = output_sizes(bench)
        out(
            f"setup: {size.label}, {len(bench.names)} agent processes in batches of "
            f"{args.batch} ({pushed - t0:.0f} s to start and push); initial translate + "
            f"publish + apply {time.time() - pushed:.1f} s"
        )
        out(
            f"outputs per cluster: {statistics.mean(sizes) / MB:.2f} MB of wire JSON "
            f"(min {min(sizes) / MB:.2f}, max {max(sizes) / MB:.2f}), "
            f"{len(bench.server.fleet.clusters[bench.names[0]].outputs):,} objects"
        )
        measure_memory(bench)
        time.sleep(SETTLE_S)
        measure_changes(bench, args.changes, args.delta_kb * 1000, cpu)
        measure_resync(bench, cpu)
    finally:
        log("stopping agents and server")
        bench.stop()
    if not args.skip_store:
        measure_store(args.clusters)


def relay_only_agent(cluster: str, values: Path, secrets: Path, root: Path, state: Path) -> None:
    """The real agent (`controller.agent.runner.Agent`: registration, mTLS, Push, Pull,
    decode, plan, ACK) on a directory backend that discovers from `root` but applies in
    memory only: what the relay costs without the demo backend's YAML files and fsyncs."""
    from controller.agent.runner import Agent
    from controller.backends import ApplyResult
    from controller.backends.directory import DirectoryBackend
    from controller.cli_runtime import load_values
    from controller.secrets import SecretsDir
    from gitops.objects import ObjectId
    from gitops.plan import ChangeSet

    class InMemory(DirectoryBackend):
        def __init__(self, cluster: str, root: Path, state_dir: Path) -> None:
            super().__init__(cluster, root, state_dir)
            self.held: set[ObjectId] = set()

        def inventory(self) -> set[ObjectId]:
            return set(self.held)

        def apply(self, changes: ChangeSet) -> ApplyResult:
            applied = tuple(ObjectId.of(o) for o in changes.upserts)
            self.held = (self.held | set(applied)) - set(changes.deletes)
            return ApplyResult(applied, tuple(changes.deletes), {})

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    backend = InMemory(cluster, root, state)
    agent = Agent(cluster, load_values((values,), cluster), SecretsDir(secrets), backend, state)
    agent.start()
    try:
        done.wait()
    finally:
        agent.stop()


def agent_command(
    name: str, values: Path, secrets: Path, directory: Path, state: Path
) -> list[str]:
    """`gitops agent` for cluster `name` on a directory backend, logging warnings only."""
    command = [str(GITOPS), "agent", "--values", str(values), "--secrets", str(secrets)]
    command += ["--cluster", name, "--directory", str(directory)]
    return [*command, "--data-dir", str(state), "--log-level", "warning"]


def spawn(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """`command` from the project root, its output in `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl-C reaches the bench only, which stops agents in order.
            start_new_session=True,
        )


def agent_config(
    base: Path, server_secrets: Path, name: str, relay_port: int, registration_port: int
) -> tuple[Path, Path]:
    """An agent's values file and secrets dir under `base`: what an install gives a
    workload cluster (the root CA and the bootstrap token only)."""
    values = base / "agent-values" / f"{name}.yaml"
    values.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: no dumper needed.
    values.write_text(
        json.dumps(
            {
                "common": {"cluster": name},
                "glooAgent": {
                    "enabled": True,
                    "relay": {
                        "serverAddress": f"127.0.0.1:{relay_port}",
                        "authority": "localhost",
                    },
                },
                "gitops": {"relay": {"registrationAddress": f"127.0.0.1:{registration_port}"}},
            }
        )
    )
    secrets = base / "agent-secrets" / name
    for secret, key in (
        ("relay-root-tls-secret", "ca.crt"),
        ("relay-identity-token-secret", "token"),
    ):
        target = secrets / secret / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server_secrets / secret / key, target)
    return values, secrets


def run_in_tempdir(prefix: str, tmpdir: str | None, keep: bool, run: Callable[[Path], None]) -> int:
    """`run` in a fresh temporary folder, removed after unless `keep`; SIGTERM and Ctrl-C
    end it through its finally blocks (so every agent is stopped). The exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=tmpdir))
    try:
        run(base)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def _interrupt(*_: object) -> None:
    # SIGTERM ends the bench like Ctrl-C does, so the finally blocks stop every agent.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10, help="measured changes (default 10)")
    parser.add_argument(
        "--delta-kb",
        type=int,
        default=DELTA_BYTES // 1000,
        help="each change's delta per cluster, in KB of wire JSON (default 100)",
    )
    parser.add_argument("--batch", type=int, default=10, help="agents started at once")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the install lives")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--skip-store", action="store_true", help="skip figure 3")
    parser.add_argument(
        "--relay-only",
        action="store_true",
        help="agents apply in memory (no files): the relay without the demo backend's writes",
    )
    parser.add_argument("--relay-only-agent", nargs=5, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.relay_only_agent:
        cluster, *paths = args.relay_only_agent
        relay_only_agent(cluster, *(Path(p) for p in paths))
        return 0
    return run_in_tempdir("bench-relay-", args.tmpdir, args.keep, lambda base: run(args, base))


if __name__ == "__main__":
    sys.exit(main())
