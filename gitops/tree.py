"""The repository tree the core reads: a mapping from path to content.

`controller/sources` builds a `Tree` from a directory or from a Git commit (blobs
read straight from the object database, no checkout) and hands it to
`gitops.loading.load`. The core never touches a filesystem: symbolic links and
oversized files arrive as markers, and the core decides what they mean
(`gitops.layout`), so both sources behave identically.

Paths are POSIX, relative to the repository root, exactly as the source found
them; the core checks that they are safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitops.ids import Revision

#: Files larger than this are not read (`FileTooLarge`); sources must not load them.
MAX_FILE_BYTES = 5 * 1024 * 1024

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Link:
    """A symbolic link; `target` is the link text, as stored."""

    target: str


@dataclass(frozen=True, slots=True)
class Oversize:
    """A YAML file over `MAX_FILE_BYTES`; its content was not read."""

    size: int


@dataclass(frozen=True, slots=True)
class Other:
    """A regular file that is not YAML by name; present so links to it can be explained."""


Entry = bytes | Link | Oversize | Other


@dataclass(frozen=True, slots=True)
class Tree:
    """A repository snapshot: `entries[path]` is the file's bytes or a marker.

    `revision` is the commit id for Git sources and `None` for plain directories.
    """

    entries: Mapping[str, Entry]
    revision: Revision | None = None
    #: Human name of where the tree came from (directory or URL@ref), for messages only.
    origin: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


def is_hidden(path: str) -> bool:
    """Hidden files and folders (any component starting with '.') are never read."""
    return any(part.startswith(".") for part in path.split("/"))


def is_yaml(path: str) -> bool:
    return path.endswith(YAML_SUFFIXES)


def wanted(path: str) -> bool:
    """Should a source read this regular file's bytes? (Links are always kept.)"""
    return is_yaml(path) and not is_hidden(path)
