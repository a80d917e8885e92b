"""Git source: local repositories at a ref, and remotes cloned into the cache.

Every repository is real (built with the git CLI in tmp_path); remotes are served by
`file://`, a real `git daemon` and `git http-backend` (tests/support/git_servers.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from controller.sources import SourceError, open_source
from controller.sources.git import cache_path, is_remote, redact
from gitops.tree import MAX_FILE_BYTES, Link, Other, Oversize
from tests.support import git_servers
from tests.support.git_servers import GitServer, free_port, git_http_backend, run_git

# The server fixtures, registered for this module (a plain import would trip ruff's F811).
git_daemon_server = git_servers.git_daemon_server
git_http_server = git_servers.git_http_server


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _commit(repo: Path, message: str) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD")


def _init(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    run_git(repo, "init", "-q", "-b", "main")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: mesh/ with YAML, a link, a hidden folder; tags v1 (light) and v2 (annotated);
    branch dev with one more file; HEAD on main."""
    root = _init(tmp_path / "origin")
    _write(root / "mesh" / "workspace.yaml", "kind: Workspace\n")
    _write(root / "mesh" / "deep" / "routes.yml", "kind: RouteTable\n")
    _write(root / ".github" / "ci.yaml", "on: push\n")
    _write(root / "mesh" / ".draft.yaml", "kind: Draft\n")
    _write(root / "README.md", "# docs\n")
    os.symlink("workspace.yaml", root / "mesh" / "alias.yaml")
    _commit(root, "first")
    run_git(root, "tag", "v1")
    run_git(root, "tag", "-a", "v2", "-m", "annotated")
    run_git(root, "checkout", "-q", "-b", "dev")
    _write(root / "mesh" / "dev.yaml", "kind: Dev\n")
    _commit(root, "dev only")
    run_git(root, "checkout", "-q", "main")
    return root


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_repository_root_is_read_at_head(repo: Path, tmp_path: Path) -> None:
    tree = open_source(str(repo), None, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "HEAD")
    assert tree.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"
    assert tree.entries["mesh/deep/routes.yml"] == b"kind: RouteTable\n"
    assert tree.entries["README.md"] == Other()
    assert "mesh/dev.yaml" not in tree.entries
    assert tree.origin == f"{repo}@HEAD"
    assert tree.extra["ref"] == "refs/heads/main"


def test_hidden_entries_are_skipped(repo: Path, tmp_path: Path) -> None:
    paths = list(open_source(str(repo), None, _cache(tmp_path)).entries)

    assert paths == sorted(paths)
    assert not [path for path in paths if ".github" in path or ".draft" in path]


