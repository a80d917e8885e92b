"""Git source: a commit read into a `gitops.tree.Tree`, locally or through a cached clone.

First stage of the flow (source -> load -> ...). `controller.sources.open_source` calls
`open_local` for a path inside a working copy and `open_remote` for a URL; the reconcile
loop calls the same entry point on every interval, so a remote is cloned once into the
cache directory and fetched after that.

Blobs are read straight from the object database at the resolved commit: no checkout, no
working tree, so uncommitted edits are invisible and oversized files are reported by their
size (from the object header) without being inflated.

URLs may carry credentials (`https://user:token@host/repo.git`). They are handed to
libgit2 and nowhere else: the cache directory is named after the URL without them, the
clone's config never stores them, and every message goes through `redact`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pygit2
from pygit2.enums import CredentialType, FetchPrune, FileMode

from controller.sources.directory import SourceError
from gitops.ids import Revision
from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree, is_hidden, wanted

__all__ = [
    "AuthenticationFailed",
    "RemoteCallbacks",
    "cache_path",
    "is_remote",
    "is_repository_root",
    "open_local",
    "open_remote",
    "read_commit",
    "redact",
    "repository",
    "resolve",
    "scrub",
]

_SCHEMES = ("file://", "http://", "https://", "ssh://", "git://", "git+ssh://", "ssh+git://")
# git's scp-like syntax, `user@host:path`; the `(?!//)` keeps `user@host://` out.
_SCP_LIKE = re.compile(r"^[\w.~+-]+@(?:\[[^\]/]+\]|[\w.-]+):(?!//)")
# Userinfo of any URL inside a text; greedy up to the last '@' before the path, so a raw
# '@' in a password is still covered.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]+@")
# Where the remote's HEAD lands in the cache, so a detached remote HEAD is still fetched.
_REMOTE_HEAD = "refs/gitops/remote-head"
_REFSPECS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", f"+HEAD:{_REMOTE_HEAD}"]
_LISTED_BRANCHES = 20


def is_remote(location: str) -> bool:
    """Is `location` a URL (or scp-like `user@host:path`) rather than a local path?"""
    return location.lower().startswith(_SCHEMES) or bool(_SCP_LIKE.match(location))


def redact(text: str) -> str:
    """Replace the userinfo of every URL in `text`: `https://u:s@h/x` -> `https://***@h/x`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def cache_path(url: str, cache_dir: Path) -> Path:
    """The bare clone for `url`: one per URL, whatever credentials it was given with."""
    key = hashlib.sha256(_without_credentials(url).encode()).hexdigest()[:16]
    return cache_dir / f"{key}.git"


def is_repository_root(path: Path) -> bool:
    """A working copy's top folder (`.git` dir or file) or a bare repository's folder."""
    if (path / ".git").exists():
        return True
    found = pygit2.discover_repository(str(path)) if path.is_dir() else None
    return found is not None and os.path.samefile(found, path)


def open_remote(url: str, ref: str | None, cache_dir: Path) -> Tree:
    """Clone (first call) or fetch (later calls) `url` into `cache_dir`, then read `ref`."""
    shown = redact(url)
    target = cache_path(url, cache_dir)
    repo = _open_cache(target)
    if repo is None:
        repo = _clone(url, target)
    else:
        _fetch(repo, url)
    return _read(repo, ref, "", f"{shown}@{ref or 'HEAD'}", {"url": shown})


def repository(location: str, cache_dir: Path) -> pygit2.Repository:
    """The repository `open_source` read `location` from: a URL's cached clone, or the
    repository around a local path (signature verification reads its commits)."""
    target: str | None = str(cache_path(location, cache_dir))
    if not is_remote(location):
        start = Path(location)
        while not start.exists() and start != start.parent:
            start = start.parent
        target = pygit2.discover_repository(str(start))
    if target is None:
        raise SourceError(f"path '{location}' is not inside a Git repository")
    try:
        return pygit2.Repository(target)
    except pygit2.GitError as err:
        raise SourceError(
            f"cannot open the repository of {redact(location)}: {redact(str(err))}"
        ) from None


def open_local(path: Path, ref: str | None) -> Tree:
    """Read the folder `path` of its enclosing repository at `ref` (None: at HEAD).

    `path` may be the repository root or any folder below it; it need not exist in the
    working copy as long as it exists at `ref`.
    """
    start = path
    while not start.exists() and start != start.parent:
        start = start.parent
    found = pygit2.discover_repository(str(start))
    if found is None:
        if not path.exists():
            raise SourceError(f"path '{path}' does not exist")
        raise SourceError(f"path '{path}' is not inside a Git repository (needed for a ref)")
    origin = f"{path}@{ref or 'HEAD'}"
    try:
        repo = pygit2.Repository(found)
    except pygit2.GitError as err:
        raise SourceError(f"cannot open the repository for {origin}: {err}") from None
    return _read(repo, ref, _subdir(repo, path), origin, {})


