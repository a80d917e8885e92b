"""Discovery snapshots from a directory: `DIR/<cluster>/**/*.yaml`, one Tree per cluster.

The offline home of the per-cluster inputs (DESIGN section 3): `gitops render|validate|diff
--snapshot DIR`, `gitops snapshot import` and the tests read workload-cluster state from
here instead of Redis. Each cluster folder is read with the plain-directory source, so
links and oversized files arrive as the same markers the core already explains; parsing
the Kubernetes objects is the core's job (the discovery parser).
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.sources.directory import SourceError, read_directory
from gitops.tree import Tree

__all__ = ["read_snapshot_dir"]


def read_snapshot_dir(path: Path) -> dict[str, Tree]:
    """One Tree per immediate, non-hidden subfolder of `path`, keyed by folder (cluster) name.

    Files directly in `path` are ignored (a README next to the clusters is fine). Tree
    paths are relative to the cluster folder; a cluster folder may be a link to a folder.
    """
    if not path.exists():
        raise SourceError(f"snapshot directory '{path}' does not exist")
    if not path.is_dir():
        raise SourceError(f"snapshot path '{path}' is not a directory")
    try:
        with os.scandir(path) as scan:
            clusters = sorted(
                entry.name
                for entry in scan
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=True)
            )
    except OSError as err:
        raise SourceError(f"cannot read snapshot directory '{path}': {err.strerror}") from None
    return {name: read_directory(path / name) for name in clusters}
