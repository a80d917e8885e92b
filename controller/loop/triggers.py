"""What starts a reconcile, and how bursts of starts become one run.

DESIGN.md section 8, issue 5 ("The loop"). `gitops serve` wraps its reconcile in one
`Trigger`; every source of change calls `Trigger.fire(reason)`: the webhook routes
(`controller.loop.webhooks`), a `PollTimer` whose check is a `HeadWatch`
(`controller.loop.remote_head`), a `LocalWatch` when the source is a local path, and the
input-snapshot handler. The reconcile runs on the trigger's own thread, one at a time.

Coalescing: the first fire opens a window of `coalesce` seconds; every fire until the
window closes joins that run, whose callback gets the union of the reasons. The window is
counted from the first fire, not the last, so a steady stream of pushes still gets a run
every window instead of starving. Fires that arrive while a run is in progress are
collected the same way and make exactly one more run after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pygit2
from watchdog.events import (
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

__all__ = ["LocalWatch", "PollTimer", "Trigger"]

log = logging.getLogger(__name__)

#: How long `close` waits for a running callback or check before giving up on it: a
#: reconcile stuck on the network must not hang shutdown forever.
_CLOSE_TIMEOUT = 30.0


class Trigger:
    """Runs `callback(reasons)` on its own thread after fires, one run per coalesce window."""

    def __init__(
        self,
        callback: Callable[[frozenset[str]], None],
        coalesce: float,
        name: str = "gitops-trigger",
    ) -> None:
        self._callback = callback
        self._coalesce = coalesce
        self._cond = threading.Condition()
        self._reasons: set[str] = set()
        self._first_fire: float | None = None
        self._running = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def fire(self, reason: str) -> None:
        """Ask for a run; cheap and non-blocking, callable from any thread."""
        with self._cond:
            if self._closed:
                return
            self._reasons.add(reason)
            if self._first_fire is None:
                self._first_fire = time.monotonic()
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no run is pending or in progress; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._reasons or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Drop pending fires, let a running callback finish, stop the thread."""
        with self._cond:
            self._closed = True
            self._reasons.clear()
            self._cond.notify_all()
        self._thread.join(_CLOSE_TIMEOUT)
        if self._thread.is_alive():
            log.warning("trigger %s: the running reconcile did not stop", self._thread.name)

    def _loop(self) -> None:
        while True:
            with self._cond:
                reasons = self._next_batch()
                if reasons is None:
                    return
                self._running = True
            try:
                self._callback(reasons)
            except Exception:
                # The loop outlives one failed run: the next fire (or poll) tries again.
                log.exception("reconcile triggered by %s failed", ", ".join(sorted(reasons)))
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _next_batch(self) -> frozenset[str] | None:
        """Under the lock: wait for a fire and its window; the reasons, or None when closed."""
        while not self._closed:
            if self._first_fire is None:
                self._cond.wait()
                continue
            left = self._first_fire + self._coalesce - time.monotonic()
            if left > 0:
                self._cond.wait(left)
                continue
            reasons = frozenset(self._reasons)
            self._reasons.clear()
            self._first_fire = None
            return reasons
        return None


class PollTimer:
    """Every `interval` seconds, ask `check` whether the remote moved; fire `trigger` if so."""

    def __init__(self, interval: float, check: Callable[[], bool], trigger: Trigger) -> None:
        self._interval = interval
        self._check = check
        self._trigger = trigger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gitops-poll", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(_CLOSE_TIMEOUT)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                moved = self._check()
            except Exception:
                # A check that fails is a bug in it (HeadWatch turns Git errors into
                # "moved"); keep polling rather than stop following the repository.
                log.exception("poll check failed")
                continue
            if moved:
                self._trigger.fire("poll")


#: File events that mean content changed; watchdog also reports opens and closes, which
#: our own reconcile causes when it reads the files.
_CHANGES = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED}
)


class LocalWatch:
    """Fire `trigger` (reason `local`) when the local source at `path` changes.

    Inside a Git repository (a working copy, a subfolder of one, or a bare repository)
    the source is read at a ref, so only ref changes matter: `HEAD`, `packed-refs` and
    `refs/` under the git directory, which every commit, checkout, fetch or reset
    touches. A plain directory is read as it is on disk, so any file change counts.
    """

    def __init__(self, path: Path, trigger: Trigger) -> None:
        found = pygit2.discover_repository(str(path))
        self._git_dir = Path(found).resolve() if found else None
        self._root = self._git_dir or path.resolve()
        self._trigger = trigger
        self._observer = Observer()
        self._observer.schedule(_Handler(self._on_event), str(self._root), recursive=True)
        self._observer.start()

    @property
    def watched(self) -> Path:
        """The folder under watch: the git directory, or the plain directory itself."""
        return self._root

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(_CLOSE_TIMEOUT)

    def _on_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        paths = [event.src_path, event.dest_path]
        if any(self._relevant(_text(p)) for p in paths if p):
            self._trigger.fire("local")

    def _relevant(self, path: str) -> bool:
        if self._git_dir is None:
            return True
        try:
            rel = Path(path).resolve().relative_to(self._git_dir).as_posix()
        except ValueError:
            return False
        if rel.endswith(".lock"):
            return False  # git writes `<ref>.lock` and renames it over the ref
        # Not refs/notes (the folder, or anything in it): the server's own commit statuses
        # (git notes) land there, and must not start a reload of their own.
        if rel == "refs/notes" or rel.startswith("refs/notes/"):
            return False
        return rel in ("HEAD", "packed-refs") or rel.startswith("refs/")


class _Handler(FileSystemEventHandler):
    def __init__(self, on_event: Callable[[FileSystemEvent], None]) -> None:
        super().__init__()
        self._on_event = on_event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._on_event(event)


def _text(path: str | bytes) -> str:
    return path.decode(errors="surrogateescape") if isinstance(path, bytes) else path