def _read(
    repo: pygit2.Repository, ref: str | None, subdir: str, origin: str, extra: dict[str, str]
) -> Tree:
    try:
        commit, resolved = resolve(repo, ref, origin)
        entries = read_commit(repo, commit, subdir, origin)
    except KeyError as err:
        # A damaged or incomplete object database (pygit2's NotFoundError is a KeyError).
        missing = err.args[0] if err.args else "?"
        raise SourceError(f"cannot read {origin}: object {missing} is missing") from None
    except pygit2.GitError as err:
        raise SourceError(f"cannot read {origin}: {redact(str(err))}") from None
    return Tree(
        entries=entries,
        revision=Revision(str(commit.id)),
        origin=origin,
        extra={**extra, "ref": resolved},
    )


def resolve(repo: pygit2.Repository, ref: str | None, origin: str) -> tuple[pygit2.Commit, str]:
    """The commit `ref` names, and the full ref name it was found under (or the commit id).

    Tried in order: HEAD when `ref` is None, the full ref name, `refs/heads/<ref>`,
    `refs/tags/<ref>`, `refs/remotes/<ref>` (local working copies in CI often only have
    `origin/main`), then a commit id, full or abbreviated (also `main~1` and other
    rev-parse expressions, as `git` accepts them).
    """
    if ref is None or ref == "HEAD":
        if repo.head_is_unborn:
            raise SourceError(f"{origin}: the repository has no commits on its default branch")
        head = repo.references["HEAD"]
        name = head.target if isinstance(head.target, str) else "HEAD"
        return _peel(repo.head, ref or "HEAD", origin), name
    for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/remotes/{ref}"):
        reference = repo.references.get(candidate)
        if reference is not None:
            return _peel(reference, ref, origin), reference.name
    try:
        found = repo.revparse_single(ref)
    except (KeyError, ValueError, pygit2.GitError):
        found = None
    if found is None:
        branches = sorted(repo.branches.local)
        listed = ", ".join(branches[:_LISTED_BRANCHES]) or "(none)"
        if len(branches) > _LISTED_BRANCHES:
            listed += f", ... ({len(branches) - _LISTED_BRANCHES} more)"
        raise SourceError(f"ref '{ref}' not found in {origin}; known branches: {listed}")
    commit = _peel(found, ref, origin)
    return commit, str(commit.id)


def read_commit(
    repo: pygit2.Repository, commit: pygit2.Commit, subdir: str, origin: str
) -> dict[str, Entry]:
    """Every non-hidden entry under `subdir` ("" = root) at `commit`, relative to `subdir`."""
    tree: pygit2.Object = commit.tree
    if subdir:
        try:
            tree = commit.tree[subdir]
        except KeyError:
            raise SourceError(f"path '{subdir}' does not exist in {origin}") from None
    if not isinstance(tree, pygit2.Tree):
        raise SourceError(f"path '{subdir}' is not a directory in {origin}")
    entries: dict[str, Entry] = {}
    _walk(repo, tree, "", entries)
    return dict(sorted(entries.items()))


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, out: dict[str, Entry]) -> None:
    odb = repo.odb
    for item in tree:
        rel = prefix + (item.name or "")
        if is_hidden(rel):
            continue
        mode = item.filemode
        if mode == FileMode.TREE:
            subtree = repo[item.id]
            assert isinstance(subtree, pygit2.Tree)
            _walk(repo, subtree, rel + "/", out)
        elif mode == FileMode.LINK:
            out[rel] = Link(odb.read(item.id)[1].decode("utf-8", "surrogateescape"))
        elif mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and wanted(rel):
            # The header gives the size without inflating the object.
            size = odb.read_header(item.id)[1]
            out[rel] = Oversize(size) if size > MAX_FILE_BYTES else odb.read(item.id)[1]
        else:
            # Other blobs, and submodules (FileMode.COMMIT: the commit is not in this ODB).
            out[rel] = Other()


def _peel(target: pygit2.Reference | pygit2.Object, ref: str, origin: str) -> pygit2.Commit:
    try:
        return target.peel(pygit2.Commit)
    except (ValueError, KeyError, pygit2.GitError):
        raise SourceError(f"ref '{ref}' in {origin} does not point to a commit") from None


def _subdir(repo: pygit2.Repository, path: Path) -> str:
    """`path`'s position inside the repository, as a POSIX path ("" for the root)."""
    if repo.workdir is None:
        return ""
    absolute = Path(os.path.realpath(path))
    root = Path(os.path.realpath(repo.workdir))
    try:
        rel = absolute.relative_to(root).as_posix()
    except ValueError:
        raise SourceError(f"path '{path}' is outside the repository at '{root}'") from None
    return "" if rel == "." else rel


