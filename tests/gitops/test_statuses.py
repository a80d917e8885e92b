"""The pure commit-status values: contexts, states, descriptions (gitops.statuses)."""

from __future__ import annotations

import pytest

from gitops import statuses
from gitops.diagnostics import Diagnostic, Source
from gitops.ids import ObjectRef
from gitops.reasons import Reason, State
from gitops.reports import Report
from gitops.statuses import MAX_DESCRIPTION, InvalidSha, Status, StatusState

SHA = "a" * 40


def _report(kind: str, ns: str, name: str, *reasons: Reason) -> Report:
    ref = ObjectRef(kind, ns, name)
    found = tuple(Diagnostic(r, "msg", Source("f.yaml", 3), ref) for r in reasons)
    state = max((r.state for r in reasons), default=State.ACCEPTED)
    return Report(ref, "networking.gloo.solo.io/v2", Source("f.yaml"), None, state, {}, found)


def test_contexts_use_the_prefix() -> None:
    assert statuses.translation_context("acme") == "acme/translation"
    assert statuses.sync_context("east", "acme") == "acme/sync/east"
    assert statuses.drift_context("west") == "mesh-gitops/drift/west"
    assert statuses.preview_context() == "mesh-gitops/preview"


def test_translation_counts_and_names_the_invalid_resource() -> None:
    reports = [_report("VirtualService", "a", f"v{i}") for i in range(12)]
    reports.append(_report("RouteTable", "bookinfo", "reviews", Reason.DestinationNotFound))
    status = statuses.translation(reports, target_url="http://c/reports/" + SHA)
    assert status.state is StatusState.FAILURE
    assert status.context == "mesh-gitops/translation"
    assert status.description == (
        "12 accepted, 1 invalid: RouteTable bookinfo/reviews (DestinationNotFound)"
    )
    assert status.target_url.endswith(SHA)


def test_translation_with_warnings_only_succeeds() -> None:
    reports = [_report("RouteTable", "a", "r", Reason.NothingSelected), _report("X", "a", "b")]
    status = statuses.translation(reports)
    assert status.state is StatusState.SUCCESS
    assert status.description == "1 accepted, 1 warning"


def test_translation_names_a_broken_file_that_has_no_resource() -> None:
    broken = Diagnostic(Reason.YamlSyntaxError, "bad", Source("mesh/broken.yaml", 2))
    status = statuses.translation([_report("X", "a", "b")], [broken])
    assert status.state is StatusState.FAILURE
    assert status.description == "1 accepted, 1 file error: mesh/broken.yaml (YamlSyntaxError)"


def test_long_translation_description_is_cut_cleanly() -> None:
    reports = [
        _report("RouteTable", "bookinfo", f"reviews-{i:03d}", Reason.DestinationNotFound)
        for i in range(40)
    ]
    status = statuses.translation(reports)
    assert len(status.description) <= MAX_DESCRIPTION
    assert status.description.startswith("40 invalid: RouteTable bookinfo/reviews-000")
    assert status.description.endswith("…")
    assert not status.description.endswith(" …")


@pytest.mark.parametrize(
    ("published", "applied", "nacks", "state", "text"),
    [
        (7, 7, [], StatusState.SUCCESS, "12 objects applied, version 7"),
        (7, 6, [], StatusState.PENDING, "waiting for version 7; agent on version 6"),
        (7, None, [], StatusState.PENDING, "waiting for version 7; agent has applied nothing"),
        (None, None, [], StatusState.ERROR, "nothing published for this cluster"),
        (
            7,
            6,
            ["bad  VS\nx", "two"],
            StatusState.FAILURE,
            "rejected version 7: bad VS x (+1 more)",
        ),
    ],
)
def test_sync_status(
    published: int | None, applied: int | None, nacks: list[str], state: StatusState, text: str
) -> None:
    status = statuses.sync("east", published, applied, nacks, objects=12)
    assert (status.context, status.state, status.description) == (
        "mesh-gitops/sync/east",
        state,
        text,
    )


def test_sync_keeps_the_nack_count_visible_when_the_error_is_long() -> None:
    status = statuses.sync("east", 3, 2, ["x" * 500, "y", "z"])
    assert len(status.description) <= MAX_DESCRIPTION
    assert status.description.endswith("… (+2 more)")


def test_drift_status() -> None:
    clean = statuses.drift("west", 0)
    healed = statuses.drift("west", 2, corrected=2)
    drifted = statuses.drift("west", 3, corrected=1, examples=["VirtualService a/b", "Gw c/d"])
    assert (clean.state, clean.description) == (StatusState.SUCCESS, "no drift")
    assert (healed.state, healed.description) == (StatusState.SUCCESS, "no drift; 2 corrected")
    assert drifted.state is StatusState.FAILURE
    assert drifted.description == "2 objects differ from Git: Gw c/d, VirtualService a/b"
    with pytest.raises(ValueError):
        statuses.drift("west", 1, corrected=2)


def test_truncate() -> None:
    assert statuses.truncate("a  b\n c") == "a b c"
    cut = statuses.truncate("word " * 100)
    assert len(cut) <= MAX_DESCRIPTION and cut.endswith("word…")
    assert statuses.truncate("x" * 300) == "x" * (MAX_DESCRIPTION - 1) + "…"


def test_status_refuses_a_long_description_and_round_trips() -> None:
    with pytest.raises(ValueError):
        Status("c", StatusState.SUCCESS, "x" * 141)
    status = statuses.preview("2 clusters changed", prefix="p", target_url="http://r")
    assert Status.from_json(status.to_json()) == status


@pytest.mark.parametrize("bad", ["", "abc123", "A" * 40, "g" * 40, "a" * 41, " " + "a" * 39])
def test_check_sha_refuses_anything_but_a_full_sha(bad: str) -> None:
    with pytest.raises(InvalidSha):
        statuses.check_sha(bad)


def test_check_sha_accepts_sha1_and_sha256() -> None:
    assert statuses.check_sha(SHA) == SHA
    assert statuses.check_sha("b" * 64) == "b" * 64


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/acme/mesh-config.git", "acme/mesh-config"),
        ("git@github.com:acme/mesh-config.git", "acme/mesh-config"),
        ("https://gitlab.example/group/sub/project", "group/sub/project"),
    ],
)
def test_repository_from_url(url: str, repo: str) -> None:
    assert statuses.repository_from_url(url) == repo


def test_repository_from_url_refuses_a_bare_host() -> None:
    with pytest.raises(ValueError):
        statuses.repository_from_url("https://github.com/")
