"""Plain-directory source: a folder on disk read into a `gitops.tree.Tree`.

First stage of the flow (source -> load -> ...). `controller.sources.open_source` calls
`read_directory` when the location is a local folder that is not read through Git, and
`controller.sources.snapshots` reads each cluster folder of a discovery snapshot with it.

The walk never follows symbolic links: a link is recorded as `Link(target)` and the core
decides what it means, exactly as for a link stored in a Git commit, so both sources
behave the same. Oversized YAML files are recorded by size and never read.

`SourceError` lives here, in the module every other source builds on, so that the Git
source and the snapshot reader can share it without an import cycle through the package.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree, is_hidden, wanted

__all__ = ["SourceError", "read_directory", "read_entries"]


class SourceError(Exception):
    """A repository source could not be read: missing path, unknown ref, unreachable remote.

    The message is meant for the user as is (the CLI prints `Error: <message>`) and never
    contains credentials. The reconcile loop treats it as "retry on the next interval".
    """


def read_directory(path: Path) -> Tree:
    """Read a plain directory; paths in the tree are relative to `path`, revision is None."""
    return Tree(entries=read_entries(path), revision=None, origin=str(path))


def read_entries(root: Path) -> dict[str, Entry]:
    """Every non-hidden file under `root`, keyed by POSIX path relative to `root`, sorted.

    `root` itself may be a symbolic link to a folder (the user named it); links below it
    are recorded, not followed.
    """
    try:
        root_stat = root.stat()
    except FileNotFoundError:
        raise SourceError(f"path '{root}' does not exist") from None
    except OSError as err:
        raise SourceError(f"cannot read '{root}': {err.strerror}") from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise SourceError(f"path '{root}' is not a directory")
    entries: dict[str, Entry] = {}
    try:
        _walk(str(root), "", entries)
    except OSError as err:
        where = err.filename if err.filename is not None else root
        raise SourceError(f"cannot read '{where}': {err.strerror}") from None
    return dict(sorted(entries.items()))


def _walk(directory: str, prefix: str, out: dict[str, Entry]) -> None:
    with os.scandir(directory) as scan:
        children = sorted(scan, key=lambda child: child.name)
    for child in children:
        rel = prefix + child.name
        if is_hidden(rel):
            continue
        if child.is_symlink():
            out[rel] = Link(os.readlink(child.path))
        elif child.is_dir(follow_symlinks=False):
            _walk(child.path, rel + "/", out)
        elif child.is_file(follow_symlinks=False) and wanted(rel):
            out[rel] = _read_file(child.path, child.stat(follow_symlinks=False).st_size)
        else:
            # Non-YAML files, FIFOs, sockets and devices: present (links may point at
            # them) but never opened, so a FIFO in the tree cannot block the reader.
            out[rel] = Other()


def _read_file(path: str, size: int) -> Entry:
    if size > MAX_FILE_BYTES:
        return Oversize(size)
    with open(path, "rb") as handle:
        # The file may have grown since it was listed; never read more than the limit.
        data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return Oversize(os.fstat(handle.fileno()).st_size)
    return data