def _without_credentials(url: str) -> str:
    if not url.lower().startswith(_SCHEMES):
        return url  # scp-like: the part before '@' is a login name, not a secret
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _open_cache(target: Path) -> pygit2.Repository | None:
    if not target.exists():
        return None
    try:
        return pygit2.Repository(str(target))
    except pygit2.GitError:
        # A cache we cannot open is worthless; clone it again rather than fail forever.
        shutil.rmtree(target)
        return None


def _clone(url: str, target: Path) -> pygit2.Repository:
    """Fill a fresh bare repository beside `target`, then move it into place.

    The rename makes the clone appear whole or not at all, so an interrupted first run
    never leaves a half-filled cache that a later run would trust.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        repo = pygit2.init_repository(str(scratch), bare=True)
        repo.config["gitops.url"] = redact(url)  # for people looking at the cache
        _fetch(repo, url)
        try:
            scratch.rename(target)
        except OSError:
            if not target.exists():
                raise
            # Another process cloned it first; theirs is as fresh as ours.
        return pygit2.Repository(str(target))
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)


def _fetch(repo: pygit2.Repository, url: str) -> None:
    # An anonymous remote: the URL (and any credentials in it) stays in memory.
    remote = repo.remotes.create_anonymous(url)
    try:
        remote.fetch(_REFSPECS, callbacks=RemoteCallbacks(url), prune=FetchPrune.PRUNE)
        heads = remote.list_heads(connect=False)
    except (pygit2.GitError, OSError, AuthenticationFailed) as err:
        raise SourceError(f"cannot fetch {redact(url)}: {scrub(str(err), url)}") from None
    _follow_remote_head(repo, heads)


def _follow_remote_head(repo: pygit2.Repository, heads: list[pygit2.remotes.RemoteHead]) -> None:
    """Point the cache's HEAD where the remote's HEAD points: its default branch."""
    head = next((h for h in heads if h.name == "HEAD"), None)
    if head is None:
        return  # an empty remote: resolving HEAD will say so
    branch = head.symref_target
    if branch is None:
        # Servers without the symref capability: guess like `git clone` does.
        same = sorted(
            h.name or ""
            for h in heads
            if (h.name or "").startswith("refs/heads/") and h.oid == head.oid
        )
        preferred = [b for b in ("refs/heads/main", "refs/heads/master") if b in same]
        branch = (preferred or same or [None])[0]
    if branch is not None and branch in repo.references:
        repo.set_head(branch)
    else:
        repo.set_head(head.oid)


def scrub(message: str, url: str) -> str:
    """Redact URLs in a libgit2 message, and the raw userinfo wherever else it appears."""
    message = redact(message)
    userinfo = urlsplit(url).netloc.rpartition("@")[0] if url.lower().startswith(_SCHEMES) else ""
    for secret in (userinfo, userinfo.partition(":")[2]):
        if secret:
            message = message.replace(secret, "***")
    return message


class AuthenticationFailed(Exception):
    """Raised from the credentials callback; pygit2 re-raises it from `fetch`."""


class RemoteCallbacks(pygit2.RemoteCallbacks):
    """Authentication for libgit2, each kind offered once so a rejected one cannot loop.

    HTTP(S) credentials come from the URL (libgit2 presents them itself). SSH uses the
    running ssh-agent. Certificates and SSH host keys must be valid: libgit2 checks host
    keys against ~/.ssh/known_hosts, and pygit2 would otherwise accept any SSH host key.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._has_userinfo = (
            "@" in urlsplit(url).netloc if url.lower().startswith(_SCHEMES) else True
        )
        self._offered: set[CredentialType] = set()

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.Username | pygit2.UserPass | pygit2.Keypair:
        # "git" is the login every Git host expects over SSH when the URL names none.
        user = username_from_url or "git"
        if allowed_types & CredentialType.USERNAME and CredentialType.USERNAME not in self._offered:
            self._offered.add(CredentialType.USERNAME)
            return pygit2.Username(user)
        if allowed_types & CredentialType.SSH_KEY:
            if CredentialType.SSH_KEY not in self._offered:
                self._offered.add(CredentialType.SSH_KEY)
                return pygit2.KeypairFromAgent(user)
            raise AuthenticationFailed(f"the server accepted no key from ssh-agent for '{user}'")
        if self._has_userinfo:
            raise AuthenticationFailed("the server rejected the credentials in the URL")
        raise AuthenticationFailed(
            "the server requires credentials; put them in the URL (https://user:token@host/...)"
        )

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        return valid
