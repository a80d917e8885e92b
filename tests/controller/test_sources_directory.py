"""Plain-directory source: what a folder on disk becomes as a Tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.sources import SourceError, open_source
from controller.sources.directory import read_directory
from gitops.tree import MAX_FILE_BYTES, Link, Other, Oversize


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    _write(root / "mesh" / "workspace.yaml", "kind: Workspace\n")
    _write(root / "mesh" / "deep" / "routes.yml", "kind: RouteTable\n")
    _write(root / ".hidden" / "secret.yaml", "kind: Hidden\n")
    _write(root / "mesh" / ".draft.yaml", "kind: Draft\n")
    _write(root / "README.md", "# docs\n")
    os.symlink("workspace.yaml", root / "mesh" / "alias.yaml")
    os.symlink("../mesh", root / "mesh" / "deep" / "up")
    return root


def test_reads_yaml_bytes_with_posix_relative_paths(folder: Path) -> None:
    tree = read_directory(folder)

    assert tree.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"
    assert tree.entries["mesh/deep/routes.yml"] == b"kind: RouteTable\n"
    assert tree.revision is None
    assert tree.origin == str(folder)


def test_hidden_files_and_folders_are_skipped(folder: Path) -> None:
    tree = read_directory(folder)

    assert not [path for path in tree.entries if ".hidden" in path or ".draft" in path]


def test_symlinks_are_recorded_not_followed(folder: Path) -> None:
    tree = read_directory(folder)

    assert tree.entries["mesh/alias.yaml"] == Link("workspace.yaml")
    assert tree.entries["mesh/deep/up"] == Link("../mesh")
    assert not [path for path in tree.entries if path.startswith("mesh/deep/up/")]


def test_non_yaml_files_are_other(folder: Path) -> None:
    assert read_directory(folder).entries["README.md"] == Other()


def test_entries_are_sorted(folder: Path) -> None:
    paths = list(read_directory(folder).entries)

    assert paths == sorted(paths)
    assert paths == [
        "README.md",
        "mesh/alias.yaml",
        "mesh/deep/routes.yml",
        "mesh/deep/up",
        "mesh/workspace.yaml",
    ]


def test_oversized_yaml_is_reported_by_size_without_reading(tmp_path: Path) -> None:
    _sparse(tmp_path / "big.yaml", MAX_FILE_BYTES + 1)
    _sparse(tmp_path / "edge.yaml", MAX_FILE_BYTES)
    _sparse(tmp_path / "big.bin", MAX_FILE_BYTES + 1)

    entries = read_directory(tmp_path).entries

    assert entries["big.yaml"] == Oversize(MAX_FILE_BYTES + 1)
    edge = entries["edge.yaml"]
    assert isinstance(edge, bytes) and len(edge) == MAX_FILE_BYTES
    assert entries["big.bin"] == Other()


def test_fifo_is_other_and_never_opened(tmp_path: Path) -> None:
    # Opening a FIFO with no writer would block the reader forever.
    os.mkfifo(tmp_path / "pipe.yaml")

    assert read_directory(tmp_path).entries == {"pipe.yaml": Other()}


def test_root_may_be_a_link_to_a_folder(folder: Path, tmp_path: Path) -> None:
    os.symlink(folder, tmp_path / "linked")

    assert read_directory(tmp_path / "linked").entries == read_directory(folder).entries


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_directory(tmp_path / "nope")


def test_file_path_is_a_source_error(tmp_path: Path) -> None:
    _write(tmp_path / "one.yaml", "a: 1\n")

    with pytest.raises(SourceError, match="is not a directory"):
        read_directory(tmp_path / "one.yaml")


def test_link_loops_are_recorded_not_followed(tmp_path: Path) -> None:
    os.symlink("loop", tmp_path / "loop")
    os.symlink(".", tmp_path / "self")

    assert read_directory(tmp_path).entries == {"loop": Link("loop"), "self": Link(".")}


def test_open_source_on_plain_folder_reads_the_working_files(folder: Path, tmp_path: Path) -> None:
    tree = open_source(str(folder), None, tmp_path / "cache")

    assert tree.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"
    assert tree.revision is None
    assert not (tmp_path / "cache").exists()
