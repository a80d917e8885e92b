"""Mesh-semantic bullets from hand-built before/after pairs of Istio objects."""

from __future__ import annotations

from gitops.ids import ObjectRef
from gitops.preview import diff_clusters, summarize
from gitops.reasons import State
from gitops.reports import Report
from tests.gitops.preview.objects import PRODUCTPAGE, REVIEWS, authz, peer_auth, vs


def test_weight_shift_names_each_destination() -> None:
    bullets = summarize([vs(weights=(90, 10))], [vs(weights=(50, 50))])
    assert len(bullets) == 1
    assert "weight shift" in bullets[0]
    assert "reviews.bookinfo.svc.cluster.local/v1 90 -> 50" in bullets[0]
    assert "reviews.bookinfo.svc.cluster.local/v2 10 -> 50" in bullets[0]


def test_unchanged_objects_mean_nothing() -> None:
    assert (
        summarize(
            [vs(), peer_auth("STRICT"), authz(PRODUCTPAGE)],
            [vs(), peer_auth("STRICT"), authz(PRODUCTPAGE)],
        )
        == ()
    )


def test_removed_principal_lost_access() -> None:
    bullets = summarize([authz(PRODUCTPAGE, REVIEWS)], [authz(PRODUCTPAGE)])
    assert bullets == (f"{REVIEWS} lost access to bookinfo/app=ratings",)


def test_added_principal_gained_access() -> None:
    bullets = summarize([], [authz(REVIEWS)])
    assert bullets == (f"{REVIEWS} gained access to bookinfo/app=ratings",)


def test_dry_run_policies_grant_nothing() -> None:
    assert summarize([], [authz(REVIEWS, dry_run=True)]) == ()


def test_peer_authentication_permissive_to_strict() -> None:
    bullets = summarize([peer_auth("PERMISSIVE")], [peer_auth("STRICT")])
    assert bullets == ("mTLS mode PeerAuthentication bookinfo/default: PERMISSIVE -> STRICT",)


def test_fault_injection_on_and_off() -> None:
    fault = {"abort": {"httpStatus": 503, "percentage": {"value": 5}}}
    on = summarize([vs()], [vs(fault=fault)])
    assert len(on) == 1 and "fault injection on" in on[0] and "503" in on[0]
    off = summarize([vs(fault=fault)], [vs()])
    assert len(off) == 1 and off[0].endswith("fault injection off")


def test_timeout_change_and_hosts() -> None:
    bullets = summarize([vs(timeout="10s")], [vs(timeout="5s")])
    assert bullets == ("route main (bookinfo/reviews): timeout 10s -> 5s",)
    new_host = "ratings.bookinfo.svc.cluster.local"
    added = summarize([], [vs(name="ratings", hosts=(new_host,))])
    assert f"host added: {new_host}" in added
    assert any("route main (bookinfo/ratings) added" in b for b in added)


def test_newly_invalid_comes_from_the_reports() -> None:
    ref = ObjectRef("RouteTable", "bookinfo", "reviews")
    ok = Report(ref, "networking.gloo.solo.io/v2", None, None, State.ACCEPTED, {}, ())
    bad = Report(ref, "networking.gloo.solo.io/v2", None, None, State.INVALID, {}, ())
    preview = diff_clusters({}, {}, [ok], [bad])
    assert preview.invalid == ("RouteTable bookinfo/reviews became INVALID",)
    assert preview.changed
    # Already invalid on the base: not news.
    assert diff_clusters({}, {}, [bad], [bad]).invalid == ()
