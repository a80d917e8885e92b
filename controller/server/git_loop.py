"""`gitops serve`'s continuous sync from Git: what starts a reload, and the statuses after.

Composed by `controller/server/app.py` (`Server.start`). One coalescing `Trigger` runs
`Server.reload` (fetch, load, hand the bundle to the fleet, which translates incrementally
and publishes); it is fired by:

- the poll timer every `gitops.repo.interval`, after a cheap remote-head check
  (`controller.loop.HeadWatch`: `ls-remote`, no objects fetched) says the ref moved;
- webhooks (`POST /hooks/<provider>` on the API listener), when `gitops.webhooks` names
  a Secret;
- file watching (`controller.loop.LocalWatch`) when the repository is a local path;
- on the leader, triggers followers forwarded (`controller/server/replicas.py`): a
  follower that receives a webhook or `POST /api/sync` reloads its own config and hands
  the trigger to the leader through Redis (`gitops#triggers`); the leader fires its own
  trigger with the reason `forwarded:<reason>` and, for a sync, approves the commit the
  follower approved once it has loaded it.

Commit statuses are posted by a `StatusReporter` thread (git notes by default) for Git
sources; a plain directory has no commit to post to.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.loop import HeadWatch, HookEvent, LocalWatch, PollTimer, Trigger, webhook_routes
from controller.server import replicas
from controller.server.api_auth import guarded
from controller.server.commit_reports import CommitReports
from controller.server.previews import Previews, for_server
from controller.server.report_pages import base_url, report_routes
from controller.server.status_loop import StatusReporter, StatusSource
from controller.sources import git
from controller.status import writer_for
from controller.status.errors import StatusError
from controller.store import StoreError
from controller.store.leader import Forwarded

if TYPE_CHECKING:
    from controller.server.app import Server

log = logging.getLogger(__name__)

_S = 1_000_000_000


class GitLoop:
    """Triggers and status reporting for one server (see the module docstring)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        gitops = server.values.gitops
        self.url = gitops.repo.url or ""
        self.ref = gitops.repo.ref
        self.trigger = Trigger(self._reload, gitops.webhooks.coalesce / _S, "git-loop")
        self.head = HeadWatch(self.url, self.ref)
        self.poll = PollTimer(gitops.repo.interval / _S, self.head, self.trigger)
        self.watch: LocalWatch | None = None
        local = Path(self.url)
        if not git.is_remote(self.url) and local.exists():
            self.watch = LocalWatch(local, self.trigger)
        self.reporter: StatusReporter | None = None
        #: Per-commit reports served at `/reports/<sha>` (statuses' `target_url`).
        self.reports = CommitReports(store=server.fleet.store)
        #: Statuses beyond the fleet's (see `StatusReporter`): added before `start_statuses`.
        self.status_sources: list[StatusSource] = [server.refused_statuses]
        self.reporter_thread: threading.Thread | None = None
        #: Pull-request previews (`controller/server/previews.py`), for Git sources.
        self.previews: Previews | None = None
        #: Commits followers' forwarded syncs approved (None: whatever loads), approved
        #: here by the next reload that loads them.
        self._approvals: set[str | None] = set()
        self._approvals_lock = threading.Lock()
        server.fleet.on_forwarded = self._on_forwarded

    def routes(self) -> list[Route]:
        """`POST /api/sync` (behind `gitops.api.tokenSecret`, `controller.server.api_auth`),
        and the webhook routes when webhooks are configured."""
        api = self.server.values.gitops.api
        sync = guarded(
            "POST /api/sync",
            self._sync,
            self.server.secrets,
            api,
            listen=self.server.values.gitops.listen.api,
        )
        routes = [Route("/api/sync", sync, methods=["POST"]), *report_routes(self.reports)]
        settings = self.server.values.gitops.webhooks
        if settings.secret_name is not None:
            routes += webhook_routes(self.server.secrets, settings, self._on_hook)
        return routes

    async def _sync(self, request: Request) -> Response:
        # A manual sync: fetch first, so "sync" means the branch as it is now.
        try:
            revision, forwarded = await run_in_threadpool(self._sync_now)
        except StoreError as exc:
            status = HTTPStatus.SERVICE_UNAVAILABLE
            return JSONResponse({"error": "ServiceUnavailable", "detail": str(exc)}, status.value)
        body: dict[str, str | bool | None] = {"revision": revision}
        if forwarded:
            body["forwarded"] = True
        return JSONResponse(body, status_code=HTTPStatus.ACCEPTED)

    def _sync_now(self) -> tuple[str | None, bool]:
        """Reload and approve the commit loaded; on a follower, also hand the sync to the
        leader, which approves that same commit once it has loaded it. Returns the commit
        and whether it was forwarded."""
        self.server.reload()
        revision = self.server.fleet.approve()
        return revision, replicas.forward(self.server.fleet, "sync", revision)

    def _on_hook(self, event: HookEvent) -> None:
        if self.previews is not None:
            self.previews.wake()  # any push may open or move a pull request
        wanted = {self.ref, f"refs/heads/{self.ref}"}
        if event.ref and event.ref not in wanted:
            # A push to another branch changes nothing we sync; the leader's previews
            # (whose statuses it posts) may still want it.
            self._forward(f"preview:{event.provider}")
            return
        reason = f"webhook:{event.provider}"
        self.trigger.fire(reason)  # a follower too: it checks registrations against its config
        self._forward(reason)

    def _forward(self, reason: str) -> None:
        try:
            replicas.forward(self.server.fleet, reason)
        except StoreError as exc:
            log.warning("%s: the leader sees the commit at its next poll", exc)

    def _on_forwarded(self, entry: Forwarded) -> None:
        """On the leader (the fleet's worker): a trigger a follower forwarded."""
        if self.previews is not None:
            self.previews.wake()
        if entry.reason.startswith("preview:"):
            return
        if entry.reason == "sync":
            with self._approvals_lock:
                self._approvals.add(entry.approve)
        self.trigger.fire(f"forwarded:{entry.reason}")

    def _reload(self, reasons: frozenset[str]) -> None:
        log.info("reload: %s", ", ".join(sorted(reasons)))
        # Taken before the fetch: an approval forwarded meanwhile waits for the next run,
        # which its fire has already asked for.
        with self._approvals_lock:
            approvals, self._approvals = self._approvals, set()
        revision = self.server.reload()
        if approvals:
            self._approve_forwarded(approvals)
        # The head read, even when verification refused it: polls fetch it again only
        # once the branch moves (a refused head stays refused).
        self.head.seen(self.server.read_revision or revision)
        if self.previews is not None:
            self.previews.wake()  # the base may have moved

    def _approve_forwarded(self, approvals: set[str | None]) -> None:
        """Approve the commit just loaded if a follower's forwarded sync approved it; one it
        did not load (the branch moved on meanwhile, the fetch failed) is not approved."""
        bundle = self.server.bundle
        loaded = bundle.revision if bundle is not None else None
        if loaded in approvals or None in approvals:
            log.info("forwarded sync: approved %s", self.server.fleet.approve())
        for wanted in sorted(a for a in approvals if a is not None and a != loaded):
            log.warning(
                "a sync forwarded for commit %s is not approved: the leader loaded %s "
                "(run gitops sync again)",
                wanted,
                loaded,
            )

    def start_statuses(self) -> None:
        """Post statuses for Git sources (the repository's own clone gets the notes)."""
        server = self.server
        status = server.values.gitops.status
        if git.is_remote(self.url):
            clone, remote = git.cache_path(self.url, server.cache_dir), self.url
        elif git.is_repository_root(Path(self.url)):
            clone, remote = Path(self.url), None  # the repository itself: nothing to push
        else:
            return
        self.previews = for_server(server, clone, self.reports)
        self.status_sources.append(self.previews.statuses)
        self.previews.start()
        try:
            writer = writer_for(status, server.secrets, clone, repo_url=self.url, remote=remote)
        except StatusError as exc:
            log.error("commit statuses disabled: %s", exc)
            return
        url = base_url(status.reports_url, server.values.gitops.listen.api, server.ports["api"])
        self.reporter = StatusReporter(
            server.fleet,
            writer,
            status.prefix,
            self.status_sources,
            reports=self.reports,
            reports_url=url,
        )
        self.reporter_thread = threading.Thread(
            target=self.reporter.run, args=(server.stop_event,), name="statuses", daemon=True
        )
        self.reporter_thread.start()

    def stop(self) -> None:
        self.poll.close()
        if self.watch is not None:
            self.watch.close()
        self.trigger.close()
        if self.previews is not None:
            self.previews.close()
        if self.reporter_thread is not None:
            self.reporter_thread.join(timeout=10)
        if self.reporter is not None:
            self.reporter.writer.close()
