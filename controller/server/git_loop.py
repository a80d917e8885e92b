"""`gitops serve`'s continuous sync from Git: what starts a reload, and the statuses after.

Composed by `controller/server/app.py` (`Server.start`). One coalescing `Trigger` runs
`Server.reload` (fetch, load, hand the bundle to the fleet, which translates incrementally
and publishes); it is fired by:

- the poll timer every `gitops.repo.interval`, after a cheap remote-head check
  (`controller.loop.HeadWatch`: `ls-remote`, no objects fetched) says the ref moved;
- webhooks (`POST /hooks/<provider>` on the API listener), when `gitops.webhooks` names
  a Secret;
- file watching (`controller.loop.LocalWatch`) when the repository is a local path.

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
from controller.server.status_loop import StatusReporter
from controller.sources import git
from controller.status import writer_for
from controller.status.errors import StatusError

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
        self.reporter_thread: threading.Thread | None = None

    def routes(self) -> list[Route]:
        """`POST /api/sync`, and the webhook routes when webhooks are configured."""
        routes = [Route("/api/sync", self._sync, methods=["POST"])]
        settings = self.server.values.gitops.webhooks
        if settings.secret_name is not None:
            routes += webhook_routes(self.server.secrets, settings, self._on_hook)
        return routes

    async def _sync(self, request: Request) -> Response:
        # A manual sync: fetch first, so "sync" means the branch as it is now.
        revision = await run_in_threadpool(self._sync_now)
        return JSONResponse({"revision": revision}, status_code=HTTPStatus.ACCEPTED)

    def _sync_now(self) -> str | None:
        self.server.reload()
        return self.server.fleet.approve()

    def _on_hook(self, event: HookEvent) -> None:
        wanted = {self.ref, f"refs/heads/{self.ref}"}
        if event.ref and event.ref not in wanted:
            return  # a push to another branch changes nothing we sync
        self.trigger.fire(f"webhook:{event.provider}")

    def _reload(self, reasons: frozenset[str]) -> None:
        log.info("reload: %s", ", ".join(sorted(reasons)))
        revision = self.server.reload()
        self.head.seen(revision)

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
        try:
            writer = writer_for(status, server.secrets, clone, repo_url=self.url, remote=remote)
        except StatusError as exc:
            log.error("commit statuses disabled: %s", exc)
            return
        self.reporter = StatusReporter(server.fleet, writer, status.prefix)
        self.reporter_thread = threading.Thread(
            target=self.reporter.run, args=(server.stop_event,), name="statuses", daemon=True
        )
        self.reporter_thread.start()

    def stop(self) -> None:
        self.poll.close()
        if self.watch is not None:
            self.watch.close()
        self.trigger.close()
        if self.reporter_thread is not None:
            self.reporter_thread.join(timeout=10)
        if self.reporter is not None:
            self.reporter.writer.close()
