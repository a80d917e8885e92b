"""End-to-end benchmark (issue 5): a commit -> every agent applied and ACKed -> statuses.

Run from the repository root: `python -m bench.e2e` (10 clusters x 200 services, 20
commits per mode, about 6 minutes) or `python -m bench.e2e --commits 3` (a quick look).

Setup (`bench/e2e_install.py`): the synthetic fleet `CxS` of `bench/fleet.py` committed in
a working repository and pushed to a bare one (the remote the server follows), a `gitops
serve` process with its built-in Redis, one `gitops agent --directory` process per cluster
over mutual TLS. The server is restarted for each mode; the agents stay.

Three trigger modes, `--commits` commits each. Every commit is a one-policy change: the
`attempts` of `svc-0000`'s RetryTimeoutPolicy, alternating 4 and 5, which changes one
VirtualService on every cluster; it is committed and pushed to the bare repository.

- webhook: the bare repository as a `file://` URL (no file watching), the poll at 24h;
  push, then `POST /hooks/generic` with the token from `gitops.webhooks.secretName`.
- watch: the bare repository as a local path: the server's file watch sees the ref move.
- poll: a `file://` URL polled every `--interval` (5s); before each commit a random pause
  of up to one interval, so commits land anywhere in the poll cycle.

In webhook and watch modes each commit waits the coalesce window plus 1 s after the last
one's statuses: a status write into a watched repository fires the file watch (see
docs/benchmarks.md), and a commit inside the window that opened would ride on it.

Per commit, timed from the moment `git push` returned (bench clock, the same machine):
the VirtualService file in every cluster folder shows the new value (its mtime: when the
agent wrote it), `/api/clusters` shows a new output version for every cluster
(published) and then applied == published for all (ACKed), and the git note on the commit
shows `success` for `mesh-gitops/translation` and every `mesh-gitops/sync/<cluster>`
(statuses written). The bench polls every 20 ms, so observed times are late by up to that.

Stage breakdown: fetch, load, translate and publish come from the server's own histogram
`mesh_gitops_reconcile_stage_seconds{stage}` (scraped from `/metrics` before and after
each commit; the difference of the sums); trigger = published seen - commit - those four
(webhook delivery or poll wait or file event, the coalesce window, the worker waking up);
apply = all ACKed - published (relay, the agents' file writes, ACK); status = statuses
written - all ACKed (the status reporter's 0.5 s tick, the note write, the push).

Targets (issue 5): webhook and watch p50 <= 2 s and p99 <= 5 s, poll max <= interval +
2 s, on commit -> statuses written. Each prints met / not met and its ratio to target; the
exit status is 0 either way (a measurement, not a test). `--keep` keeps the temp dir (the
server's and agents' logs are in `logs/`).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import fleet as fleets
from bench.e2e_install import Install
from bench.relay import (
    cpu_s,
    git,
    log,
    out,
    percentile,
    retry_edit,
    run_in_tempdir,
    verdict,
)

MODES = ("webhook", "watch", "poll")
P50_TARGET_S, P99_TARGET_S, POLL_SLACK_S = 2.0, 5.0, 2.0
#: The RetryTimeoutPolicy every commit edits, and how often the bench looks.
SERVICE = "svc-0000"
STEP_S = 0.02
#: Pause after each measured commit in the webhook and watch modes, beyond the coalesce.
SETTLE_S = 1.0
#: A commit that has not gone through by then is an error, not a slow figure.
COMMIT_TIMEOUT_S = 120.0
STAGES = ("trigger", "fetch", "load", "translate", "publish", "apply", "status")
SERVER_STAGES = ("fetch", "load", "translate", "publish")


@dataclass
class Sample:
    """One commit's timeline, in seconds after the commit."""

    files: float  # the last cluster's VirtualService file written
    published: float  # every cluster's new output version seen
    acked: float  # every cluster's ACK of it seen
    statuses: float  # the note shows success for translation and every sync
    server: dict[str, float]  # fetch, load, translate, publish: the server's own seconds
    observations: dict[str, int]  # how many times the server observed each of them

    def stages(self) -> dict[str, float]:
        timed = sum(self.server.get(s, 0.0) for s in SERVER_STAGES)
        return {
            "trigger": self.published - timed,
            **{s: self.server.get(s, 0.0) for s in SERVER_STAGES},
            "apply": self.acked - self.published,
            "status": self.statuses - self.acked,
        }


