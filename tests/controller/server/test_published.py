"""Computing a cluster's next published version (controller.server.published) and the
last-good rule it applies (gitops.last_good)."""

from __future__ import annotations

from typing import Any

from controller.server.published import Outputs, full_change, partial_change
from gitops.ids import ObjectRef
from gitops.last_good import must_keep
from gitops.objects import ObjectId


def vs(name: str, host: str, parent: str = "reviews") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": name,
            "namespace": "bookinfo",
            "annotations": {"cluster.solo.io/cluster": "cluster1"},
            "labels": {
                "gloo.solo.io/parent_kind": "RouteTable",
                "gloo.solo.io/parent_name": parent,
                "gloo.solo.io/parent_namespace": "bookinfo",
            },
        },
        "spec": {"hosts": [host]},
    }


def published(*objects: dict[str, Any]) -> Outputs:
    change = full_change(Outputs(), objects, lambda _o: False)
    return Outputs().then(1, change.upserts, change.removed)[0]


def never(_obj: Any) -> bool:
    return False


def test_objects_are_published_as_agents_receive_them() -> None:
    out = published(vs("a", "a"))
    (obj,) = out.objects.values()
    assert "annotations" not in obj["metadata"]  # the cluster pin is not delivered
    assert b"cluster.solo.io" not in next(iter(out.encoded.values()))


def test_a_full_change_lists_only_what_differs_and_what_is_gone() -> None:
    current = published(vs("a", "a"), vs("b", "b"))
    change = full_change(current, [vs("a", "a"), vs("b", "b2"), vs("c", "c")], never)
    assert sorted(o.name for o in change.upserts) == ["b", "c"]
    assert change.removed == frozenset()
    gone = full_change(current, [vs("a", "a")], never)
    assert [o.name for o in gone.removed] == ["b"] and not gone.upserts


def test_nothing_published_means_every_object_is_written() -> None:
    current = published(vs("a", "a")).unpublished()
    change = full_change(current, [vs("a", "a")], never)
    assert [o.name for o in change.upserts] == ["a"]


def test_a_partial_change_maps_translation_keys_to_ids() -> None:
    current = published(vs("a", "a"), vs("b", "b"))
    changes = {
        ("VirtualService", "bookinfo", "a"): vs("a", "a2"),
        ("VirtualService", "bookinfo", "b"): None,
        ("VirtualService", "bookinfo", "x"): None,
    }
    change = partial_change(current, changes, never)
    assert [o.name for o in change.upserts] == ["a"]
    assert [o.name for o in change.removed] == ["b"]
    nxt, encoded = current.then(2, change.upserts, change.removed)
    assert (nxt.version, nxt.base, [o.name for o in nxt.objects]) == (2, 1, ["a"])
    assert list(encoded) == [ObjectId.of(vs("a", "a2"))]


def test_objects_of_an_invalid_or_unreadable_commit_are_kept() -> None:
    current = published(vs("a", "a", parent="reviews"), vs("b", "b", parent="ratings"))
    invalid = {ObjectRef("RouteTable", "bookinfo", "ratings")}

    def keep(obj: Any) -> bool:
        return must_keep(obj, complete=True, invalid=invalid)

    change = full_change(current, [], keep)
    assert [o.name for o in change.removed] == ["a"]  # b's RouteTable is INVALID: kept
    nothing = full_change(current, [], lambda o: must_keep(o, complete=False, invalid=set()))
    assert not nothing  # an unreadable commit deletes nothing
    assert not must_keep(vs("a", "a"), complete=True, invalid=set())
