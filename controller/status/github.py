"""Commit statuses on GitHub (and GitHub Enterprise) and on Gitea, which copies its API.

Both take `POST {api}/repos/{owner}/{repo}/statuses/{sha}` with `state`, `target_url`,
`description` and `context`, and list a commit's statuses newest first at
`GET {api}/repos/{owner}/{repo}/commits/{sha}/statuses`, paginated with `Link` headers.
They differ in the page-size parameter (`per_page` vs `limit`), the token scheme and the
default API URL (GitHub's public one; Gitea has none, so `apiUrl` is required).

Built by `controller.status.writer_for`; the retry policy and dedup are `HostWriter`'s.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from controller.status.http import HostWriter, RetryPolicy, Wire, next_link
from gitops.statuses import Status, truncate

log = logging.getLogger(__name__)

GITHUB_API = "https://api.github.com"
#: GitHub keeps at most 1000 statuses per sha+context: ten pages of 100 reach the oldest.
_MAX_PAGES = 10


class GitHubWriter(HostWriter):
    """Statuses through GitHub's REST API. `repository` is `owner/name`."""

    host = "GitHub"
    _page_param = "per_page"

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        api_url: str = GITHUB_API,
        retry: RetryPolicy | None = None,
    ) -> None:
        owner, _, name = repository.strip("/").partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"{self.host} repository must be owner/name, got {repository!r}")
        self._repo = f"repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        super().__init__(api_url, token, retry=retry)

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"}

    def _post_one(self, sha: str, status: Status, wire: Wire) -> bool:
        body = {
            "state": wire.state,
            "description": wire.description,
            "context": status.context,
        }
        if wire.target_url:
            body["target_url"] = wire.target_url
        # 422 is final: GitHub's "too many statuses" (1000 per sha+context) or a value it
        # refuses. Retrying cannot help, and argocd-notifications treats it as done too.
        response = self.request("POST", f"/{self._repo}/statuses/{sha}", json=body, final=_F422)
        if response.status_code == 422:
            log.warning(
                "%s refused status %s on %s (HTTP 422): %s; not retried",
                self.host,
                status.context,
                sha[:12],
                self._scrub(response.text[:200].strip()),
            )
            return False
        return True

    def _list(self, sha: str) -> dict[str, Status]:
        found: dict[str, Status] = {}
        url: str | None = f"/{self._repo}/commits/{sha}/statuses"
        params: dict[str, str | int] | None = {self._page_param: 100, "page": 1}
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = self.request("GET", url, params=params)
            for item in response.json():
                context = str(item.get("context") or "default")
                # Newest first: the first one seen for a context is its latest.
                if context not in found:
                    found[context] = Status(
                        context,
                        self.state_from_wire(str(item["state"])),
                        truncate(str(item.get("description") or "")),
                        str(item.get("target_url") or ""),
                    )
            # The next link carries its own query string.
            url, params = next_link(response), None
        return found


class GiteaWriter(GitHubWriter):
    """Statuses through Gitea's (and Forgejo's) GitHub-shaped API; `api_url` ends `/api/v1`."""

    host = "Gitea"
    _page_param = "limit"

    def __init__(
        self, repository: str, token: str, *, api_url: str, retry: RetryPolicy | None = None
    ) -> None:
        if not api_url:
            raise ValueError("Gitea statuses need gitops.status.apiUrl (https://host/api/v1)")
        super().__init__(repository, token, api_url=api_url, retry=retry)

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}


_F422 = frozenset({422})
