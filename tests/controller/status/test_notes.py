"""The git-notes status writer against a real repository and a real bare remote (file://)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.status import NOTES_REF, NotesWriter, StatusUnavailable
from gitops import statuses
from gitops.statuses import InvalidSha, StatusState
from tests.support.git_servers import run_git


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, Path, str]:
    """A working clone with one commit, and its bare `origin` (file://)."""
    remote = tmp_path / "remote.git"
    work = tmp_path / "work"
    run_git(tmp_path, "init", "--bare", "-q", str(remote))
    run_git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "a.yaml").write_text("kind: X\n")
    run_git(work, "add", ".")
    run_git(work, "commit", "-q", "-m", "one")
    run_git(work, "remote", "add", "origin", remote.as_uri())
    run_git(work, "push", "-q", "origin", "main")
    return work, remote, run_git(work, "rev-parse", "HEAD")


def _remote_note(remote: Path, sha: str) -> dict[str, object]:
    return json.loads(run_git(remote, "notes", "--ref", NOTES_REF, "show", sha))  # type: ignore[no-any-return]


def test_notes_merge_contexts_and_arrive_at_the_remote(clone: tuple[Path, Path, str]) -> None:
    work, remote, sha = clone
    writer = NotesWriter(work)
    try:
        assert writer.post(sha, statuses.pending("mesh-gitops/translation"))
        assert writer.post(sha, statuses.sync("east", 1, 1))
        assert writer.post(sha, statuses.translation([]))
        latest = writer.latest(sha)
    finally:
        writer.close()
    assert {c: s.state for c, s in latest.items()} == {
        "mesh-gitops/sync/east": StatusState.SUCCESS,
        "mesh-gitops/translation": StatusState.SUCCESS,
    }
    pushed = _remote_note(remote, sha)
    assert sorted(pushed["statuses"]) == ["mesh-gitops/sync/east", "mesh-gitops/translation"]  # type: ignore[call-overload]
    assert pushed["statuses"]["mesh-gitops/translation"]["description"] == "no resources"  # type: ignore[index]


def test_an_identical_post_is_skipped(clone: tuple[Path, Path, str]) -> None:
    work, _, sha = clone
    writer = NotesWriter(work)
    try:
        assert writer.post(sha, statuses.drift("east", 0))
        tip = run_git(work, "rev-parse", NOTES_REF)
        assert not writer.post(sha, statuses.drift("east", 0))
        assert run_git(work, "rev-parse", NOTES_REF) == tip
        assert writer.post(sha, statuses.drift("east", 1))
    finally:
        writer.close()


def test_a_failed_push_is_retried_by_the_next_post(clone: tuple[Path, Path, str]) -> None:
    work, remote, sha = clone
    run_git(work, "remote", "set-url", "origin", (remote.parent / "gone.git").as_uri())
    writer = NotesWriter(work)
    try:
        with pytest.raises(StatusUnavailable, match="notes written locally"):
            writer.post(sha, statuses.drift("east", 0))
        run_git(work, "remote", "set-url", "origin", remote.as_uri())
        # A repeat is not re-written, but the note it owes the remote is pushed.
        assert not writer.post(sha, statuses.drift("east", 0))
    finally:
        writer.close()
    assert "mesh-gitops/drift/east" in _remote_note(remote, sha)["statuses"]  # type: ignore[operator]


def test_notes_refuse_a_bad_sha_and_an_unknown_commit(clone: tuple[Path, Path, str]) -> None:
    work, _, _ = clone
    writer = NotesWriter(work, remote=None)
    try:
        with pytest.raises(InvalidSha):
            writer.post("", statuses.drift("east", 0))
        with pytest.raises(Exception, match="not in the repository"):
            writer.post("c" * 40, statuses.drift("east", 0))
        assert writer.latest("c" * 40) == {}
    finally:
        writer.close()


def test_a_remote_notes_ref_moved_by_someone_else_is_not_overwritten(
    clone: tuple[Path, Path, str], tmp_path: Path
) -> None:
    work, remote, sha = clone
    other = tmp_path / "other"
    run_git(tmp_path, "clone", "-q", remote.as_uri(), str(other))
    run_git(other, "notes", "--ref", NOTES_REF, "add", "-m", "by hand", sha)
    run_git(other, "push", "-q", "origin", NOTES_REF)
    writer = NotesWriter(work)
    try:
        with pytest.raises(StatusUnavailable, match="notes written locally"):
            writer.post(sha, statuses.drift("east", 0))
    finally:
        writer.close()
    assert run_git(remote, "notes", "--ref", NOTES_REF, "show", sha) == "by hand"