def test_symlink_blob_is_a_link(repo: Path, tmp_path: Path) -> None:
    tree = open_source(str(repo), "main", _cache(tmp_path))

    assert tree.entries["mesh/alias.yaml"] == Link("workspace.yaml")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("dev", "refs/heads/dev"), ("refs/heads/dev", "refs/heads/dev"), ("v1", "refs/tags/v1")],
)
def test_branch_and_tag_refs(repo: Path, tmp_path: Path, ref: str, expected: str) -> None:
    tree = open_source(str(repo), ref, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", f"{expected}^{{commit}}")
    assert tree.extra["ref"] == expected
    assert tree.origin == f"{repo}@{ref}"
    assert ("mesh/dev.yaml" in tree.entries) is (ref != "v1")


def test_annotated_tag_is_peeled_to_its_commit(repo: Path, tmp_path: Path) -> None:
    tree = open_source(str(repo), "v2", _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "main")
    assert run_git(repo, "rev-parse", "v2") != tree.revision  # the tag object itself


def test_commit_id_full_and_abbreviated(repo: Path, tmp_path: Path) -> None:
    dev = run_git(repo, "rev-parse", "dev")

    full = open_source(str(repo), dev, _cache(tmp_path))
    short = open_source(str(repo), dev[:8], _cache(tmp_path))

    assert full.revision == short.revision == dev
    assert full.entries == short.entries
    assert full.extra["ref"] == dev


def test_subdirectory_with_ref_is_relative_to_it(repo: Path, tmp_path: Path) -> None:
    tree = open_source(str(repo / "mesh"), "dev", _cache(tmp_path))

    assert set(tree.entries) == {"workspace.yaml", "deep/routes.yml", "alias.yaml", "dev.yaml"}
    assert tree.revision == run_git(repo, "rev-parse", "dev")


def test_subdirectory_missing_from_worktree_is_read_at_ref(repo: Path, tmp_path: Path) -> None:
    # mesh/ exists on dev; in a checkout of an orphan branch it is gone from disk.
    run_git(repo, "checkout", "-q", "--orphan", "empty")
    run_git(repo, "rm", "-rq", "--cached", ".")
    for folder in ("mesh", ".github"):
        shutil.rmtree(repo / folder)

    tree = open_source(str(repo / "mesh" / "deep"), "dev", _cache(tmp_path))

    assert tree.entries == {"routes.yml": b"kind: RouteTable\n"}


def test_uncommitted_changes_are_invisible_at_a_ref(repo: Path, tmp_path: Path) -> None:
    _write(repo / "mesh" / "workspace.yaml", "kind: Edited\n")
    _write(repo / "mesh" / "new.yaml", "kind: New\n")

    at_head = open_source(str(repo), None, _cache(tmp_path))
    at_main = open_source(str(repo / "mesh"), "main", _cache(tmp_path))
    on_disk = open_source(str(repo / "mesh"), None, _cache(tmp_path))

    assert at_head.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"
    assert "mesh/new.yaml" not in at_head.entries
    assert at_main.entries["workspace.yaml"] == b"kind: Workspace\n"
    # A folder below the root without a ref is a plain directory: the working files.
    assert on_disk.revision is None
    assert on_disk.entries["new.yaml"] == b"kind: New\n"


def test_oversized_blob_is_reported_by_size(repo: Path, tmp_path: Path) -> None:
    with open(repo / "mesh" / "big.yaml", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 7)
    _commit(repo, "big")
    (repo / "mesh" / "big.yaml").unlink()  # proves the size comes from the object database

    tree = open_source(str(repo), "main", _cache(tmp_path))

    assert tree.entries["mesh/big.yaml"] == Oversize(MAX_FILE_BYTES + 7)


def test_submodule_entry_is_other(repo: Path, tmp_path: Path) -> None:
    gitlink = "160000," + "1" * 40 + ",vendor/mesh"
    run_git(repo, "update-index", "--add", "--cacheinfo", gitlink)
    run_git(repo, "commit", "-q", "-m", "submodule")

    tree = open_source(str(repo), None, _cache(tmp_path))

    assert tree.entries["vendor/mesh"] == Other()


def test_unknown_ref_lists_branches(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as raised:
        open_source(str(repo), "nope", _cache(tmp_path))

    assert str(raised.value) == f"ref 'nope' not found in {repo}@nope; known branches: dev, main"


def test_ref_naming_a_tree_is_rejected(repo: Path, tmp_path: Path) -> None:
    tree_id = run_git(repo, "rev-parse", "main^{tree}")
    run_git(repo, "tag", "treetag", tree_id)

    with pytest.raises(SourceError, match="does not point to a commit"):
        open_source(str(repo), "treetag", _cache(tmp_path))


def test_path_missing_at_ref_is_an_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'mesh/dev\.yaml' is not a directory"):
        open_source(str(repo / "mesh" / "dev.yaml"), "dev", _cache(tmp_path))
    with pytest.raises(SourceError, match="'nowhere' does not exist in"):
        open_source(str(repo / "nowhere"), "main", _cache(tmp_path))


def test_missing_path_without_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "absent"), None, _cache(tmp_path))


def test_empty_repository_has_no_head(tmp_path: Path) -> None:
    empty = _init(tmp_path / "empty")

    with pytest.raises(SourceError, match="has no commits"):
        open_source(str(empty), None, _cache(tmp_path))


