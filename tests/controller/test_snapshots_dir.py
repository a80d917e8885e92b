"""Discovery-snapshot directories: `DIR/<cluster>/**/*.yaml`, one Tree per cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.sources import SourceError
from controller.sources.snapshots import read_snapshot_dir
from gitops.tree import Link, Other


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    root = tmp_path / "snap"
    _write(root / "east" / "istio-system" / "services.yaml", "kind: Service\n")
    _write(root / "east" / "nodes.yaml", "kind: Node\n")
    _write(root / "east" / ".cache" / "stale.yaml", "kind: Stale\n")
    _write(root / "west" / "bookinfo" / "apps" / "deployments.yml", "kind: Deployment\n")
    _write(root / "west" / "notes.txt", "hello\n")
    os.symlink("nodes.yaml", root / "east" / "alias.yaml")
    _write(root / ".previous" / "east" / "nodes.yaml", "kind: Old\n")
    _write(root / "README.yaml", "not: a cluster\n")
    return root


def test_one_tree_per_cluster_folder(snapshot: Path) -> None:
    trees = read_snapshot_dir(snapshot)

    assert list(trees) == ["east", "west"]
    assert trees["east"].entries == {
        "alias.yaml": Link("nodes.yaml"),
        "istio-system/services.yaml": b"kind: Service\n",
        "nodes.yaml": b"kind: Node\n",
    }
    assert trees["west"].entries == {
        "bookinfo/apps/deployments.yml": b"kind: Deployment\n",
        "notes.txt": Other(),
    }


def test_trees_name_their_folder_and_have_no_revision(snapshot: Path) -> None:
    trees = read_snapshot_dir(snapshot)

    assert trees["west"].origin == str(snapshot / "west")
    assert {tree.revision for tree in trees.values()} == {None}


def test_empty_cluster_folder_is_an_empty_tree(tmp_path: Path) -> None:
    (tmp_path / "idle").mkdir()

    trees = read_snapshot_dir(tmp_path)

    assert list(trees) == ["idle"]
    assert dict(trees["idle"].entries) == {}


def test_cluster_folder_may_be_a_link(snapshot: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    os.symlink(snapshot / "west", mixed / "west")
    os.symlink(snapshot / "README.yaml", mixed / "file-link")

    trees = read_snapshot_dir(mixed)

    assert list(trees) == ["west"]
    assert trees["west"].entries == read_snapshot_dir(snapshot)["west"].entries


def test_missing_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_snapshot_dir(tmp_path / "absent")


def test_file_instead_of_directory_is_a_source_error(tmp_path: Path) -> None:
    _write(tmp_path / "snap.yaml", "a: 1\n")

    with pytest.raises(SourceError, match="is not a directory"):
        read_snapshot_dir(tmp_path / "snap.yaml")
