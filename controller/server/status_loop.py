"""Commit statuses from the server's state: translation, sync and drift per cluster.

`gitops serve` (`controller/server/app.py`) runs one `StatusReporter` thread beside the
fleet. Twice a second it computes, from the `Fleet` alone, what every context should say
(`gitops.statuses`: the pure summaries) and posts what changed through the configured
writer (`controller.status`: git notes by default, or GitHub, Gitea, GitLab). Status is
summarised from state, never set piecemeal by the steps (Flux's rule):

- `<prefix>/translation` on the commit the fleet last translated: pending while a newer
  commit is loaded but not yet translated, then success or failure from its reports;
- `<prefix>/sync/<cluster>` on the commit whose config was published to that cluster (not
  a newer head that has not been applied): pending until the agent ACKs that version,
  failure on a NACK;
- `<prefix>/drift/<cluster>` on the same commit: the drift the agent reports.

A writer that fails is retried on the next tick (the post is not recorded as done).
Directory sources have no commit, so nothing is posted for them.
"""

from __future__ import annotations

import logging
import threading

from controller.server.fleet import Fleet
from controller.status import StatusWriter
from controller.status.errors import StatusError
from controller.status.notes import NotesWriter
from gitops import statuses
from gitops.statuses import Status

log = logging.getLogger(__name__)

#: Seconds between two looks at the fleet.
TICK = 0.5


class StatusReporter:
    """Posts the fleet's statuses through `writer` (see the module docstring)."""

    def __init__(self, fleet: Fleet, writer: StatusWriter, prefix: str) -> None:
        self.fleet, self.writer, self.prefix = fleet, writer, prefix
        self.posted: dict[tuple[str, str], Status] = {}

    def wanted(self) -> dict[tuple[str, str], Status]:
        """(commit, context) -> the status it should show now."""
        fleet, prefix = self.fleet, self.prefix
        out: dict[tuple[str, str], Status] = {}
        with fleet.lock:
            loaded = fleet.bundle.revision if fleet.bundle is not None else None
            done = fleet.translated
            if loaded and (done is None or done.revision != loaded):
                context = statuses.translation_context(prefix)
                out[(loaded, context)] = statuses.pending(context, "translating")
            if done is not None and done.revision:
                status = statuses.translation(done.reports, done.diagnostics, prefix=prefix)
                out[(done.revision, status.context)] = status
            for name, c in sorted(fleet.clusters.items()):
                if c.refused and c.refused_revision:
                    context = statuses.sync_context(name, prefix)
                    text = statuses.truncate(c.refused)
                    out[(c.refused_revision, context)] = Status(
                        context, statuses.StatusState.FAILURE, text
                    )
                if c.held_revision:
                    context = statuses.sync_context(name, prefix)
                    out[(c.held_revision, context)] = statuses.pending(
                        context, "waiting for a manual sync (gitops.sync.automated is false)"
                    )
                sha = c.published_revision
                if not sha or not c.version:
                    continue
                # Versions on the wire carry the cache generation; statuses show the number.
                current = f"{fleet.generation}:"
                held = c.applied or ""
                applied = held[len(current) :] if held.startswith(current) else None
                sync = statuses.sync(
                    name,
                    c.version,
                    applied,
                    list(c.errors.values()),
                    objects=len(c.outputs),
                    prefix=prefix,
                )
                out[(sha, sync.context)] = sync
                drift = statuses.drift(name, c.drift, prefix=prefix)
                out[(sha, drift.context)] = drift
        return out

    def tick(self) -> None:
        due: dict[str, list[Status]] = {}
        for (sha, context), status in sorted(self.wanted().items()):
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
        while not stop.wait(TICK):
            try:
                self.tick()
            except Exception:  # a status must never take the server down
                log.exception("posting statuses failed")
