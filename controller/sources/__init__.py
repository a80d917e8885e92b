"""Repository sources: where the pipeline's input tree comes from.

First stage of the flow (source -> load -> translate -> plan -> publish). The CLI
(`validate`, `render`, `diff`) and the reconcile loop call `open_source` with the same
arguments and get the same `gitops.tree.Tree`, which `gitops.loading.load` consumes.

What a location means:

- a URL (`file://`, `http(s)://`, `ssh://`, `git://`, scp-like `user@host:path`): a bare
  clone cached under `cache_dir`, fetched on every call, read at `ref` (default: the
  remote's HEAD) -- `controller.sources.git`;
- a local path with `ref`: that folder of its enclosing repository, at `ref`;
- a local repository root without `ref`: the repository at HEAD (uncommitted edits are
  not read);
- any other local folder: its files as they are on disk -- `controller.sources.directory`.

Every failure is a `SourceError` whose message can be shown to the user as is; URLs in it
never carry credentials.
"""

from __future__ import annotations

from pathlib import Path

from controller.sources import directory, git
from controller.sources.directory import SourceError
from gitops.tree import Tree

__all__ = ["SourceError", "open_source"]


def open_source(location: str, ref: str | None, cache_dir: Path) -> Tree:
    """Read the repository at `location` (URL or path) at `ref` into a Tree."""
    if git.is_remote(location):
        return git.open_remote(location, ref, cache_dir)
    path = Path(location)
    if ref is not None or git.is_repository_root(path):
        return git.open_local(path, ref)
    return directory.read_directory(path)
