"""The inventory: what one agent applied to its cluster and still owns, kept on disk.

Called by both cluster backends (`directory`, `kubernetes`) around every `apply`, and read
by `ClusterBackend.inventory`. It is the first half of the prune rule (DESIGN.md section 7):
an object is deleted only if it is recorded here, carries every ownership label live, and
is absent from the desired set. Labels alone are not enough, because people copy labels
onto objects of their own (kustomize-controller #192, #410); the inventory alone is not
enough either, because someone may have taken an object over since.

File: `<state_dir>/inventory-<cluster>.json`, `{"version": 1, "cluster": ..., "objects":
[{group, version, kind, namespace, name}, ...]}` sorted, written atomically (temp file in
the same folder, fsync, rename) so a crash leaves the old or the new file, never half of
one. A missing or unreadable file reads as empty, which prunes nothing: losing the
inventory leaves objects behind, never deletes them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from gitops.objects import ObjectId, owned

__all__ = ["Inventory", "atomic_write", "prune_refusal"]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so readers see the old or the new content, whole;
    `durable`: fsync before the rename, so it also survives a power cut.

    The temp file is hidden (leading dot) so folder watchers and readers skip it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Inventory:
    """The recorded set of owned objects of one cluster, in an agent's state directory."""

    def write_ahead(self, upserts: Iterable[Mapping[str, Any]]) -> set[ObjectId]:
        """Record what an apply is about to write before it writes any of it, so an agent
        killed mid-apply still owns (and can later prune) what it wrote; returns the record.
        Recording an object that never got written is harmless: prune finds nothing."""
        recorded = self.load()
        for obj in upserts:
            try:
                recorded.add(ObjectId.of(obj))
            except ValueError:
                continue  # refused (and logged) by the apply loop
        self.save(recorded)
        return recorded

    def __init__(self, state_dir: Path, cluster: str) -> None:
        self.cluster = cluster
        self.path = state_dir / f"inventory-{cluster}.json"
        #: What this process last read or wrote, and the file's stat then: an apply that
        #: adds nothing new (most do) reads nothing and writes nothing, while a file
        #: changed or lost behind our back is still read again.
        self._known: frozenset[ObjectId] | None = None
        self._stamp: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load(self) -> set[ObjectId]:
        """The recorded ids; empty (so nothing is pruned) when the file is missing or bad."""
        stamp = self._stat()
        if self._known is None or stamp != self._stamp:
            self._known, self._stamp = frozenset(self._read()), stamp
        return set(self._known)

    def _read(self) -> set[ObjectId]:
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as err:
            log.warning("inventory %s unreadable, pruning nothing: %s", self.path, err)
            return set()
        try:
            if raw.get("version") != _FORMAT_VERSION or raw.get("cluster") != self.cluster:
                raise ValueError("version or cluster does not match")
            return {ObjectId(**_id_fields(item)) for item in raw["objects"]}
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            log.warning("inventory %s malformed, pruning nothing: %s", self.path, err)
            return set()

    def save(self, ids: Iterable[ObjectId]) -> None:
        wanted = frozenset(ids)
        if wanted == self._known and self._stat() == self._stamp:
            return
        doc = {
            "version": _FORMAT_VERSION,
            "cluster": self.cluster,
            "objects": [oid._asdict() for oid in sorted(set(ids))],
        }
        atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")
        self._known, self._stamp = wanted, self._stat()


def _id_fields(item: Any) -> dict[str, str]:
    fields = {k: item[k] for k in ObjectId._fields}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ValueError(f"bad inventory entry {item!r}")
    return fields


def prune_refusal(
    oid: ObjectId,
    desired: Collection[ObjectId],
    recorded: Collection[ObjectId],
    live: Mapping[str, Any] | None,
) -> str | None:
    """Why `oid` must not be deleted, or None when the prune rule allows it.

    `live` is the object as it is now (None when it is already gone: nothing to refuse).
    """
    if oid in desired:
        return "still desired in the same change set"
    if oid not in recorded:
        return "not in this agent's inventory"
    if live is not None and not owned(live):
        return "live object lacks the ownership labels"
    return None
