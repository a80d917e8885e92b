"""Commit statuses from the server's state: translation, sync and drift per cluster.

`gitops serve` (`controller/server/app.py`) runs one `StatusReporter` thread beside the
fleet. It looks `GATHER` (0.1 s) after the fleet has news (a translation, a publish, an
ACK or NACK, drift: `Fleet.news`), and every `TICK` (0.5 s) regardless, for the other
sources. Each look computes, from the `Fleet` alone, what every context should say
(`gitops.statuses`: the pure summaries) and posts what changed through the configured
writer (`controller.status`: git notes by default, or GitHub, Gitea, GitLab). Status is
summarised from state, never set piecemeal by the steps (Flux's rule):

- `<prefix>/translation` on the commit the fleet last translated: pending while a newer
  commit is loaded but not yet translated, then success or failure from its reports;
- `<prefix>/sync/<cluster>` on the commit whose config was published to that cluster (not
  a newer head that has not been applied): pending until the agent ACKs that version,
  failure on a NACK;
- `<prefix>/drift/<cluster>` on the same commit: the drift the agent reports.

Other parts of the loop add statuses of their own through `sources`: callables returning
`{(commit, context): Status}` that are merged into the fleet's on every tick (a refused
unsigned commit, pull-request previews).

Every status links to its commit's report: `target_url` is `<reports_url>/reports/<sha>`
(a source's status keeps a `target_url` of its own). When the statuses of a commit or its
clusters' rows change (a NACK's later errors change the rows, not the status), and only
then, the reporter writes that commit's `statuses`, `translation` and `sync` sections
(`controller/server/report_sections.py`) into `CommitReports`, before posting, so a link
is never followed to a report that does not say what the status says.

A writer that fails is retried on the next tick (the post is not recorded as done).
Directory sources have no commit, so nothing is posted for them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from controller.server import report_sections
from controller.server.cluster import Translated
from controller.server.commit_reports import CommitReports, Section
from controller.server.fleet import Fleet
from controller.server.report_sections import FleetFacts
from controller.status import StatusWriter
from controller.status.errors import StatusError
from controller.status.notes import NotesWriter
from controller.store import StoreError
from gitops import statuses
from gitops.statuses import InvalidSha, Status

log = logging.getLogger(__name__)

#: Seconds between two looks at the fleet when it has no news (`Fleet.news`).
TICK = 0.5
#: After news, how long to let more arrive before looking: the ACKs of one publish land
#: within it and make one post per context, not a pending and a success each.
GATHER = 0.1

#: Statuses beyond the fleet's: `{(commit, context): Status}`, computed on every tick.
StatusSource = Callable[[], dict[tuple[str, str], Status]]


class StatusReporter:
    """Posts the fleet's statuses through `writer` (see the module docstring)."""

    def __init__(
        self,
        fleet: Fleet,
        writer: StatusWriter,
        prefix: str,
        sources: Iterable[StatusSource] = (),
        *,
        reports: CommitReports | None = None,
        reports_url: str = "",
    ) -> None:
        self.fleet, self.writer, self.prefix = fleet, writer, prefix
        self.sources = list(sources)
        self.reports = reports
        self.reports_url = reports_url.rstrip("/")
        self.posted: dict[tuple[str, str], Status] = {}
        #: Per commit, the statuses and sync rows its report was last written from.
        self.reported: dict[str, tuple[dict[str, Status], dict[str, Any]]] = {}
        #: The last translation and its status: summarised once, not on every tick.
        self._translation: tuple[Translated, Status] | None = None

    def target_url(self, sha: str) -> str:
        return f"{self.reports_url}/reports/{sha}" if self.reports_url else ""

    def wanted(self, facts: FleetFacts | None = None) -> dict[tuple[str, str], Status]:
        """(commit, context) -> the status it should show now."""
        if facts is None:
            facts = report_sections.capture(self.fleet)
        prefix = self.prefix
        out: dict[tuple[str, str], Status] = {}
        done = facts.translated
        if facts.loaded and (done is None or done.revision != facts.loaded):
            context = statuses.translation_context(prefix)
            out[(facts.loaded, context)] = statuses.pending(context, "translating")
        if done is not None and done.revision:
            status = self._translation_status(done)
            out[(done.revision, status.context)] = status
        for c in facts.clusters:
            context = statuses.sync_context(c.name, prefix)
            if c.refused and c.refused_revision:
                text = statuses.truncate(c.refused)
                out[(c.refused_revision, context)] = Status(
                    context, statuses.StatusState.FAILURE, text
                )
            if c.held_revision:
                out[(c.held_revision, context)] = statuses.pending(
                    context, "waiting for a manual sync (gitops.sync.automated is false)"
                )
            sha = c.published_revision
            if not sha or not c.version:
                continue
            sync = statuses.sync(
                c.name,
                c.version,
                c.applied,
                [error for _, error in c.errors],
                objects=c.objects,
                prefix=prefix,
            )
            out[(sha, sync.context)] = sync
            drift = statuses.drift(c.name, c.drift, prefix=prefix)
            out[(sha, drift.context)] = drift
        for source in self.sources:
            out.update(source())
        return {key: self._linked(key[0], status) for key, status in out.items()}

    def _translation_status(self, done: Translated) -> Status:
        cached = self._translation
        if cached is None or cached[0] is not done:
            status = statuses.translation(done.reports, done.diagnostics, prefix=self.prefix)
            cached = self._translation = (done, status)
        return cached[1]

    def _linked(self, sha: str, status: Status) -> Status:
        if status.target_url or not self.reports_url:
            return status
        return dataclasses.replace(status, target_url=self.target_url(sha))

    def record(self, facts: FleetFacts, wanted: dict[tuple[str, str], Status]) -> None:
        """Write the report of every commit whose statuses changed since the last tick."""
        if self.reports is None:
            return
        by_sha: dict[str, dict[str, Status]] = {}
        for (sha, context), status in sorted(wanted.items()):
            by_sha.setdefault(sha, {})[context] = status
        now: dict[str, tuple[dict[str, Status], dict[str, Any]]] = {}
        for sha, found in by_sha.items():
            # The rows too: a NACK's later errors change the report, not the status.
            now[sha] = (found, self._sync_rows(sha, found, facts))
            if self.reported.get(sha) != now[sha]:
                try:
                    statuses.check_sha(sha)
                except InvalidSha:
                    continue  # no writer posts there either
                self._write_report(self.reports, sha, *now[sha], facts)
        # Only commits with statuses now: the rest keep their last report as it is.
        self.reported = now
        self.reports.flush()

    def _sync_rows(self, sha: str, found: dict[str, Status], facts: FleetFacts) -> dict[str, Any]:
        rows = {}
        for c in facts.clusters:
            sync = found.get(statuses.sync_context(c.name, self.prefix))
            if sync is not None:
                drift = found.get(statuses.drift_context(c.name, self.prefix))
                rows[c.name] = report_sections.sync_entry(sha, c, sync, drift)
        return rows

    def _write_report(
        self,
        reports: CommitReports,
        sha: str,
        found: dict[str, Status],
        rows: dict[str, Any],
        facts: FleetFacts,
    ) -> None:
        try:
            old = reports.get(sha) or {}
        except StoreError as exc:
            log.warning("earlier report of %s not read: %s", sha[:12], exc)
            old = {}
        prefix = self.prefix
        held = old["statuses"].document.get("statuses", {}) if "statuses" in old else {}
        shown = {**held, **{context: s.to_json() for context, s in found.items()}}
        sections = {"statuses": Section({"statuses": dict(sorted(shown.items()))})}
        done = facts.translated
        if done is not None and done.revision == sha:
            status = found.get(statuses.translation_context(prefix))
            sections["translation"] = Section(report_sections.translation(done, status))
        if rows:
            before = old["sync"].document if "sync" in old else None
            sections["sync"] = Section(report_sections.merged_clusters(before, rows))
        reports.put_many(sha, sections)

    def tick(self) -> None:
        facts = report_sections.capture(self.fleet)
        wanted = self.wanted(facts)
        try:
            self.record(facts, wanted)
        except Exception:  # a report must never keep a status from being posted
            log.exception("writing commit reports failed")
        due: dict[str, list[Status]] = {}
        for (sha, context), status in sorted(wanted.items()):
            if self.posted.get((sha, context)) != status:
                due.setdefault(sha, []).append(status)
        for sha, batch in due.items():
            try:
                if isinstance(self.writer, NotesWriter):
                    # One note per commit: one write for all its contexts, not one each.
                    self.writer.post_many(sha, batch)
                else:
                    for status in batch:
                        self.writer.post(sha, status)
                        self.posted[(sha, status.context)] = status
            except StatusError as exc:
                log.warning("statuses on %s not all posted: %s", sha[:12], exc)
                continue
            for status in batch:
                self.posted[(sha, status.context)] = status

    def run(self, stop: threading.Event) -> None:
        news = self.fleet.news
        while not stop.is_set():
            if news.wait(TICK) and stop.wait(GATHER):
                break
            news.clear()
            if stop.is_set():
                break
            if not self.fleet.leading:  # only the leader posts (controller/server/replicas.py)
                self.posted.clear()
                continue
            try:
                self.tick()
            except Exception:  # a status must never take the server down
                log.exception("posting statuses failed")
