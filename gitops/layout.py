"""Repository layout: which files of a tree are config, which are Helm values, which are refused.

Sits between the source (a `Tree` from `controller/sources`) and parsing. Called
by `gitops.loading.load`. Rules (DESIGN.md section 2, docs/repository-layout.md):

- every `*.yaml`/`*.yml` outside hidden files and folders is read;
- `helm/` holds Helm values and is always read, whatever `gitops.yaml` says;
- `gitops.yaml` at the root may narrow the rest with `paths` (include globs) and
  `exclude` (skip globs); a glob that is absolute or climbs out of the repo is refused;
- symbolic links are followed only inside the repository, through chains of at
  most 40 links; links that escape, loop, dangle, or point a YAML name at a
  non-YAML file are diagnostics, as are unsafe paths and files over the size cap.

Nothing here silently drops a YAML file: each one is read, refused with a
diagnostic, or excluded by a rule the user wrote.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from gitops.diagnostics import Diagnostic, Source
from gitops.reasons import Reason
from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree, is_hidden, is_yaml

SETTINGS_FILE = "gitops.yaml"
HELM_DIR = "helm/"
#: Same limit as Linux (MAXSYMLINKS): longer chains are treated as loops.
MAX_LINK_HOPS = 40


@dataclass(frozen=True, slots=True)
class RepoFiles:
    """The files a tree contributes, after links, safety checks and narrowing."""

    config: Mapping[str, bytes]
    helm: Mapping[str, bytes]
    diagnostics: tuple[Diagnostic, ...]
    #: YAML files that exist but could not be read: what they defined must be kept as it was.
    unreadable: frozenset[str] = field(default_factory=frozenset)


class _Refused(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def unsafe_path_problem(path: str) -> str | None:
    """Why a repository path is unsafe, or None (used for tree entries and globs)."""
    if not path:
        return "empty path"
    if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
        return "absolute path"
    if "\\" in path or "\x00" in path:
        return "backslash or NUL in path"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "path has '..', '.' or empty components"
    return None


class _Resolver:
    """Resolves paths through symbolic links, the way a POSIX filesystem would."""

    def __init__(self, entries: Mapping[str, Entry]) -> None:
        self.entries = entries
        self.dirs: set[str] = {""}
        for path in entries:
            parts = path.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))

    def resolve(self, path: str) -> tuple[str, Entry | None]:
        """Physical path and entry (None for a directory) of `path`, links followed."""
        hops = 0
        parts = path.split("/")
        done: list[str] = []
        while parts:
            part = parts.pop(0)
            candidate = "/".join([*done, part])
            entry = self.entries.get(candidate)
            if isinstance(entry, Link):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise _Refused(Reason.SymlinkLoop, f"more than {MAX_LINK_HOPS} links in a row")
                target = entry.target
                if target.startswith("/"):
                    raise _Refused(
                        Reason.SymlinkEscapesRepo, f"{candidate} -> {target} is an absolute path"
                    )
                joined = posixpath.normpath(posixpath.join("/".join(done), target))
                if joined == ".." or joined.startswith("../"):
                    raise _Refused(
                        Reason.SymlinkEscapesRepo,
                        f"{candidate} -> {target} points outside the repository",
                    )
                # Walk the target again from the root: it may pass through more links.
                parts = ([] if joined == "." else joined.split("/")) + parts
                done = []
                continue
            if entry is not None:
                if parts:
                    raise _Refused(Reason.SymlinkBroken, f"{candidate} is a file, not a directory")
                return candidate, entry
            if candidate not in self.dirs:
                why = "is hidden (never read)" if is_hidden(candidate) else "does not exist"
                raise _Refused(Reason.SymlinkBroken, f"{candidate} {why}")
            done.append(part)
        return "/".join(done), None

    def files_under(self, directory: str) -> Iterator[str]:
        prefix = directory + "/" if directory else ""
        for path in self.entries:
            if path.startswith(prefix):
                yield path


def expand(
    tree: Tree, diagnostics: list[Diagnostic], wanted: Callable[[str], bool] | None = None
) -> dict[str, Entry]:
    """Logical path -> entry, with every link replaced by what it points to.

    Problems are reported only for paths `wanted` accepts (default: all), so a path the
    user excluded in gitops.yaml cannot fail a load. Entries are walked in sorted order:
    the same tree always gives the same diagnostics in the same order.
    """
    report = wanted or (lambda _: True)
    safe: dict[str, Entry] = {}
    for path, entry in sorted(tree.entries.items()):
        problem = unsafe_path_problem(path)
        if problem:
            if report(path):
                diagnostics.append(Diagnostic(Reason.UnsafePath, problem, Source(path)))
        elif not is_hidden(path):
            safe[path] = entry
    resolver = _Resolver(safe)
    out: dict[str, Entry] = {}
    for path, entry in safe.items():
        if not isinstance(entry, Link):
            out[path] = entry
            continue
        try:
            physical, target = resolver.resolve(path)
        except _Refused as exc:
            # Links that are not YAML by name and do not resolve cannot hide config;
            # escaping links are always reported, whatever their name.
            if report(path) and (is_yaml(path) or exc.reason is not Reason.SymlinkBroken):
                diagnostics.append(Diagnostic(exc.reason, exc.message, Source(path)))
            continue
        if target is not None:
            if is_yaml(path) and isinstance(target, Other) and report(path):
                diagnostics.append(
                    Diagnostic(
                        Reason.SymlinkTargetNotYaml,
                        f"{path} -> {physical}, which is not a YAML file",
                        Source(path),
                    )
                )
            elif is_yaml(path):
                out[path] = target
            continue
        # A link to a directory: its files appear under the link's path too.
        if physical == "" or path.startswith(physical + "/"):
            if not report(path):
                continue
            diagnostics.append(
                Diagnostic(
                    Reason.SymlinkLoop,
                    f"{path} -> {physical or '.'} links to its own parent directory",
                    Source(path),
                )
            )
            continue
        for inner in resolver.files_under(physical):
            logical = path + inner[len(physical) :]
            inner_entry = safe[inner]
            if isinstance(inner_entry, Link):
                try:
                    _, inner_entry_resolved = resolver.resolve(inner)
                except _Refused as exc:
                    relevant = is_yaml(logical) or exc.reason is not Reason.SymlinkBroken
                    if relevant and report(logical):
                        diagnostics.append(Diagnostic(exc.reason, exc.message, Source(logical)))
                    continue
                if inner_entry_resolved is None:
                    continue  # nested directory links are not expanded twice
                inner_entry = inner_entry_resolved
            out.setdefault(logical, inner_entry)
    return out


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """`**` crosses folders, `*` and `?` do not; a pattern also matches everything below it."""
    out = []
    i = 0
    pattern = pattern.rstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "(?:/.*)?")


def glob_problem(pattern: object) -> str | None:
    """Why a `paths`/`exclude` glob of gitops.yaml is refused, or None."""
    if not isinstance(pattern, str) or not pattern.strip():
        return f"{pattern!r} is not a glob string"
    if pattern.startswith("/"):
        return f"{pattern!r} is absolute; globs are relative to the repository root"
    if ".." in pattern.split("/"):
        return f"{pattern!r} leaves the repository"
    return None


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(_glob_regex(p).fullmatch(path) for p in patterns)


def split(tree: Tree, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> RepoFiles:
    """Sort a tree's files into config and Helm values (`gitops.yaml` is read first,
    by `settings_entry`, because it decides the narrowing).

    `include`/`exclude` are the validated globs of gitops.yaml (empty include =
    everything). Returns the readable files plus diagnostics for everything refused.
    """

    def wanted(path: str) -> bool:
        if path == SETTINGS_FILE:
            return False  # read and reported by settings_entry
        if path.startswith(HELM_DIR):
            return True
        inside = path + "/-"  # a folder link is excluded when what is under it is
        if include and not (matches(path, include) or matches(inside, include)):
            return False
        return not (exclude and (matches(path, exclude) or matches(inside, exclude)))

    diagnostics: list[Diagnostic] = []
    expanded = expand(tree, diagnostics, wanted)
    config: dict[str, bytes] = {}
    helm: dict[str, bytes] = {}
    unreadable: set[str] = set()
    for path in sorted(expanded):
        entry = expanded[path]
        if not is_yaml(path) or isinstance(entry, Other) or path == SETTINGS_FILE:
            continue
        is_helm = path.startswith(HELM_DIR)
        if not is_helm:
            if include and not matches(path, include):
                continue
            if exclude and matches(path, exclude):
                continue
        if isinstance(entry, Oversize):
            diagnostics.append(
                Diagnostic(
                    Reason.FileTooLarge,
                    f"{entry.size:,} bytes (the cap is {MAX_FILE_BYTES:,})",
                    Source(path),
                )
            )
            unreadable.add(path)
            continue
        assert isinstance(entry, bytes)
        if is_helm:
            helm[path] = entry
        else:
            config[path] = entry
    unreadable.update(d.source.file for d in diagnostics if d.source and is_yaml(d.source.file))
    return RepoFiles(config, helm, tuple(diagnostics), frozenset(unreadable))


def settings_entry(tree: Tree) -> tuple[bytes | None, Diagnostic | None]:
    """The content of `gitops.yaml` at the root (links inside the repo followed), or why
    it cannot be read. (None, None) when there is no gitops.yaml."""
    entry = tree.entries.get(SETTINGS_FILE)
    where = Source(SETTINGS_FILE)
    if isinstance(entry, Link):
        try:
            physical, entry = _Resolver(tree.entries).resolve(SETTINGS_FILE)
        except _Refused as exc:
            return None, Diagnostic(exc.reason, exc.message, where)
        if entry is None or isinstance(entry, Other):
            what = "a directory" if entry is None else "not a YAML file"
            return None, Diagnostic(
                Reason.SymlinkTargetNotYaml, f"{SETTINGS_FILE} -> {physical}, {what}", where
            )
    if isinstance(entry, Oversize):
        return None, Diagnostic(
            Reason.FileTooLarge, f"{entry.size:,} bytes (the cap is {MAX_FILE_BYTES:,})", where
        )
    return (entry if isinstance(entry, bytes) else None), None
