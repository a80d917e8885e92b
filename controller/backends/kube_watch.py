"""List-then-watch of one kind, on a thread: the Kubernetes backend's informer.

`controller.backends.kubernetes` runs one `Informer` per discovered kind (input deltas) and
one per owned output kind (drift). The loop is the one every Kubernetes client uses:

1. list (with the label selector) and hand the whole listing to `on_sync`;
2. watch from the listing's resourceVersion, handing each event to `on_event` and keeping
   the version of the last event (bookmarks included);
3. when the server ends the watch (its timeout), watch again from that version;
4. on 410 Gone (an ERROR event or the HTTP status: the version left the server's history)
   go back to 1. `on_sync` then sees the full state again and diffs it against what it
   knew, so nothing that happened in the gap is lost;
5. on other failures wait (doubling, capped at 30 s) and resume from the last version.

Callbacks run on the informer's thread; an exception in one is logged and the watch goes
on (a bug in a consumer must not silently stop drift detection).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import closing
from typing import Any

from controller.backends.kube_rest import Gone, KubeError, Resource, Rest

__all__ = ["Informer", "normalise"]

log = logging.getLogger(__name__)

#: The server ends each watch after this long; a fresh one then resumes from the last
#: version. Short enough that a half-open connection is noticed, long enough to be cheap.
WATCH_SECONDS = 300
_MAX_BACKOFF = 30.0


def normalise(obj: dict[str, Any], resource: Resource) -> dict[str, Any]:
    """A listed or watched object as the agent passes it on: with apiVersion and kind (list
    items omit them), without managedFields (bulky, and nobody downstream reads them)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    obj["apiVersion"] = resource.api_version
    obj["kind"] = resource.kind
    return obj


class Informer:
    """Keeps one kind (optionally label-selected) in sync; see the module docstring."""

    def __init__(
        self,
        rest: Rest,
        resource: Resource,
        *,
        on_sync: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        label_selector: str = "",
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.rest = rest
        self.resource = resource
        self.on_sync = on_sync
        self.on_event = on_event
        self.query = [("labelSelector", label_selector)] if label_selector else []
        self.watch_seconds = watch_seconds
        self.stopping = threading.Event()
        #: Set after each completed list: tests and the agent can wait for a first sync.
        self.synced = threading.Event()
        self._abort: Callable[[], None] | None = None
        self._abort_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{resource.kind}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        with self._abort_lock:  # held while aborting: the stream cannot end meanwhile
            if self._abort is not None:
                self._abort()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _register(self, abort: Callable[[], None] | None) -> None:
        with self._abort_lock:
            self._abort = abort
            if abort is not None and self.stopping.is_set():
                abort()

    def _list(self) -> str:
        listing = self.rest.call("GET", self.resource.path(), query=self.query)
        items = [normalise(item, self.resource) for item in listing.get("items") or []]
        self._deliver(self.on_sync, items)
        self.synced.set()
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    def _deliver(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("%s watch: a callback failed", self.resource.kind)

    def _watch(self, version: str) -> str | None:
        """Watch from `version` until the server ends it; the last version, None for 410."""
        query = [*self.query, ("resourceVersion", version), ("allowWatchBookmarks", "true")]
        path = self.resource.path()
        events = self.rest.watch(path, query, self.watch_seconds, self._register)
        with closing(events):  # leaving early (410) still releases the connection
            for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise KubeError(int(obj.get("code") or 0), str(obj.get("message") or obj))
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._deliver(self.on_event, kind, normalise(obj, self.resource))
        return version

    def _run(self) -> None:
        version: str | None = None
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                if version is None:
                    log.info("%s watch: history expired (410), listing again", self.resource.kind)
                backoff = 0.5
            except Gone:
                version = None
            except KubeError as err:
                if self.stopping.is_set():
                    break
                log.warning(
                    "%s watch failed, retrying in %.1fs: %s", self.resource.kind, backoff, err
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            except Exception:  # a malformed answer: log it, keep watching
                log.exception("%s watch: unexpected failure, listing again", self.resource.kind)
                version = None
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
