"""Snapshot directories <-> the store: `gitops snapshot export` and `gitops snapshot import`.

Where it sits: the CLI (`controller.commands.snapshot`) calls these; they connect the live
home of the per-cluster inputs (Redis) with the offline one (`SNAP/<cluster>/**/*.yaml`,
DESIGN.md section 3) that `render`, `validate`, `diff` and the tests read through
`controller.sources.snapshots.read_snapshot_dir` and `gitops.discovery.load_cluster`.

Export layout, deterministic (same store, same bytes): `OUT/<cluster>/<namespace>/<file>`
for namespaced objects and `OUT/<cluster>/_cluster/<file>` for cluster-scoped ones (`_` is
not allowed in namespace names, so it cannot clash), one file per GVK named
`<kind>.<version>[.<group>].yaml` in lower case, objects sorted by name, emitted by
`gitops.rendering` (keys sorted, strings quoted whenever YAML could misread them).

Import reads any directory of that shape (files named and grouped any way; `List` objects
unwrapped) with the same parser as the rest of the project. It is all or nothing: a file
that does not parse, or a document that is not a Kubernetes object (apiVersion, kind,
metadata.name), fails the import before anything is written. Each cluster found replaces
that cluster's inputs atomically; clusters in Redis but not in the directory are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from controller.sources import SourceError
from controller.sources.snapshots import read_snapshot_dir
from controller.store.store import Store, StoreError
from gitops import layout, parsing, rendering
from gitops.diagnostics import Diagnostic
from gitops.objects import ObjectId
from gitops.tree import Oversize, is_yaml

__all__ = ["export_snapshots", "import_snapshots", "read_objects"]

CLUSTER_SCOPED_DIR = "_cluster"
#: Problems listed in an import error before "and N more".
_SHOWN_PROBLEMS = 5


def snapshot_files(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """One cluster's objects by the snapshot file they go in
    (`<namespace or _cluster>/<kind>.<version>[.<group>].yaml`), each file's sorted by name:
    what `export_snapshots` writes and the server's previews read."""
    files: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for obj in objects:
        oid = ObjectId.of(obj)
        parts = [oid.kind, oid.version] + ([oid.group] if oid.group else [])
        path = f"{oid.namespace or CLUSTER_SCOPED_DIR}/{'.'.join(parts).lower()}.yaml"
        files.setdefault(path, []).append((oid.name, obj))
    return {
        path: [obj for _, obj in sorted(named, key=lambda item: item[0])]
        for path, named in sorted(files.items())
    }


def export_snapshots(store: Store, out_dir: Path) -> dict[str, int]:
    """Write every cluster's inputs under `out_dir` (empty or new); returns objects per cluster."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise StoreError(f"'{out_dir}' exists and is not an empty directory; choose a new one")
    clusters, _ = store.load_inputs()
    counts: dict[str, int] = {}
    for cluster, objects in clusters.items():
        (out_dir / cluster).mkdir(parents=True, exist_ok=True)
        for relative, named in snapshot_files(objects).items():
            target = out_dir / cluster / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8") as fh:
                rendering.write_all(named, fh.write)
        counts[cluster] = len(objects)
    return counts


def _documents(data: Any) -> Iterator[Any]:
    if (
        isinstance(data, dict)
        and data.get("kind") == "List"
        and isinstance(data.get("items"), list)
    ):
        for item in data["items"]:
            yield from _documents(item)
    else:
        yield data


def read_objects(snapshot_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every cluster's objects from a snapshot directory; StoreError listing what is wrong."""
    try:
        trees = read_snapshot_dir(snapshot_dir)
    except SourceError as exc:
        raise StoreError(str(exc)) from None
    problems: list[str] = []
    result: dict[str, list[dict[str, Any]]] = {}
    for cluster, tree in trees.items():
        objects = result.setdefault(cluster, [])
        diagnostics: list[Diagnostic] = []
        entries = layout.expand(tree, diagnostics)
        problems += [f"{cluster}/{d.format()}" for d in diagnostics]
        for path, entry in sorted(entries.items()):
            shown = f"{cluster}/{path}"
            if not is_yaml(path):
                continue
            if isinstance(entry, Oversize):
                problems.append(f"{shown}: {entry.size:,} bytes is over the file size cap")
                continue
            if not isinstance(entry, bytes):
                continue
            parsed = parsing.parse(shown, entry)
            problems += [d.format() for d in parsed.diagnostics]
            for doc in parsed.documents:
                problems += [d.format() for d in doc.problems]
                if doc.problems:
                    continue
                for data in _documents(doc.data):
                    try:
                        if not isinstance(data, dict):
                            raise ValueError("document is not a mapping")
                        ObjectId.of(data)
                    except ValueError as exc:
                        problems.append(f"{shown}:{doc.line}: not a Kubernetes object ({exc})")
                        continue
                    objects.append(data)
    if problems:
        more = len(problems) - _SHOWN_PROBLEMS
        listed = "; ".join(problems[:_SHOWN_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise StoreError(f"cannot import '{snapshot_dir}': {listed}")
    return result


def import_snapshots(store: Store, snapshot_dir: Path, *, now: float) -> dict[str, int]:
    """Replace each cluster's inputs with its folder's objects; returns objects per cluster.

    Objects read twice (same id in two files) count once: the last one read wins.
    """
    clusters = read_objects(snapshot_dir)
    counts: dict[str, int] = {}
    for cluster, objects in clusters.items():
        store.replace_inputs(cluster, objects, now=now)
        counts[cluster] = len(_unique(objects))
    return counts


def _unique(objects: list[dict[str, Any]]) -> Mapping[ObjectId, dict[str, Any]]:
    return {ObjectId.of(obj): obj for obj in objects}
