"""Preview engine, runtime half: two refs -> base and merged-head renderings -> `Preview`.

Where it sits: `gitops diff` (controller/commands/diff.py) calls `preview`, and the server's
preview step will call the same function for refs matching `gitops.previews.refs`, so the
terminal and the `<prefix>/preview` status always agree. The pure half is `gitops.preview`.

The head is merged onto the base in memory (`Repository.merge_commits`): what is previewed is
what the pull request would produce once merged, not the branch as it stands. No ref, index
file, working tree or tree object is written; the merged index is read straight into a
`gitops.tree.Tree`, the same way `controller.sources.git` reads a commit. (libgit2 does put
the blobs of content-merged files into the object database; they are unreferenced, and
`git gc` drops them.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import FileMode

from controller.sources.directory import SourceError
from controller.sources.git import read_commit, resolve
from gitops import pipeline
from gitops.preview import Preview, diff_clusters
from gitops.translate import ClusterOutput
from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree, is_hidden, wanted

__all__ = ["MergeConflict", "PreviewError", "PreviewResult", "preview"]


class PreviewError(Exception):
    """A preview that cannot be computed: the user must fix refs or the repository.

    Subclasses: `MergeConflict`. A bad ref or unreadable repository is a `SourceError`
    from the Git source and is re-raised as it is.
    """


class MergeConflict(PreviewError):
    """The head does not merge cleanly onto the base; `paths` are the conflicting files."""

    def __init__(self, base: str, head: str, paths: tuple[str, ...]) -> None:
        self.paths = paths
        listed = ", ".join(paths)
        super().__init__(f"'{head}' does not merge cleanly onto '{base}': conflicts in {listed}")


@dataclass(frozen=True)
class PreviewResult:
    preview: Preview
    #: The two pipeline runs (reports, diagnostics) for callers that show more than the diff.
    base: pipeline.Outcome
    head: pipeline.Outcome


def preview(
    repo_path: Path, base_ref: str, head_ref: str, snapshots: Mapping[str, Tree]
) -> PreviewResult:
    """Render `base_ref` and `head_ref` merged onto it against `snapshots`, and diff them.

    `repo_path` is the repository root or a folder in it (the config's root, as for
    `gitops render`). Raises `SourceError` for a missing repository or ref, and
    `MergeConflict` when the merge does not apply cleanly.
    """
    repo, subdir = _open(repo_path)
    origin = str(repo_path)
    try:
        base_commit, _ = resolve(repo, base_ref, origin)
        head_commit, _ = resolve(repo, head_ref, origin)
        base_tree = Tree(
            entries=read_commit(repo, base_commit, subdir, f"{origin}@{base_ref}"),
            revision=None,
            origin=f"{origin}@{base_ref}",
        )
        head_entries = _merged(repo, base_commit, head_commit, subdir, base_ref, head_ref)
    except pygit2.GitError as err:
        raise SourceError(f"cannot merge '{head_ref}' onto '{base_ref}': {err}") from None
    head_tree = Tree(entries=head_entries, origin=f"{origin}@{head_ref} merged onto {base_ref}")
    base_out, base_outcome = _render(base_tree, snapshots)
    head_out, head_outcome = _render(head_tree, snapshots)
    result = diff_clusters(base_out, head_out, base_outcome.reports, head_outcome.reports)
    meta = {
        "base": f"{base_ref} ({str(base_commit.id)[:12]})",
        "head": f"{head_ref} ({str(head_commit.id)[:12]})",
    }
    result = Preview(result.clusters, result.invalid, meta)
    return PreviewResult(result, base_outcome, head_outcome)


def _render(
    tree: Tree, snapshots: Mapping[str, Tree]
) -> tuple[dict[str, list[dict[str, Any]]], pipeline.Outcome]:
    # A preview needs every object of every cluster at once to pair them; a fleet-size
    # preview would diff cluster by cluster from two sinks instead.
    rendered: dict[str, list[dict[str, Any]]] = {}

    def keep(output: ClusterOutput) -> None:
        rendered[output.cluster] = list(output.objects)

    outcome = pipeline.run(tree, snapshots, keep)
    return rendered, outcome


def _open(path: Path) -> tuple[pygit2.Repository, str]:
    found = pygit2.discover_repository(str(path)) if path.exists() else None
    if found is None:
        raise SourceError(f"path '{path}' is not inside a Git repository")
    repo = pygit2.Repository(found)
    if repo.workdir is None:
        return repo, ""
    root = Path(os.path.realpath(repo.workdir))
    rel = Path(os.path.realpath(path)).relative_to(root).as_posix()
    return repo, "" if rel == "." else rel


def _merged(
    repo: pygit2.Repository,
    base: pygit2.Commit,
    head: pygit2.Commit,
    subdir: str,
    base_ref: str,
    head_ref: str,
) -> dict[str, Entry]:
    index = repo.merge_commits(base, head)
    if index.conflicts is not None:
        paths = sorted(
            {
                side.path
                for conflict in index.conflicts
                for side in conflict
                if side is not None and side.path
            }
        )
        raise MergeConflict(base_ref, head_ref, tuple(paths))
    return index_entries(repo, index, subdir)


def index_entries(repo: pygit2.Repository, index: pygit2.Index, subdir: str) -> dict[str, Entry]:
    """Every non-hidden entry under `subdir` of a merged index, like `read_commit` gives."""
    prefix = f"{subdir}/" if subdir else ""
    odb = repo.odb
    out: dict[str, Entry] = {}
    for item in index:
        if not item.path.startswith(prefix):
            continue
        rel = item.path[len(prefix) :]
        if is_hidden(rel):
            continue
        if item.mode == FileMode.LINK:
            out[rel] = Link(odb.read(item.id)[1].decode("utf-8", "surrogateescape"))
        elif item.mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and wanted(rel):
            size = odb.read_header(item.id)[1]
            out[rel] = Oversize(size) if size > MAX_FILE_BYTES else odb.read(item.id)[1]
        else:
            out[rel] = Other()
    if prefix and not out:
        raise SourceError(f"path '{subdir}' does not exist in the merged head")
    return dict(sorted(out.items()))
