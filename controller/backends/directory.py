"""A directory-backed cluster: a folder of manifests that an agent discovers from and applies to.

Used by `gitops demo` and the tests in place of a real cluster (DESIGN.md sections 3 and 7).
The folder has the discovery-snapshot format (`deploy/demo/clusters/<cluster>/`): any
`*.yaml` below it, multi-document, hidden files ignored. The agent calls it through the
`ClusterBackend` protocol (`controller.backends`).

- `discover` returns the objects of `DISCOVERED_KINDS` found in every file.
- `apply` writes one object per file, `<root>/<namespace or _cluster>/<Kind>.<name>.yaml`,
  in the core's deterministic YAML, atomically; deletes remove such files under the prune
  rule (`controller.backends.inventory`).
- One watchdog observer serves both watches. A file this backend wrote is "owned": we keep
  the SHA-256 of the bytes we last wrote, so an event on it is drift only when the content
  differs (or the file is gone), and our own writes never are. Any other YAML file is an
  input file: its discovered objects are diffed against what it held before and reported
  as input deltas.

The hashes live in memory: after a restart the agent re-applies its full desired set, which
re-establishes them. Until then, edits to files written by an earlier process are not drift.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from controller.backends import (
    ApplyResult,
    Drift,
    DriftCallback,
    InputsCallback,
    Unavailable,
)
from controller.backends.debounce import Debouncer
from controller.backends.inventory import Inventory, atomic_write, prune_refusal
from controller.sources.directory import SourceError, read_entries
from gitops import parsing, rendering
from gitops.discovery import DISCOVERED_KINDS
from gitops.objects import ObjectId
from gitops.plan import ChangeSet, apply_order
from gitops.tree import is_hidden, is_yaml

__all__ = ["CLUSTER_SCOPED_DIR", "DirectoryBackend"]

log = logging.getLogger(__name__)

#: Folder for cluster-scoped outputs (a namespace cannot be named so: `_` is not DNS-1123).
CLUSTER_SCOPED_DIR = "_cluster"
_DISCOVERED = frozenset(DISCOVERED_KINDS)
#: DNS-1123 subdomain: what Kubernetes allows for names and namespaces. Checked before a name
#: becomes a path, so `..` or `/` from a hostile output can never leave the root.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
#: Quiet time before a changed file is read: long enough for an editor's truncate-and-write,
#: short enough that drift is reported well within a second.
SETTLE_SECONDS = 0.2


def _documents(rel: str, data: bytes) -> Iterator[Mapping[str, Any]]:
    """The usable Kubernetes objects of one file (`List` wrappers flattened)."""
    parsed = parsing.parse(rel, data)
    for doc in parsed.documents:
        if doc.problems or not isinstance(doc.data, dict):
            continue
        if doc.data.get("kind") == "List" and isinstance(doc.data.get("items"), list):
            yield from (item for item in doc.data["items"] if isinstance(item, dict))
        else:
            yield doc.data


def _discovered(rel: str, data: bytes) -> dict[ObjectId, dict[str, Any]]:
    found: dict[ObjectId, dict[str, Any]] = {}
    for obj in _documents(rel, data):
        try:
            oid = ObjectId.of(obj)
        except ValueError:
            continue  # the server's discovery parser reports malformed objects
        if (oid.group, oid.version, oid.kind) in _DISCOVERED:
            found[oid] = dict(obj)
    return found


class DirectoryBackend:
    """`ClusterBackend` over a folder of manifests (see the module docstring)."""

    def __init__(self, cluster: str, root: Path, state_dir: Path) -> None:
        self.cluster = cluster
        self.root = root
        self._inventory = Inventory(state_dir, cluster)
        self._lock = threading.Lock()
        #: Relative path -> (SHA-256 of the bytes we last wrote there, the object's id).
        self._written: dict[str, tuple[str, ObjectId]] = {}
        #: Relative path -> the state last reported as drift (a digest, or None: gone), so the
        #: several events one edit raises (modified, closed) are reported once.
        self._reported: dict[str, str | None] = {}
        #: Relative path -> the discovered objects it held when last read.
        self._inputs: dict[str, dict[ObjectId, dict[str, Any]]] = {}
        self._on_inputs: InputsCallback | None = None
        self._on_drift: DriftCallback | None = None
        self._observer: Any = None  # watchdog's Observer is a platform-chosen class
        self._settle: Debouncer | None = None
        #: Relative path -> (the object we last wrote there, the file's stat right after).
        self._last: dict[str, tuple[Mapping[str, Any], tuple[int, int, int] | None]] = {}

    # -- discovery -------------------------------------------------------------------------

    def _read_inputs(self) -> dict[str, dict[ObjectId, dict[str, Any]]]:
        if not self.root.is_dir():
            raise Unavailable(f"cluster folder '{self.root}' does not exist")
        try:
            entries = read_entries(self.root)
        except (OSError, SourceError) as err:
            raise Unavailable(f"cannot read cluster folder '{self.root}': {err}") from None
        return {
            rel: _discovered(rel, data)
            for rel, data in entries.items()
            if is_yaml(rel) and isinstance(data, bytes)
        }

    def discover(self) -> list[dict[str, Any]]:
        per_file = self._read_inputs()
        with self._lock:
            self._inputs = per_file
        merged: dict[ObjectId, dict[str, Any]] = {}
        for rel in sorted(per_file):
            merged.update(per_file[rel])
        return [merged[oid] for oid in sorted(merged)]

    # -- apply -----------------------------------------------------------------------------

    def path_of(self, oid: ObjectId) -> str:
        """The file (relative to the root) that holds an output; ValueError for bad names."""
        for part in (oid.namespace, oid.name):
            if part and not _NAME.fullmatch(part):
                raise ValueError(f"{oid}: {part!r} is not a valid Kubernetes name")
        if not _KIND.fullmatch(oid.kind):
            raise ValueError(f"{oid}: {oid.kind!r} is not a valid kind")
        return f"{oid.namespace or CLUSTER_SCOPED_DIR}/{oid.kind}.{oid.name}.yaml"

    def apply(self, changes: ChangeSet) -> ApplyResult:
        upserts, deletes = apply_order(changes)
        recorded = self._inventory.write_ahead(upserts)
        applied: list[ObjectId] = []
        errors: dict[ObjectId, str] = {}
        skipped: dict[ObjectId, str] = {}
        desired: set[ObjectId] = set()
        for obj in upserts:
            try:
                oid = ObjectId.of(obj)
                desired.add(oid)
                rel = self.path_of(oid)
            except ValueError as err:
                log.error("%s: refusing an output: %s", self.cluster, err)
                continue
            path = self.root / rel
            with self._lock:
                last = self._last.get(rel)
            if last is not None and last[0] == obj and last[1] == _stamp(path):
                # The same object as we last wrote, and the file untouched since: nothing to
                # render or read (a full resync of an unchanged cluster costs a stat per file).
                applied.append(oid)
                continue
            data = rendering.dump(obj).encode()
            digest = hashlib.sha256(data).hexdigest()
            if _holds(path, data):
                # Already these bytes: nothing to write (a full resync of an unchanged cluster
                # writes no file). Recorded as ours, so a later edit is drift.
                with self._lock:
                    self._written[rel] = (digest, oid)
                    self._reported.pop(rel, None)
                    self._last[rel] = (obj, _stamp(path))
                applied.append(oid)
                continue
            try:
                with self._lock:
                    # The digest and the bytes change together under the lock the watcher
                    # reads under, so it never compares one write's bytes with another's.
                    self._written[rel] = (digest, oid)
                    self._reported.pop(rel, None)
                    # Not fsynced: a folder cluster must survive a killed agent (the rename
                    # is atomic), not a power cut; the inventory, which prune trusts, is.
                    atomic_write(path, data, durable=False)
            except OSError as err:
                errors[oid] = f"cannot write {rel}: {err.strerror or err}"
                continue
            with self._lock:
                self._last[rel] = (obj, _stamp(path))
            applied.append(oid)
        recorded |= set(applied)
        self._inventory.save(recorded)

        deleted: list[ObjectId] = []
        for oid in deletes:
            if errors:
                # Prune only after a complete apply (Flux's order): a failed VirtualService
                # update may still reference what we would delete.
                skipped[oid] = f"prune deferred: {len(errors)} object(s) failed to apply"
                continue
            reason = self._delete(oid, desired, recorded)
            if reason is None:
                deleted.append(oid)
            elif reason:
                skipped[oid] = reason
        recorded -= set(deleted)
        self._inventory.save(recorded)
        return ApplyResult(tuple(applied), tuple(deleted), errors, skipped)

    def _delete(self, oid: ObjectId, desired: set[ObjectId], recorded: set[ObjectId]) -> str | None:
        """Delete one output file; None when it is gone, else why it stays."""
        try:
            rel = self.path_of(oid)
        except ValueError as err:
            return str(err)
        path = self.root / rel
        live: Mapping[str, Any] | None = None
        if path.exists():
            docs = list(_documents(rel, path.read_bytes()))
            same = [d for d in docs if _id_or_none(d) == oid]
            if len(docs) != 1 or not same:
                return f"{rel} does not hold exactly this object"
            live = same[0]
        reason = prune_refusal(oid, desired, recorded, live)
        if reason is not None:
            return reason
        with self._lock:
            self._written.pop(rel, None)
            self._last.pop(rel, None)
            self._reported.pop(rel, None)
            path.unlink(missing_ok=True)
        return None

    def inventory(self) -> set[ObjectId]:
        return self._inventory.load()

    # -- watches ---------------------------------------------------------------------------

    def watch_inputs(self, callback: InputsCallback) -> None:
        with self._lock:
            self._on_inputs = callback
        self._start()

    def watch_drift(self, callback: DriftCallback) -> None:
        with self._lock:
            self._on_drift = callback
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._observer is not None:
                return
            self._settle = Debouncer(SETTLE_SECONDS, self.on_path, f"settle-{self.cluster}")
            observer = Observer()
            observer.schedule(_Handler(self), str(self.root), recursive=True)
            observer.daemon = True
            observer.start()
            self._observer = observer

    def close(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=10)
        with self._lock:
            settle, self._settle = self._settle, None
        if settle is not None:
            settle.close()

    def schedule(self, path: str) -> None:
        """Handle `path` once its events have been quiet for `SETTLE_SECONDS`.

        A plain `open(..., "w")` truncates before it writes; reading in between would
        report every object of the file as removed and then added again.
        """
        with self._lock:
            settle = self._settle if self._observer is not None else None
        if settle is not None:
            settle.touch(path)

    def on_path(self, path: str) -> None:
        """A file changed, appeared or vanished (called on the observer's thread)."""
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return
        if is_hidden(rel) or not is_yaml(rel):
            return
        file = self.root / rel
        with self._lock:  # read and compare with no apply writing in between
            try:
                data: bytes | None = file.read_bytes() if file.is_file() else None
            except OSError:
                data = None
            digest = hashlib.sha256(data).hexdigest() if data is not None else None
            ours = self._written.get(rel)
            on_drift, on_inputs = self._on_drift, self._on_inputs
            if ours is not None:
                if digest == ours[0] or (rel in self._reported and self._reported[rel] == digest):
                    return
                self._reported[rel] = digest
        if ours is None:
            self._report_inputs(rel, data, on_inputs)
        elif on_drift is not None:
            on_drift([Drift(ours[1], "deleted" if data is None else "modified")])

    def _report_inputs(self, rel: str, data: bytes | None, callback: InputsCallback | None) -> None:
        now = _discovered(rel, data) if data is not None else {}
        with self._lock:
            before = self._inputs.get(rel, {})
            if now:
                self._inputs[rel] = now
            else:
                self._inputs.pop(rel, None)
            elsewhere = {
                oid for other, objs in self._inputs.items() if other != rel for oid in objs
            }
        upserts = [now[oid] for oid in sorted(now) if before.get(oid) != now[oid]]
        removed = sorted(oid for oid in before if oid not in now and oid not in elsewhere)
        if (upserts or removed) and callback is not None:
            callback(upserts, removed)


def _id_or_none(obj: Mapping[str, Any]) -> ObjectId | None:
    try:
        return ObjectId.of(obj)
    except ValueError:
        return None


class _Handler(FileSystemEventHandler):
    """Forwards every file event (both ends of a move) to the backend."""

    def __init__(self, backend: DirectoryBackend) -> None:
        self.backend = backend

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.backend.schedule(path if isinstance(path, str) else path.decode())


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Inode, modification time and size: any write by anyone changes at least one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
