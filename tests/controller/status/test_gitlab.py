"""The GitLab writer against the Git host stand-in: state mapping, project paths, dedup."""

from __future__ import annotations

from urllib.parse import quote

from controller.status import GitLabWriter, RetryPolicy
from gitops import statuses
from gitops.statuses import Status, StatusState
from tests.support import git_host as git_host_module
from tests.support.git_host import TOKEN, Failure, GitHost

git_host = git_host_module.git_host

SHA = "89abcdef0123456789abcdef0123456789abcdef"
PROJECT = "platform/mesh/config"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)


def test_states_map_to_gitlab_and_the_project_path_is_encoded(git_host: GitHost) -> None:
    context = statuses.sync_context("east")
    with GitLabWriter(PROJECT, TOKEN, api_url=git_host.url, retry=FAST) as writer:
        assert writer.post(SHA, statuses.sync("east", 2, 1))
        assert writer.post(SHA, statuses.sync("east", 2, 2))
        assert writer.post(SHA, statuses.sync("east", 3, 2, ["refused"]))
        # `error` with the same text is `failed` too: a repeat in GitLab's words.
        same = Status(context, StatusState.ERROR, "rejected version 3: refused")
        assert not writer.post(SHA, same)
        latest = writer.latest(SHA)
    assert git_host.posted == [
        (SHA, context, "running"),
        (SHA, context, "success"),
        (SHA, context, "failed"),
    ]
    post = next(c for c in git_host.calls if c.method == "POST")
    assert post.path == f"/projects/{quote(PROJECT, safe='')}/statuses/{SHA}"
    assert post.body == {
        "state": "running",
        "name": context,
        "description": "waiting for version 2; agent on version 1",
    }
    assert latest[context].state is StatusState.FAILURE
    assert latest[context].description == "rejected version 3: refused"


def test_a_new_writer_skips_what_gitlab_already_shows(git_host: GitHost) -> None:
    done = statuses.drift("west", 0, target_url="http://c/r")
    git_host.seed(PROJECT, SHA, name=done.context, status="running", description="x")
    git_host.seed(
        PROJECT, SHA, name=done.context, status="success", description="no drift",
        target_url="http://c/r",
    )  # fmt: skip
    for i in range(120):
        git_host.seed(PROJECT, SHA, name=f"ci/{i}", status="success", description="")
    with GitLabWriter(PROJECT, TOKEN, api_url=git_host.url, retry=FAST) as writer:
        assert not writer.post(SHA, done)
    gets = [c for c in git_host.calls if c.method == "GET"]
    assert [c.query.get("page") for c in gets] == ["1", "2"]
    assert git_host.posted == []


def test_gitlab_retries_a_5xx(git_host: GitHost) -> None:
    git_host.fail(Failure(500, times=2))
    with GitLabWriter("42", TOKEN, api_url=git_host.url, retry=FAST) as writer:
        assert writer.post(SHA, statuses.drift("west", 1))
    assert [c.code for c in git_host.calls] == [500, 500, 200, 201]
    assert git_host.posted == [(SHA, "mesh-gitops/drift/west", "failed")]


def test_project_ids_are_url_encoded_on_the_wire() -> None:
    host = GitHost()
    try:
        with GitLabWriter(PROJECT, TOKEN, api_url=host.url, retry=FAST) as writer:
            writer.latest(SHA)
        encoded = "platform%2Fmesh%2Fconfig"
        assert host.calls[0].path == f"/projects/{encoded}/repository/commits/{SHA}/statuses"
    finally:
        host.close()
