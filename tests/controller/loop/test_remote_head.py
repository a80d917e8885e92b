"""`remote_head` and `HeadWatch` against real repositories: file://, a plain path, git daemon.

Each test pushes to a bare "remote" with the git CLI and checks that the advertised head
follows, and that nothing was fetched into the repository asking.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.loop.remote_head import HeadWatch, RemoteHeadError, remote_head
from tests.support import git_servers
from tests.support.git_servers import GitServer, free_port, run_git

git_daemon_server = git_servers.git_daemon_server


def make_remote(base: Path) -> tuple[Path, Path]:
    """A bare remote `base/config.git` and a working copy pushing to it; both paths."""
    bare = base / "config.git"
    run_git(base, "init", "-q", "--bare", "-b", "main", str(bare))
    work = base / "work"
    run_git(base, "clone", "-q", str(bare), str(work))
    run_git(work, "checkout", "-q", "-b", "main")
    push(work, "first")
    return bare, work


def push(work: Path, name: str) -> str:
    (work / f"{name}.yaml").write_text(f"{name}\n")
    run_git(work, "add", ".")
    run_git(work, "commit", "-q", "-m", name)
    run_git(work, "push", "-q", "origin", "HEAD:main")
    return run_git(work, "rev-parse", "HEAD")


@pytest.mark.parametrize("form", ["file-url", "path"])
def test_the_head_follows_pushes_to_a_local_remote(tmp_path: Path, form: str) -> None:
    bare, work = make_remote(tmp_path)
    url = bare.as_uri() if form == "file-url" else str(bare)
    first = run_git(work, "rev-parse", "HEAD")
    assert remote_head(url, "main") == first
    second = push(work, "second")
    assert second != first
    assert remote_head(url, "main") == second
    assert remote_head(url, "refs/heads/main") == second
    assert remote_head(url, "HEAD") == second


def test_the_head_follows_pushes_over_git_daemon(git_daemon_server: GitServer) -> None:
    bare, work = make_remote(git_daemon_server.base)
    url = git_daemon_server.url_for(bare.name)
    assert remote_head(url, "main") == run_git(work, "rev-parse", "HEAD")
    second = push(work, "second")
    assert remote_head(url, "main") == second


def test_annotated_tags_are_peeled_and_unknown_refs_are_none(tmp_path: Path) -> None:
    bare, work = make_remote(tmp_path)
    run_git(work, "tag", "-a", "v1", "-m", "release")
    run_git(work, "push", "-q", "origin", "v1")
    commit = run_git(work, "rev-parse", "HEAD")
    assert run_git(work, "rev-parse", "v1") != commit  # the tag object itself
    assert remote_head(bare.as_uri(), "v1") == commit
    assert remote_head(bare.as_uri(), "no-such-branch") is None


def test_a_full_sha_is_its_own_head_without_asking(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert remote_head((tmp_path / "missing.git").as_uri(), sha) == sha


def test_asking_does_not_fetch_objects_into_the_remote_or_leave_files(tmp_path: Path) -> None:
    bare, _ = make_remote(tmp_path)
    before = sorted(p.relative_to(bare) for p in bare.rglob("*"))
    remote_head(bare.as_uri(), "main")
    assert sorted(p.relative_to(bare) for p in bare.rglob("*")) == before


def test_an_unreachable_remote_is_an_error_without_its_credentials() -> None:
    url = f"http://deploy:tok3n-value@127.0.0.1:{free_port()}/config.git"
    with pytest.raises(RemoteHeadError) as raised:
        remote_head(url, "main")
    message = str(raised.value)
    assert "tok3n-value" not in message and "deploy:" not in message
    assert "127.0.0.1" in message


def test_head_watch_says_moved_only_when_the_head_changes(tmp_path: Path) -> None:
    bare, work = make_remote(tmp_path)
    watch = HeadWatch(bare.as_uri(), "main")
    assert watch() is True  # nothing known yet: worth one fetch
    assert watch() is False
    second = push(work, "second")
    assert watch() is True
    assert watch() is False
    third = push(work, "third")
    watch.seen(third)  # a webhook-started reconcile already fetched it
    assert watch() is False
    assert second != third


def test_head_watch_asks_for_a_fetch_when_the_remote_fails(tmp_path: Path) -> None:
    watch = HeadWatch((tmp_path / "gone.git").as_uri(), "main")
    assert watch() is True
    assert watch() is True