def seconds(duration: str) -> float:
    """A Go duration as the values take it (`5s`, `500ms`, `1m`) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise argparse.ArgumentTypeError(f"{duration!r} is not a duration like 5s or 500ms")
    return sum(float(n) * units[u] for n, u in parts)


class Run:
    """The commits of every mode against one installation."""

    def __init__(self, install: Install) -> None:
        self.install = install
        self.commits = 0
        self.vs_files: dict[str, Path] = {}

    def find_files(self) -> None:
        """The VirtualService each commit changes, in every cluster folder."""
        for name in self.install.names:
            found = sorted(
                self.install.cluster_dir(name).glob(f"*/VirtualService.routetable-{SERVICE}-*")
            )
            if len(found) != 1:
                raise RuntimeError(f"{name}: expected one VirtualService of {SERVICE}: {found}")
            self.vs_files[name] = found[0]

    def commit(self, mode: str) -> tuple[str, int, float]:
        """Edit the policy, commit and push; (sha, the new attempts, when the push returned)."""
        self.commits += 1
        attempts = 4 if self.commits % 2 else 5
        if retry_edit(self.install.repo, {SERVICE}, attempts) != 1:
            raise RuntimeError(f"the RetryTimeoutPolicy of {SERVICE} was not found")
        git(self.install.repo, "commit", "-qam", f"{mode}: {SERVICE} retries {attempts}")
        git(self.install.repo, "push", "-q", "origin", "main")
        t0 = time.time()
        return git(self.install.repo, "rev-parse", "HEAD"), attempts, t0

    def measure(self, mode: str) -> Sample:
        inst = self.install
        before = {n: c["outputVersion"] for n, c in inst.clusters().items()}
        metrics_before = inst.stage_metrics()
        sha, attempts, t0 = self.commit(mode)
        if mode == "webhook":
            inst.webhook(sha)
        wanted = f"attempts: {attempts}"
        written: dict[str, float] = {}
        published = acked = done = 0.0
        while not done:
            now = time.time()
            if now - t0 > COMMIT_TIMEOUT_S:
                raise RuntimeError(
                    f"commit {sha[:12]} ({mode}) not through after {COMMIT_TIMEOUT_S:.0f} s: "
                    f"files {len(written)}/{len(inst.names)}, published {bool(published)}, "
                    f"ACKed {bool(acked)}; see {inst.server_log}"
                )
            for name, path in self.vs_files.items():
                if name not in written:
                    try:
                        if wanted in path.read_text():
                            written[name] = path.stat().st_mtime
                    except OSError:
                        pass  # being replaced
            if not acked:
                clusters = inst.clusters()
                versions = [clusters[n]["outputVersion"] or 0 for n in inst.names]
                if not published and all(
                    v > (before[n] or 0) for n, v in zip(inst.names, versions, strict=True)
                ):
                    published = now
                if published and all(
                    clusters[n]["appliedVersion"] == clusters[n]["outputVersion"]
                    for n in inst.names
                ):
                    acked = now
            elif len(written) == len(inst.names) and inst.statuses_done(sha):
                done = now
            inst.alive()
            time.sleep(STEP_S)
        metrics_after = inst.stage_metrics()
        server, counts = {}, {}
        for stage in SERVER_STAGES:
            total, count = metrics_after.get(stage, (0.0, 0.0))
            total0, count0 = metrics_before.get(stage, (0.0, 0.0))
            server[stage], counts[stage] = total - total0, int(count - count0)
        return Sample(
            max(written.values()) - t0, published - t0, acked - t0, done - t0, server, counts
        )

    def mode(self, mode: str, commits: int, interval: str, coalesce: str) -> list[Sample]:
        inst = self.install
        started = time.time()
        inst.start_server(mode, interval, coalesce)
        if not inst.agents:
            inst.start_agents()
        head = git(inst.repo, "rev-parse", "HEAD")
        inst.wait(lambda: inst.synced(head), f"every cluster synced ({mode} server)")
        if not self.vs_files:
            self.find_files()
        took = time.time() - started
        log(f"{mode}: server up and {len(inst.names)} clusters synced in {took:.0f} s")
        time.sleep(1.0)  # the first sync's statuses and the agents' watchers settle
        # Poll: anywhere in the poll cycle. Webhook, watch: past the coalesce window that
        # the previous commit's last status write may have opened (docs/benchmarks.md).
        pause = seconds(interval) if mode == "poll" else 0.0
        settle = seconds(coalesce) + SETTLE_S
        cpu0 = cpu_s(inst.server.pid if inst.server else 0), sum(cpu_s(p) for p in inst.pids())
        samples = []
        for n in range(commits):
            time.sleep(random.uniform(0, pause) if pause else settle)
            sample = self.measure(mode)
            samples.append(sample)
            log(
                f"{mode} {n + 1}/{commits}: statuses {sample.statuses:.2f} s "
                f"(files {sample.files:.2f}, published {sample.published:.2f}, "
                f"ACKed {sample.acked:.2f})"
            )
        cpu = cpu_s(inst.server.pid if inst.server else 0) - cpu0[0]
        agents = sum(cpu_s(p) for p in inst.pids()) - cpu0[1]
        inst.stop_server()
        report(mode, samples, interval, cpu, agents)
        return samples


def report(mode: str, samples: list[Sample], interval: str, cpu: float, agents: float) -> None:
    """One mode's figures: the commits, the percentiles with their targets, the stages."""
    trigger = {
        "webhook": "POST /hooks/generic",
        "watch": "file watch",
        "poll": f"poll every {interval}",
    }
    out(f"\n{mode} ({trigger[mode]}), {len(samples)} commits")
    out("  commit  files  published  ACKed  statuses | " + " ".join(f"{s:>9}" for s in STAGES))
    for i, s in enumerate(samples, 1):
        stages = s.stages()
        out(
            f"  {i:>6}  {s.files:5.2f}  {s.published:9.2f}  {s.acked:5.2f}  {s.statuses:8.2f} | "
            + " ".join(f"{stages[k]:9.3f}" for k in STAGES)
        )
    for what, values in (
        ("commit -> all ACKed", [s.acked for s in samples]),
        ("commit -> statuses written", [s.statuses for s in samples]),
    ):
        out(
            f"  {what}: p50 {statistics.median(values):.2f} s, p99 {percentile(values, 99):.2f} s, "
            f"max {max(values):.2f} s"
        )
    totals = [s.statuses for s in samples]
    if mode == "poll":
        limit = seconds(interval) + POLL_SLACK_S
        worst = max(totals)
        out(
            f"  target commit -> statuses <= interval + {POLL_SLACK_S:.0f} s = {limit:.0f} s: "
            f"max {worst:.2f} s, ratio {worst / limit:.2f} ({verdict(worst, limit)})"
        )
    else:
        p50, p99 = statistics.median(totals), percentile(totals, 99)
        out(
            f"  target p50 <= {P50_TARGET_S:.0f} s: {p50:.2f} s, ratio {p50 / P50_TARGET_S:.2f} "
            f"({verdict(p50, P50_TARGET_S)}); p99 <= {P99_TARGET_S:.0f} s: {p99:.2f} s, "
            f"ratio {p99 / P99_TARGET_S:.2f} ({verdict(p99, P99_TARGET_S)})"
        )
    medians = {k: statistics.median(s.stages()[k] for s in samples) for k in STAGES}
    out("  stages (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in medians.items()))
    odd = sorted({f"{k} x{c}" for s in samples for k, c in s.observations.items() if c != 1})
    if odd:
        out(f"  note: server stage observations per commit other than one: {', '.join(odd)}")
    out(f"  CPU over the mode: server {cpu:.1f} s, agents {agents:.1f} s")


def run(args: argparse.Namespace, base: Path) -> None:
    size = fleets.FleetSize(args.clusters, args.services)
    found = fleets.ensure(size, args.cache)
    log(found.describe())
    install = Install(base, found)
    try:
        install.prepare()
        out(
            f"e2e: {size.label} ({len(install.names)} agent processes, directory backends), "
            f"{args.commits} commits per mode, coalesce {args.coalesce}; one-policy change "
            f"({SERVICE}'s RetryTimeoutPolicy attempts)"
        )
        bench = Run(install)
        for mode in args.modes:
            bench.mode(mode, args.commits, args.interval, args.coalesce)
    finally:
        log("stopping the server and the agents")
        install.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--commits", type=int, default=20, help="commits per mode (default 20)")
    parser.add_argument(
        "--modes", type=lambda s: s.split(","), default=list(MODES), help="webhook,watch,poll"
    )
    parser.add_argument("--interval", default="5s", help="poll interval of the poll mode")
    parser.add_argument(
        "--coalesce",
        default="250ms",
        help="gitops.webhooks.coalesce (default 250ms, as the server)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="where fleets are cached")
    parser.add_argument("--seed", type=int, default=5, help="seed of the poll mode's pauses")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the install lives")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    unknown = set(args.modes) - set(MODES)
    if unknown or args.commits < 1:
        parser.error(f"modes are {', '.join(MODES)}; --commits at least 1")
    seconds(args.interval)
    seconds(args.coalesce)
    random.seed(args.seed)
    return run_in_tempdir("bench-e2e-", args.tmpdir, args.keep, lambda base: run(args, base))


if __name__ == "__main__":
    sys.exit(main())
