"""What a pull-request preview pass reads: the refs to preview, and the fleet's inputs.

Called by `controller/server/previews.py` (`Previews.refresh` and `_compute`), which owns
the when and the statuses; this module holds the how:

- `discover`: the base commit and every ref matching `gitops.previews.refs`. A local
  repository's refs are read directly; for a URL the remote's ref advertisement is read
  (one `ls-remote`), then only the refs that moved are fetched into the server's cache
  clone (`+<ref>:<ref>`, under the server's reload lock so two fetches never share the
  clone) and refs gone from the remote are deleted from it. Nothing is fetched when nothing
  moved.
- `fleet_inputs`: each cluster with inputs and its `Cluster.inputs_version` (bumped by every
  snapshot or delta that changes them), read every pass: a dict copy, no objects.
- `fleet_snapshots`: each cluster's discovered objects as the `Tree` a snapshot directory
  gives, so the server's preview reads them exactly as `gitops diff --snapshot` does.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pygit2

from controller.sources import SourceError, git
from controller.store.snapshot_dir import snapshot_files
from gitops import rendering
from gitops.tree import Tree

__all__ = [
    "discover",
    "fleet_inputs",
    "fleet_snapshots",
    "local_refs",
    "matches",
    "objects_tree",
]

log = logging.getLogger(__name__)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Does the ref `name` match one of `patterns` (`fnmatch`: `*` also crosses `/`)?"""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def discover(
    repo_path: Path,
    base_ref: str,
    patterns: Iterable[str],
    url: str | None,
    fetch_lock: AbstractContextManager[Any],
) -> tuple[str, dict[str, str]]:
    """(base commit, {ref: head commit}) for the refs matching `patterns`; `url` is set
    when `repo_path` is the cache clone of that remote. Raises `SourceError`."""
    found = pygit2.discover_repository(str(repo_path))
    if found is None:
        raise SourceError(f"'{repo_path}' is not inside a Git repository")
    patterns = tuple(patterns)
    repo = pygit2.Repository(found)
    try:
        base, base_name = git.resolve(repo, base_ref, str(repo_path))
        if url is None:
            refs = local_refs(repo, patterns)
        else:
            refs = _remote_refs(repo, url, patterns, fetch_lock)
    finally:
        repo.free()
    refs.pop(base_name, None)  # the synced branch itself, if a pattern matches it
    return str(base.id), refs


def local_refs(repo: pygit2.Repository, patterns: Iterable[str]) -> dict[str, str]:
    """Ref -> commit for every ref of `repo` matching `patterns` (refs not naming a commit
    are skipped)."""
    out: dict[str, str] = {}
    for name in repo.references:
        if not matches(name, patterns):
            continue
        try:
            out[name] = str(repo.references[name].peel(pygit2.Commit).id)
        except (ValueError, KeyError, pygit2.GitError):
            continue
    return dict(sorted(out.items()))


def _remote_refs(
    repo: pygit2.Repository,
    url: str,
    patterns: tuple[str, ...],
    fetch_lock: AbstractContextManager[Any],
) -> dict[str, str]:
    remote = repo.remotes.create_anonymous(url)
    try:
        heads = remote.list_heads(callbacks=git.RemoteCallbacks(url))
    except (pygit2.GitError, OSError, git.AuthenticationFailed) as err:
        message = git.scrub(str(err), url)
        raise SourceError(f"cannot list refs of {git.redact(url)}: {message}") from None
    refs = {
        h.name: str(h.oid)
        for h in heads
        if h.name and not h.name.endswith("^{}") and matches(h.name, patterns)
    }
    cached = local_refs(repo, patterns)
    moved = sorted(r for r, sha in refs.items() if cached.get(r) != sha)
    with fetch_lock:
        if moved:
            try:
                remote.fetch([f"+{r}:{r}" for r in moved], callbacks=git.RemoteCallbacks(url))
            except (pygit2.GitError, OSError, git.AuthenticationFailed) as err:
                # Computing those previews then fails on the missing commit: status `error`.
                log.warning("previews: fetch failed: %s", git.scrub(str(err), url))
        for gone in sorted(set(cached) - set(refs)):
            repo.references.delete(gone)
    return dict(sorted(refs.items()))


# -- the fleet's discovery inputs as snapshot trees -------------------------------------------


def fleet_inputs(fleet: Any) -> dict[str, int]:
    """Cluster -> inputs version, for the clusters whose agents sent their inputs (those a
    preview renders). Read before `fleet_snapshots` in a pass, so a change in between makes
    the next pass recompute rather than be missed."""
    with fleet.lock:
        return {
            n: c.inputs_version for n, c in sorted(fleet.clusters.items()) if c.parsed is not None
        }


def fleet_snapshots(fleet: Any) -> dict[str, Tree]:
    """Each cluster's discovered objects as a snapshot `Tree`, laid out as `gitops
    snapshot export` writes them (`<namespace or _cluster>/<kind>.<version>[.<group>].yaml`)."""
    with fleet.lock:
        raw = {
            n: list(c.inputs.values()) for n, c in fleet.clusters.items() if c.parsed is not None
        }
    return {name: objects_tree(name, objects) for name, objects in sorted(raw.items())}


def objects_tree(cluster: str, objects: Iterable[Mapping[str, Any]]) -> Tree:
    """`objects` (one cluster's) as the snapshot files `gitops snapshot export` writes."""
    entries = {
        path: rendering.dump_all(named).encode() for path, named in snapshot_files(objects).items()
    }
    return Tree(entries=entries, origin=f"inputs of {cluster}")
