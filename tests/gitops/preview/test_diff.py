"""Per-cluster object diff: pairing, counts, unified YAML diffs, ordering."""

from __future__ import annotations

from typing import Any

from gitops.preview import Change, diff_clusters
from tests.gitops.preview.objects import PRODUCTPAGE, authz, peer_auth, vs


def test_added_changed_removed_per_cluster() -> None:
    base = {"cluster1": [vs(weights=(90, 10)), peer_auth("PERMISSIVE")], "cluster2": [vs()]}
    head = {"cluster1": [vs(weights=(50, 50)), authz(PRODUCTPAGE)], "cluster2": [vs()]}
    preview = diff_clusters(base, head)
    one, two = preview.clusters
    assert (one.cluster, two.cluster) == ("cluster1", "cluster2")
    # Sorted by (group, kind, namespace, name): networking before security.
    assert [(c.kind, c.change) for c in one.changes] == [
        ("VirtualService", Change.CHANGED),
        ("AuthorizationPolicy", Change.ADDED),
        ("PeerAuthentication", Change.REMOVED),
    ]
    assert one.counts_line() == "+1 ~1 -1"
    assert two.counts_line() == "no change" and not two.changed
    changed = one.changes[0]
    assert changed.diff.startswith("--- base\n+++ head\n@@")
    assert "-      weight: 90" in changed.diff
    assert "+      weight: 50" in changed.diff
    assert preview.changed


def test_version_bump_is_a_change_not_a_replacement() -> None:
    old = vs()
    new: dict[str, Any] = {**vs(), "apiVersion": "networking.istio.io/v1beta1"}
    (cluster,) = diff_clusters({"c": [old]}, {"c": [new]}).clusters
    assert [c.change for c in cluster.changes] == [Change.CHANGED]
    assert cluster.changes[0].group == "networking.istio.io"


def test_cluster_on_one_side_only() -> None:
    preview = diff_clusters({"gone": [vs()]}, {"new": [peer_auth("STRICT")]})
    gone, new = preview.clusters
    assert gone.cluster == "gone" and gone.counts_line() == "+0 ~0 -1"
    assert new.cluster == "new" and new.counts_line() == "+1 ~0 -0"


def test_identical_renderings_are_no_change_whatever_the_order() -> None:
    objs = [vs(), peer_auth("STRICT"), authz(PRODUCTPAGE)]
    preview = diff_clusters({"c": objs}, {"c": list(reversed(objs))})
    assert not preview.changed
    assert preview.clusters[0].changes == ()


def test_deterministic() -> None:
    base = {"b": [vs(weights=(90, 10))], "a": [peer_auth("PERMISSIVE")]}
    head = {"a": [peer_auth("STRICT")], "b": [vs(weights=(10, 90)), authz(PRODUCTPAGE)]}
    assert diff_clusters(base, head) == diff_clusters(dict(reversed(base.items())), head)
