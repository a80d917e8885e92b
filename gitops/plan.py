"""Change sets: what to upsert and delete in one cluster, in a safe order.

Where it sits: between translation and the agents (DESIGN.md section 1, `plan(rendered,
last_published) -> ChangeSet`). The management server sends deltas it computes from the
translation's change list (`controller/server/published.py`); an agent that receives a full
desired set (a fresh start, a resync) calls `full` against its recorded inventory. Every
cluster backend (`controller.backends`) applies a change set through `apply_order`, and its
drift watch asks `drifted` whether a live object still says what we applied.

Pure: no I/O, no clock. Orders are deterministic so that a retried publish sends the same
bytes and backend request logs are reproducible.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gitops.objects import ObjectId

__all__ = [
    "APPLY_KINDS",
    "DELIVERABLE_GROUPS",
    "ChangeSet",
    "apply_order",
    "drifted",
    "full",
    "undeliverable",
]

#: Creates and updates go in this order, deletes in the reverse. Istio's config propagation is
#: eventually consistent, so a VirtualService that names a DestinationRule subset or a
#: ServiceEntry host must reach the proxies after them, or requests 503 in between
#: (reliability-anchors.md section 1.4, "make-before-break"). Kinds not listed (none today)
#: go after EnvoyFilter and before VirtualService: they may be referenced, never reference.
APPLY_KINDS: Final[tuple[str, ...]] = (
    "DestinationRule",
    "ServiceEntry",
    "WorkloadEntry",
    "PeerAuthentication",
    "AuthorizationPolicy",
    "Sidecar",
    "Gateway",
    "EnvoyFilter",
    "VirtualService",
)
_RANK: Final = {kind: 2 * i for i, kind in enumerate(APPLY_KINDS)}
_UNKNOWN_RANK: Final = _RANK["VirtualService"] - 1

#: Top-level keys the API server writes or that identify rather than describe an object.
_NOT_CONTENT: Final = frozenset({"apiVersion", "kind", "metadata", "status"})


@dataclass(frozen=True)
class ChangeSet:
    """Objects to create or update, and ids to delete, in one cluster.

    The order of the tuples carries no meaning for safety: backends apply through
    `apply_order`.
    """

    upserts: tuple[dict[str, Any], ...] = ()
    deletes: tuple[ObjectId, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


def full(
    desired: Iterable[Mapping[str, Any]],
    inventory: Collection[ObjectId],
    *,
    prune: bool = True,
) -> ChangeSet:
    """Upsert every desired object; delete what the inventory holds and desired does not.

    `inventory` is what the backend recorded as applied, never a live listing: objects we
    did not create are not ours to delete even if they carry our labels (kustomize-controller
    #192, #410). With `prune=False` nothing is deleted. Deletes are sorted by id.
    """
    upserts = tuple(dict(obj) for obj in desired)
    if not prune:
        return ChangeSet(upserts, ())
    wanted = {ObjectId.of(obj) for obj in upserts}
    return ChangeSet(upserts, tuple(sorted(set(inventory) - wanted)))


def _rank(kind: str) -> int:
    return _RANK.get(kind, _UNKNOWN_RANK)


def apply_order(changes: ChangeSet) -> tuple[list[dict[str, Any]], list[ObjectId]]:
    """Upserts in make-before-break order, and deletes in the reverse kind order.

    Within a kind the given order is kept (the sorts are stable), so a caller that sorted
    by id gets ids in order.
    """
    upserts = sorted(changes.upserts, key=lambda obj: _rank(str(obj.get("kind", ""))))
    deletes = sorted(changes.deletes, key=lambda oid: -_rank(oid.kind))
    return upserts, deletes


def _string_map(meta: Any, key: str) -> Mapping[str, Any]:
    value = meta.get(key) if isinstance(meta, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def drifted(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether a live object no longer says what we applied.

    Compared: every top-level content field (`spec`, and `data`-like fields of other kinds)
    on either side, and each label and annotation we set. Ignored: what the server writes
    (`status`, resourceVersion, uid, managedFields, timestamps, generation) and labels or
    annotations other writers added beside ours. A field someone added to our `spec` is drift:
    we own the whole spec.
    """
    keys = (set(desired) | set(live)) - _NOT_CONTENT
    if any(desired.get(k) != live.get(k) for k in keys):
        return True
    desired_meta, live_meta = desired.get("metadata"), live.get("metadata")
    for key in ("labels", "annotations"):
        ours, theirs = _string_map(desired_meta, key), _string_map(live_meta, key)
        if any(theirs.get(k) != v for k, v in ours.items()):
            return True
    return False


#: What the relay may deliver to an agent: the Istio kinds the translator emits, and nothing
#: else. An agent applies nothing outside this list, so a compromised or confused server
#: cannot make it write Secrets, RBAC or workloads with the agent's credentials.
DELIVERABLE_GROUPS: Final = frozenset({"networking.istio.io", "security.istio.io"})


def undeliverable(oid: ObjectId) -> str | None:
    """Why an output may not be applied by an agent (None: it may)."""
    if oid.group not in DELIVERABLE_GROUPS or oid.kind not in _RANK:
        return f"{oid.kind} ({oid.api_version}) is not an Istio kind the relay delivers"
    return None
