"""gitops.plan: full change sets, make-before-break order, drift comparison."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gitops.objects import OWNER_LABELS, ObjectId
from gitops.plan import APPLY_KINDS, ChangeSet, apply_order, drifted, full

_GROUP = {"PeerAuthentication": "security.istio.io", "AuthorizationPolicy": "security.istio.io"}


def obj(kind: str, name: str, spec: Any = None, namespace: str = "ns") -> dict[str, Any]:
    group = _GROUP.get(kind, "networking.istio.io")
    return {
        "apiVersion": f"{group}/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(OWNER_LABELS)},
        "spec": {"v": 1} if spec is None else spec,
    }


kinds = st.sampled_from([*APPLY_KINDS, "Telemetry"])
names = st.text("abc", min_size=1, max_size=3)
objects = st.builds(obj, kinds, names, st.integers(0, 3).map(lambda v: {"v": v}))
id_maps = st.dictionaries(
    st.tuples(kinds, names),
    st.integers(0, 3),
    max_size=12,
).map(lambda m: {ObjectId.of(o): o for o in (obj(k, n, {"v": v}) for (k, n), v in m.items())})


def _position(kinds_in_order: list[str], kind: str) -> int:
    return kinds_in_order.index(kind)


@given(st.lists(objects, max_size=20), st.lists(objects, max_size=20))
def test_upserts_make_before_break_and_deletes_break_before_unmake(
    ups: list[dict[str, Any]], dels: list[dict[str, Any]]
) -> None:
    changes = ChangeSet(tuple(ups), tuple(ObjectId.of(o) for o in dels))
    upserts, deletes = apply_order(changes)
    assert sorted(map(repr, upserts)) == sorted(map(repr, ups))
    assert sorted(deletes) == sorted(changes.deletes)
    up_kinds = [o["kind"] for o in upserts]
    del_kinds = [d.kind for d in deletes]
    # Every VirtualService comes after everything it may reference, and is deleted first.
    if "VirtualService" in up_kinds:
        first_vs = up_kinds.index("VirtualService")
        assert all(k == "VirtualService" for k in up_kinds[first_vs:])
    if "VirtualService" in del_kinds:
        last_vs = len(del_kinds) - 1 - del_kinds[::-1].index("VirtualService")
        assert all(k == "VirtualService" for k in del_kinds[: last_vs + 1])
    # DestinationRules first on create, last on delete.
    if "DestinationRule" in up_kinds:
        last_dr = len(up_kinds) - 1 - up_kinds[::-1].index("DestinationRule")
        assert all(k == "DestinationRule" for k in up_kinds[: last_dr + 1])
    if "DestinationRule" in del_kinds:
        assert all(k == "DestinationRule" for k in del_kinds[del_kinds.index("DestinationRule") :])
    # Stable within a kind.
    for kind in set(up_kinds):
        assert [o for o in upserts if o["kind"] == kind] == [o for o in ups if o["kind"] == kind]


def test_apply_order_follows_the_documented_kind_order() -> None:
    ups = [obj(k, "x") for k in reversed(APPLY_KINDS)]
    upserts, deletes = apply_order(ChangeSet(tuple(ups), tuple(ObjectId.of(o) for o in ups)))
    assert [o["kind"] for o in upserts] == list(APPLY_KINDS)
    assert [d.kind for d in deletes] == list(reversed(APPLY_KINDS))


@given(id_maps, st.sets(st.builds(ObjectId.of, objects), max_size=10), st.booleans())
def test_full_upserts_everything_and_deletes_only_inventory_minus_desired(
    desired: dict[ObjectId, dict[str, Any]], inventory: set[ObjectId], prune: bool
) -> None:
    changes = full(desired.values(), inventory, prune=prune)
    assert list(changes.upserts) == list(desired.values())
    expected = sorted(inventory - set(desired)) if prune else []
    assert list(changes.deletes) == expected


def test_full_never_deletes_what_the_inventory_does_not_hold() -> None:
    changes = full([], set())
    assert changes.deletes == () and not changes


def test_drifted_ignores_what_the_server_writes() -> None:
    desired = obj("VirtualService", "reviews", {"hosts": ["reviews"]})
    live = obj("VirtualService", "reviews", {"hosts": ["reviews"]})
    live["metadata"].update(resourceVersion="42", uid="u", managedFields=[{"manager": "x"}])
    live["metadata"]["labels"]["added-by-someone"] = "yes"
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied": "{}"}
    live["status"] = {"validationMessages": []}
    assert not drifted(desired, live)


def test_drifted_sees_spec_and_our_label_changes() -> None:
    desired = obj("VirtualService", "reviews", {"hosts": ["reviews"]})
    edited = obj("VirtualService", "reviews", {"hosts": ["reviews", "evil"]})
    assert drifted(desired, edited)
    relabelled = obj("VirtualService", "reviews", {"hosts": ["reviews"]})
    del relabelled["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert drifted(desired, relabelled)
    desired["metadata"]["annotations"] = {"mesh-gitops.io/source": "a.yaml"}
    assert drifted(desired, obj("VirtualService", "reviews", {"hosts": ["reviews"]}))


def test_only_istio_output_kinds_are_deliverable_to_an_agent() -> None:
    from gitops.plan import undeliverable

    vs = ObjectId("networking.istio.io", "v1", "VirtualService", "ns", "a")
    authz = ObjectId("security.istio.io", "v1", "AuthorizationPolicy", "ns", "a")
    assert undeliverable(vs) is None and undeliverable(authz) is None
    secret = ObjectId("", "v1", "Secret", "ns", "token")
    role = ObjectId("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "admin")
    fake = ObjectId("evil.example.com", "v1", "VirtualService", "ns", "a")
    for oid in (secret, role, fake):
        reason = undeliverable(oid)
        assert reason is not None and oid.kind in reason
