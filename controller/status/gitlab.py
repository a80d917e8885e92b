"""Commit statuses on GitLab (gitlab.com and self-managed).

`POST {api}/projects/{id}/statuses/{sha}` with `state`, `name` (our context), `target_url`
and `description`; `{id}` is the numeric project id or the URL-encoded `group/project`
path. The latest status per name is listed at
`GET {api}/projects/{id}/repository/commits/{sha}/statuses` (GitLab returns only the
latest per name unless `all=true`; pages follow `Link`).

GitLab's states differ from ours: `pending` means "queued" there, so work in progress is
`running`; it has no `error`, so both `failure` and `error` are `failed`. Dedup compares in
GitLab's words, so an `error` after a `failure` with the same text is a repeat. GitLab
also refuses a transition to the state a status already has, which dedup avoids.

Built by `controller.status.writer_for`; retries and dedup are `HostWriter`'s.
"""

from __future__ import annotations

from urllib.parse import quote

from controller.status.http import HostWriter, RetryPolicy, Wire, next_link
from gitops.statuses import Status, StatusState, truncate

GITLAB_API = "https://gitlab.com/api/v4"
_MAX_PAGES = 10

_TO_GITLAB = {
    StatusState.PENDING: "running",
    StatusState.SUCCESS: "success",
    StatusState.FAILURE: "failed",
    StatusState.ERROR: "failed",
}
_FROM_GITLAB = {
    "created": StatusState.PENDING,
    "pending": StatusState.PENDING,
    "running": StatusState.PENDING,
    "success": StatusState.SUCCESS,
    "failed": StatusState.FAILURE,
    "canceled": StatusState.ERROR,
    "skipped": StatusState.ERROR,
}


class GitLabWriter(HostWriter):
    """Statuses through GitLab's REST API. `project` is a numeric id or `group/project`."""

    host = "GitLab"

    def __init__(
        self,
        project: str,
        token: str,
        *,
        api_url: str = GITLAB_API,
        retry: RetryPolicy | None = None,
    ) -> None:
        project = project.strip("/")
        if not project:
            raise ValueError("GitLab statuses need a project id or path (gitops.status.repository)")
        self._project = f"projects/{quote(project, safe='')}"
        super().__init__(api_url, token, retry=retry)

    def _headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token}

    def to_wire(self, status: Status) -> Wire:
        return Wire(_TO_GITLAB[status.state], status.description, status.target_url)

    def state_from_wire(self, state: str) -> StatusState:
        return _FROM_GITLAB.get(state, StatusState.ERROR)

    def _post_one(self, sha: str, status: Status, wire: Wire) -> bool:
        body = {"state": wire.state, "name": status.context, "description": wire.description}
        if wire.target_url:
            body["target_url"] = wire.target_url
        self.request("POST", f"/{self._project}/statuses/{sha}", json=body)
        return True

    def _list(self, sha: str) -> dict[str, Status]:
        newest: dict[str, tuple[int, Status]] = {}
        url: str | None = f"/{self._project}/repository/commits/{sha}/statuses"
        params: dict[str, str | int] | None = {"per_page": 100, "page": 1}
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = self.request("GET", url, params=params)
            for item in response.json():
                name = str(item.get("name") or "default")
                ident = int(item.get("id") or 0)
                # Keep the highest id per name: GitLab's order is not documented as stable.
                if name not in newest or ident > newest[name][0]:
                    status = Status(
                        name,
                        self.state_from_wire(str(item["status"])),
                        truncate(str(item.get("description") or "")),
                        str(item.get("target_url") or ""),
                    )
                    newest[name] = (ident, status)
            url, params = next_link(response), None
        return {name: status for name, (_, status) in sorted(newest.items())}
