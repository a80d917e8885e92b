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


def test_a_remote_notes_ref_moved_by_someone_else_is_built_on_not_overwritten(
    clone: tuple[Path, Path, str], tmp_path: Path
) -> None:
    work, remote, sha = clone
    other = tmp_path / "other"
    run_git(tmp_path, "clone", "-q", "-b", "main", remote.as_uri(), str(other))
    (other / "b.yaml").write_text("kind: Y\n")
    run_git(other, "add", ".")
    run_git(other, "commit", "-q", "-m", "two")
    second = run_git(other, "rev-parse", "HEAD")
    run_git(other, "push", "-q", "origin", "main")
    run_git(other, "notes", "--ref", NOTES_REF, "add", "-m", "by hand", second)
    run_git(other, "push", "-q", "origin", NOTES_REF)
    theirs = run_git(remote, "rev-parse", NOTES_REF)
    writer = NotesWriter(work)
    try:
        assert writer.post(sha, statuses.drift("east", 0))
    finally:
        writer.close()
    # A fast-forward on top of their notes: their note stays, ours arrives.
    run_git(remote, "merge-base", "--is-ancestor", theirs, NOTES_REF)
    assert run_git(remote, "notes", "--ref", NOTES_REF, "show", second) == "by hand"
    assert sorted(_remote_note(remote, sha)["statuses"]) == ["mesh-gitops/drift/east"]  # type: ignore[call-overload]


def test_a_writer_in_a_fresh_clone_merges_with_the_notes_already_pushed(
    clone: tuple[Path, Path, str], tmp_path: Path
) -> None:
    # A server restarted with an empty cache: its clone has none of the notes it pushed
    # before, and must not be refused as a non-fast-forward forever.
    work, remote, sha = clone
    first = NotesWriter(work)
    try:
        first.post(sha, statuses.sync("east", 1, 1))
        first.post(sha, statuses.drift("east", 0))
    finally:
        first.close()
    fresh = tmp_path / "fresh"
    run_git(tmp_path, "clone", "-q", remote.as_uri(), str(fresh))
    second = NotesWriter(fresh)
    try:
        assert second.post(sha, statuses.drift("east", 2))
        assert second.post(sha, statuses.translation([]))
    finally:
        second.close()
    pushed = _remote_note(remote, sha)["statuses"]
    assert sorted(pushed) == [  # type: ignore[call-overload]
        "mesh-gitops/drift/east",
        "mesh-gitops/sync/east",
        "mesh-gitops/translation",
    ]
    assert pushed["mesh-gitops/drift/east"]["state"] == "failure"  # type: ignore[index]


def test_a_push_refused_after_someone_else_pushed_is_replayed_on_theirs(
    clone: tuple[Path, Path, str], tmp_path: Path
) -> None:
    work, remote, sha = clone
    writer = NotesWriter(work)
    try:
        writer.post(sha, statuses.drift("east", 0))  # pushed: the writer is past its first push
        other = tmp_path / "other"
        run_git(tmp_path, "clone", "-q", "-b", "main", remote.as_uri(), str(other))
        run_git(other, "fetch", "-q", "origin", f"{NOTES_REF}:{NOTES_REF}")
        run_git(other, "notes", "--ref", NOTES_REF, "append", "-m", "x", sha)
        run_git(other, "push", "-q", "origin", NOTES_REF)
        theirs = run_git(remote, "rev-parse", NOTES_REF)
        assert writer.post(sha, statuses.sync("east", 2, 2))
    finally:
        writer.close()
    run_git(remote, "merge-base", "--is-ancestor", theirs, NOTES_REF)
    assert sorted(_remote_note(remote, sha)["statuses"]) == [  # type: ignore[call-overload]
        "mesh-gitops/drift/east",
        "mesh-gitops/sync/east",
    ]
