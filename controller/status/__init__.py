"""Status writers: where `gitops.statuses.Status` values go (DESIGN.md section 9).

The server computes statuses with the pure `gitops.statuses` functions and posts each to
the commit whose config was applied, through one `StatusWriter` built once at start-up by
`writer_for` from `gitops.status` in the values:

- `notes`  -> `NotesWriter`   (git notes in `refs/notes/mesh-gitops`, pushed; the default)
- `github` -> `GitHubWriter`  (`apiUrl` defaults to https://api.github.com)
- `gitea`  -> `GiteaWriter`   (`apiUrl` required, e.g. https://gitea.example/api/v1)
- `gitlab` -> `GitLabWriter`  (`apiUrl` defaults to https://gitlab.com/api/v4)

Host writers read their token from the Secret `tokenSecret`, key `token`. Errors are in
`controller.status.errors`; none of them carries the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from controller.secrets import SecretsDir
from controller.status.errors import StatusError, StatusRejected, StatusUnavailable
from controller.status.github import GITHUB_API, GiteaWriter, GitHubWriter
from controller.status.gitlab import GITLAB_API, GitLabWriter
from controller.status.http import RetryPolicy
from controller.status.notes import NOTES_REF, NotesWriter
from gitops.statuses import Status, repository_from_url

if TYPE_CHECKING:
    from gitops.helm.gitops_block import Status as StatusValues

__all__ = [
    "NOTES_REF",
    "GitHubWriter",
    "GitLabWriter",
    "GiteaWriter",
    "NotesWriter",
    "RetryPolicy",
    "StatusError",
    "StatusRejected",
    "StatusUnavailable",
    "StatusWriter",
    "writer_for",
]

TOKEN_KEY = "token"


class StatusWriter(Protocol):
    """Where commit statuses go. Implementations refuse a SHA that is not a full one."""

    def post(self, sha: str, status: Status) -> bool:
        """Write `status` on commit `sha`; False when skipped (a repeat, or refused as final)."""
        ...

    def latest(self, sha: str) -> dict[str, Status]:
        """The latest status of every context on commit `sha`."""
        ...

    def close(self) -> None: ...


def writer_for(
    values: StatusValues,
    secrets: SecretsDir | None,
    repo_path: Path,
    *,
    repo_url: str | None = None,
    remote: str | None = "origin",
    retry: RetryPolicy | None = None,
) -> StatusWriter:
    """The writer `gitops.status` asks for.

    `repo_path` is the controller's clone (where notes are written; `remote` is pushed
    to). `repo_url` is `gitops.repo.url`, used when `repository` is not set.
    """
    if values.provider == "notes":
        return NotesWriter(repo_path, remote=remote)
    token = _token(values, secrets)
    repository = values.repository
    if not repository:
        if not repo_url:
            raise StatusRejected("set gitops.status.repository (no repository URL to derive it)")
        repository = repository_from_url(repo_url)
    if values.provider == "github":
        return GitHubWriter(repository, token, api_url=values.api_url or GITHUB_API, retry=retry)
    if values.provider == "gitea":
        if not values.api_url:
            raise StatusRejected("gitops.status.apiUrl is required for provider gitea")
        return GiteaWriter(repository, token, api_url=values.api_url, retry=retry)
    return GitLabWriter(repository, token, api_url=values.api_url or GITLAB_API, retry=retry)


def _token(values: StatusValues, secrets: SecretsDir | None) -> str:
    if not values.token_secret:
        raise StatusRejected(f"gitops.status.tokenSecret is required for {values.provider}")
    if secrets is None:
        raise StatusRejected("status tokens need a secrets directory (--secrets)")
    token = secrets.read_text(values.token_secret, TOKEN_KEY)
    if not token:
        raise StatusRejected(f"Secret {values.token_secret} key {TOKEN_KEY} is empty")
    return token
