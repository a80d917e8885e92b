"""`controller.status.writer_for`: the writer `gitops.status` asks for, token from a Secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.secrets import SecretError, SecretsDir
from controller.status import (
    GiteaWriter,
    GitHubWriter,
    GitLabWriter,
    NotesWriter,
    RetryPolicy,
    StatusRejected,
    writer_for,
)
from gitops import statuses
from gitops.helm.gitops_block import Status as StatusValues
from tests.support import git_host as git_host_module
from tests.support.git_host import TOKEN, GitHost
from tests.support.git_servers import run_git

git_host = git_host_module.git_host

SHA = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def secrets(tmp_path: Path) -> SecretsDir:
    store = SecretsDir(tmp_path / "secrets")
    store.write("host-token", "token", f"{TOKEN}\n".encode())
    return store


def _values(**keys: str) -> StatusValues:
    return StatusValues.model_validate(keys)


def test_notes_is_the_default(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "-q", "repo")
    writer = writer_for(_values(), None, tmp_path / "repo")
    try:
        assert isinstance(writer, NotesWriter)
    finally:
        writer.close()


def test_github_reads_its_token_and_derives_the_repository(
    git_host: GitHost, secrets: SecretsDir, tmp_path: Path
) -> None:
    values = _values(provider="github", apiUrl=git_host.url, tokenSecret="host-token")
    writer = writer_for(
        values, secrets, tmp_path, repo_url="git@github.com:acme/mesh.git", retry=RetryPolicy()
    )
    try:
        assert isinstance(writer, GitHubWriter)
        assert writer.post(SHA, statuses.drift("east", 0))
    finally:
        writer.close()
    assert git_host.calls[-1].path == f"/repos/acme/mesh/statuses/{SHA}"


@pytest.mark.parametrize(("provider", "kind"), [("gitea", GiteaWriter), ("gitlab", GitLabWriter)])
def test_gitea_and_gitlab(provider: str, kind: type, secrets: SecretsDir, tmp_path: Path) -> None:
    values = _values(
        provider=provider, apiUrl="https://h/api", tokenSecret="host-token", repository="a/b"
    )
    writer = writer_for(values, secrets, tmp_path)
    try:
        assert isinstance(writer, kind)
    finally:
        writer.close()


def test_settings_mistakes_are_rejected_without_the_token(
    secrets: SecretsDir, tmp_path: Path
) -> None:
    with pytest.raises(StatusRejected, match="tokenSecret is required"):
        writer_for(_values(provider="github", repository="a/b"), secrets, tmp_path)
    with pytest.raises(StatusRejected, match="apiUrl is required"):
        writer_for(
            _values(provider="gitea", tokenSecret="host-token", repository="a/b"), secrets, tmp_path
        )
    with pytest.raises(StatusRejected, match="repository"):
        writer_for(_values(provider="gitlab", tokenSecret="host-token"), secrets, tmp_path)
    with pytest.raises(SecretError, match="no key token"):
        writer_for(
            _values(provider="github", tokenSecret="missing", repository="a/b"), secrets, tmp_path
        )
    with pytest.raises(StatusRejected, match="secrets directory"):
        writer_for(_values(provider="github", tokenSecret="host-token"), None, tmp_path)