def test_missing_object_is_a_source_error(repo: Path, tmp_path: Path) -> None:
    blob = run_git(repo, "rev-parse", "HEAD:mesh/deep/routes.yml")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()

    with pytest.raises(SourceError) as raised:
        open_source(str(repo), None, _cache(tmp_path))

    assert str(raised.value) == f"cannot read {repo}@HEAD: object {blob} is missing"


def test_bare_repository_root_is_read_at_head(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))

    tree = open_source(str(bare), None, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "main")
    assert tree.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"


# -- remotes -------------------------------------------------------------------------------


def _only_clone(cache: Path) -> Path:
    clones = [path for path in cache.iterdir() if path.suffix == ".git"]
    assert len(clones) == 1, clones
    assert not [path for path in cache.iterdir() if path.name.startswith(".")]
    return clones[0]


def test_file_url_is_cloned_then_fetched(repo: Path, tmp_path: Path) -> None:
    url = repo.as_uri()
    cache = _cache(tmp_path)

    first = open_source(url, None, cache)
    clone = _only_clone(cache)
    _write(repo / "mesh" / "later.yaml", "kind: Later\n")
    later = _commit(repo, "later")
    second = open_source(url, None, cache)

    assert first.revision != later and "mesh/later.yaml" not in first.entries
    assert second.revision == later
    assert second.entries["mesh/later.yaml"] == b"kind: Later\n"
    assert _only_clone(cache) == clone == cache_path(url, cache)
    assert (clone / "objects").is_dir() and not (clone / "mesh").exists()  # bare
    assert second.origin == f"{url}@HEAD"
    assert second.extra == {"url": url, "ref": "refs/heads/main"}


def test_remote_refs_tags_and_commit_ids(repo: Path, tmp_path: Path) -> None:
    url = repo.as_uri()
    dev = run_git(repo, "rev-parse", "dev")

    assert open_source(url, "dev", _cache(tmp_path)).revision == dev
    assert open_source(url, "v2", _cache(tmp_path)).revision == run_git(repo, "rev-parse", "main")
    assert open_source(url, dev[:10], _cache(tmp_path)).revision == dev


def test_remote_head_follows_the_default_branch(repo: Path, tmp_path: Path) -> None:
    url = repo.as_uri()
    open_source(url, None, _cache(tmp_path))
    run_git(repo, "symbolic-ref", "HEAD", "refs/heads/dev")

    tree = open_source(url, None, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "dev")
    assert tree.extra["ref"] == "refs/heads/dev"


def test_branch_deleted_on_remote_is_pruned(repo: Path, tmp_path: Path) -> None:
    url = repo.as_uri()
    open_source(url, "dev", _cache(tmp_path))
    run_git(repo, "branch", "-q", "-D", "dev")

    with pytest.raises(SourceError, match=r"known branches: main$"):
        open_source(url, "dev", _cache(tmp_path))


def test_unknown_ref_on_remote_is_an_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"ref 'nope' not found in file://.*; known branches"):
        open_source(repo.as_uri(), "nope", _cache(tmp_path))


def test_corrupt_cache_is_cloned_again(repo: Path, tmp_path: Path) -> None:
    url = repo.as_uri()
    clone = cache_path(url, _cache(tmp_path))
    clone.mkdir(parents=True)
    (clone / "junk").write_text("not a repository")

    tree = open_source(url, None, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "main")
    assert not (clone / "junk").exists()


def _serve(server: GitServer, repo: Path) -> str:
    run_git(server.base, "clone", "-q", "--bare", str(repo), "mesh.git")
    return server.url_for("mesh.git")


def _push_commit(served: Path, tmp_path: Path) -> str:
    work = tmp_path / "pusher"
    run_git(tmp_path, "clone", "-q", str(served), str(work))
    _write(work / "mesh" / "pushed.yaml", "kind: Pushed\n")
    pushed = _commit(work, "pushed")
    run_git(work, "push", "-q", "origin", "main")
    return pushed


