"""GitHub and Gitea writers against the Git host stand-in (tests/support/git_host.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from controller.status import (
    GiteaWriter,
    GitHubWriter,
    RetryPolicy,
    StatusRejected,
    StatusUnavailable,
)
from gitops import statuses
from gitops.statuses import InvalidSha, Status, StatusState
from tests.support import git_host as git_host_module
from tests.support.git_host import TOKEN, Failure, GitHost

git_host = git_host_module.git_host

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "acme/mesh-config"
#: No real waiting in tests: back-off is capped at 10 ms (the cap itself is under test).
FAST = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


@pytest.fixture
def writer(git_host: GitHost) -> Iterator[GitHubWriter]:
    with GitHubWriter(REPO, TOKEN, api_url=git_host.url, retry=FAST) as w:
        yield w  # type: ignore[misc]


def _posts(host: GitHost) -> list[str]:
    return [c.path for c in host.calls if c.method == "POST"]


def test_posts_go_out_in_order_and_repeats_are_skipped(
    writer: GitHubWriter, git_host: GitHost
) -> None:
    translation = statuses.translation_context()
    assert writer.post(SHA, statuses.pending(translation, target_url="http://c/reports/x"))
    assert writer.post(SHA, statuses.sync("east", 1, 0))
    assert writer.post(SHA, statuses.translation([], target_url="http://c/reports/x"))
    assert not writer.post(SHA, statuses.translation([], target_url="http://c/reports/x"))
    assert writer.post(SHA, statuses.sync("east", 1, 1))
    assert git_host.posted == [
        (SHA, "mesh-gitops/translation", "pending"),
        (SHA, "mesh-gitops/sync/east", "pending"),
        (SHA, "mesh-gitops/translation", "success"),
        (SHA, "mesh-gitops/sync/east", "success"),
    ]
    first = next(c for c in git_host.calls if c.method == "POST")
    assert first.path == f"/repos/{REPO}/statuses/{SHA}"
    assert first.body == {
        "state": "pending",
        "description": "in progress",
        "context": "mesh-gitops/translation",
        "target_url": "http://c/reports/x",
    }
    latest = writer.latest(SHA)
    assert latest["mesh-gitops/sync/east"].state is StatusState.SUCCESS


def test_a_new_writer_reads_every_page_before_posting(git_host: GitHost) -> None:
    done = statuses.drift("east", 0)
    git_host.seed(REPO, SHA, context=done.context, state="success", description="no drift")
    for i in range(150):
        git_host.seed(REPO, SHA, context=f"other/{i}", state="success", description="x")
    with GitHubWriter(REPO, TOKEN, api_url=git_host.url, retry=FAST) as writer:
        assert not writer.post(SHA, done)
        assert writer.latest(SHA)[done.context] == done
    pages = [c.query.get("page") for c in git_host.calls if c.method == "GET"]
    assert pages[:2] == ["1", "2"]
    assert git_host.posted == []


def test_422_is_final(
    writer: GitHubWriter, git_host: GitHost, caplog: pytest.LogCaptureFixture
) -> None:
    git_host.max_per_context = 1
    assert writer.post(SHA, statuses.drift("east", 0))
    assert not writer.post(SHA, statuses.drift("east", 1))
    assert len(_posts(git_host)) == 2
    assert "HTTP 422" in caplog.text


def test_5xx_and_rate_limits_back_off_then_post(writer: GitHubWriter, git_host: GitHost) -> None:
    git_host.fail(Failure(502, times=2, method="POST"))
    git_host.fail(
        Failure(
            403,
            method="POST",
            # An hour's wait, capped by the policy: the test would hang if it were honoured.
            headers={"X-RateLimit-Remaining": "0", "Retry-After": "3600"},
            body='{"message": "API rate limit exceeded"}',
        )
    )
    git_host.fail(Failure(429, method="POST"))
    assert writer.post(SHA, statuses.drift("east", 0))
    assert [c.code for c in git_host.calls if c.method == "POST"] == [502, 502, 403, 429, 201]
    assert git_host.posted == [(SHA, "mesh-gitops/drift/east", "success")]


def test_a_host_that_stays_down_is_unavailable(writer: GitHubWriter, git_host: GitHost) -> None:
    git_host.fail(Failure(503, times=100))
    with pytest.raises(StatusUnavailable, match=f"failed {FAST.attempts} times"):
        writer.latest(SHA)
    assert len(git_host.calls) == FAST.attempts


def test_a_plain_403_and_a_wrong_token_are_final(git_host: GitHost) -> None:
    git_host.fail(Failure(403, method="POST", body='{"message": "Resource not accessible"}'))
    with (
        GitHubWriter(REPO, TOKEN, api_url=git_host.url, retry=FAST) as writer,
        pytest.raises(StatusRejected, match="HTTP 403"),
    ):
        writer.post(SHA, statuses.drift("east", 0))
    with (
        GitHubWriter(REPO, "wrong", api_url=git_host.url, retry=FAST) as writer,
        pytest.raises(StatusRejected, match="HTTP 401"),
    ):
        writer.post(SHA, statuses.drift("east", 0))
    assert [c.code for c in git_host.calls] == [200, 403, 401]


@pytest.mark.parametrize("sha", ["", "HEAD", "0123456", "z" * 40])
def test_never_posts_to_a_bad_sha(writer: GitHubWriter, git_host: GitHost, sha: str) -> None:
    with pytest.raises(InvalidSha):
        writer.post(sha, statuses.drift("east", 0))
    assert git_host.calls == []


def test_the_token_never_leaks(git_host: GitHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f'{{"message": "bad token {TOKEN}"}}'
    errors: list[str] = []
    with GitHubWriter(REPO, TOKEN, api_url=git_host.url, retry=FAST) as writer:
        git_host.fail(Failure(500, times=100, body=echo))
        with pytest.raises(StatusUnavailable) as down:
            writer.post(SHA, statuses.drift("east", 0))
        errors.append(str(down.value))
        git_host._failures.clear()
        git_host.fail(Failure(404, body=echo))
        with pytest.raises(StatusRejected) as refused:
            writer.post(SHA, statuses.drift("east", 0))
        errors.append(str(refused.value))
        git_host.fail(Failure(422, method="POST", body=echo))
        assert not writer.post(SHA, Status("c", StatusState.ERROR, f"agent said {TOKEN}"))
        assert writer.post(SHA, Status("c", StatusState.ERROR, f"agent said {TOKEN}"))
    assert all("bad token" in e for e in errors)
    assert not any(TOKEN in e for e in errors)
    assert "bad token" in caplog.text and TOKEN not in caplog.text
    assert git_host.calls[-1].body is not None
    assert git_host.calls[-1].body["description"] == "agent said [redacted]"


def test_gitea_uses_its_token_scheme_page_size_and_api_prefix() -> None:
    host = GitHost(prefix="/api/v1")
    try:
        for i in range(60):
            host.seed(REPO, SHA, context=f"other/{i}", state="success", description="x")
        with GiteaWriter(REPO, TOKEN, api_url=host.url, retry=FAST) as writer:
            assert writer.post(SHA, statuses.drift("east", 2))
        listed = [c for c in host.calls if c.method == "GET"]
        assert [c.path for c in listed] == [f"/api/v1/repos/{REPO}/commits/{SHA}/statuses"]
        assert listed[0].query == {"limit": "100", "page": "1"}
        assert host.posted == [(SHA, "mesh-gitops/drift/east", "failure")]
    finally:
        host.close()


def test_gitea_needs_an_api_url() -> None:
    with pytest.raises(ValueError, match="apiUrl"):
        GiteaWriter(REPO, TOKEN, api_url="")