def _assert_clone_then_fetch(url: str, served: Path, tmp_path: Path) -> None:
    first = open_source(url, "main", _cache(tmp_path))
    assert first.entries["mesh/workspace.yaml"] == b"kind: Workspace\n"
    pushed = _push_commit(served, tmp_path)

    second = open_source(url, "main", _cache(tmp_path))

    assert second.revision == pushed != first.revision
    assert second.entries["mesh/pushed.yaml"] == b"kind: Pushed\n"
    assert _only_clone(_cache(tmp_path)) == cache_path(url, _cache(tmp_path))


def test_git_daemon_remote(git_daemon_server: GitServer, repo: Path, tmp_path: Path) -> None:
    url = _serve(git_daemon_server, repo)

    _assert_clone_then_fetch(url, git_daemon_server.base / "mesh.git", tmp_path)


def test_http_remote(git_http_server: GitServer, repo: Path, tmp_path: Path) -> None:
    url = _serve(git_http_server, repo)

    _assert_clone_then_fetch(url, git_http_server.base / "mesh.git", tmp_path)


def test_http_credentials_are_used_but_never_shown(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "private"
    base.mkdir()
    with git_http_backend(base, auth=("robot", "s3cret")) as server:
        plain = _serve(server, repo)
        url = plain.replace("http://", "http://robot:s3cret@")

        tree = open_source(url, None, _cache(tmp_path))
        with pytest.raises(SourceError) as denied:
            open_source(url.replace("s3cret", "wrong-s3cret"), None, _cache(tmp_path))
        with pytest.raises(SourceError, match="the server requires credentials"):
            open_source(plain, None, _cache(tmp_path))

    assert tree.revision == run_git(repo, "rev-parse", "main")
    assert "s3cret" not in tree.origin and "robot" not in tree.origin
    assert tree.origin == plain.replace("http://", "http://***@") + "@HEAD"
    assert str(denied.value) == (
        f"cannot fetch {tree.extra['url']}: the server rejected the credentials in the URL"
    )
    clone = _only_clone(_cache(tmp_path))
    assert clone == cache_path(plain, _cache(tmp_path))
    assert b"s3cret" not in (clone / "config").read_bytes()


def test_unreachable_remote_error_hides_credentials(tmp_path: Path) -> None:
    url = f"https://user:s3cret@127.0.0.1:{free_port()}/x.git"

    with pytest.raises(SourceError) as raised:
        open_source(url, None, _cache(tmp_path))

    message = str(raised.value)
    assert message.startswith("cannot fetch https://***@127.0.0.1:")
    assert "s3cret" not in message and "user" not in message
    assert not _cache(tmp_path).exists() or not list(_cache(tmp_path).iterdir())


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "remote"),
    [
        ("https://github.com/org/mesh.git", True),
        ("HTTP://example.com/mesh", True),
        ("ssh://git@example.com:2222/org/mesh.git", True),
        ("git://127.0.0.1:9418/mesh.git", True),
        ("file:///srv/mesh", True),
        ("git@github.com:org/mesh.git", True),
        ("./mesh", False),
        ("/srv/mesh", False),
        ("relative/dir:with-colon", False),
        ("mesh", False),
    ],
)
def test_is_remote(location: str, remote: bool) -> None:
    assert is_remote(location) is remote


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:secret@host/x", "https://***@host/x"),
        ("https://ghp_token@host/x", "https://***@host/x"),
        ("https://user:p@ss@host/x", "https://***@host/x"),
        ("fetch ssh://git@h/x and http://a:b@c/d", "fetch ssh://***@h/x and http://***@c/d"),
        ("https://host/x", "https://host/x"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_cache_key_ignores_credentials(tmp_path: Path) -> None:
    plain = cache_path("https://host/org/x.git", tmp_path)

    assert cache_path("https://user:secret@host/org/x.git", tmp_path) == plain
    assert cache_path("https://host/org/y.git", tmp_path) != plain
    assert len(plain.name) == len("0123456789abcdef.git")
