"""What the server has published to one cluster, and the next version from a translation.

`controller/server/fleet.py` keeps one `Outputs` per cluster and replaces it on every
publish; the Pull handlers (`controller/server/streams.py`) read it without a lock, which
is why it is immutable. Each object is kept as the agent receives it
(`gitops.objects.for_delivery`) and as its wire JSON, encoded once at publish time: the
same bytes go to Redis and to the agent, so a full resync of a hundred clusters never
re-serialises anything.

A version knows the version it was computed from (`base`) and what changed since
(`changed`, `removed`), so an agent that applied `base` gets only those.

Two ways to compute the next version:

- `full_change`: from a cluster's whole desired set (first publish, a full re-translation,
  a commit that is broken or has INVALID resources, a cluster that just pushed a snapshot);
- `partial_change`: from the objects an incremental translation says changed
  (`gitops.translate.incremental.Delta.changes`), so a one-policy edit costs its few objects,
  not the cluster's 1,200.

Either way an object the translation stopped rendering is removed only if `keep` says the
commit could speak for it (`gitops.last_good.must_keep`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.relay.wire import encode_json
from gitops.objects import ObjectId, for_delivery

OutKey = tuple[str, str, str]  # kind, namespace, name (gitops.translate.outputs.OutKey)
Keep = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Outputs:
    """One published version of a cluster's outputs (version 0: nothing published)."""

    version: int = 0
    objects: Mapping[ObjectId, Mapping[str, Any]] = field(default_factory=dict)
    encoded: Mapping[ObjectId, bytes] = field(default_factory=dict)
    #: The version this one was computed from (0: none; agents then need the full set).
    base: int = 0
    changed: tuple[ObjectId, ...] = ()
    removed: tuple[ObjectId, ...] = ()

    @classmethod
    def loaded(cls, version: int, objects: Iterable[dict[str, Any]]) -> Outputs:
        """Outputs read back from the store (already in delivery form)."""
        by_id = {ObjectId.of(o): o for o in objects}
        return cls(version, by_id, {oid: encode_json(o) for oid, o in by_id.items()})

    def unpublished(self) -> Outputs:
        """The same objects, no longer published (the cache that held them was lost): the
        next publish writes them all again, and agents get the full set."""
        return Outputs(0, self.objects, self.encoded)

    def then(
        self,
        version: int,
        upserts: Mapping[ObjectId, Mapping[str, Any]],
        removed: Iterable[ObjectId],
    ) -> tuple[Outputs, dict[ObjectId, bytes]]:
        """The next version, and the wire JSON of what it adds or changes."""
        gone = tuple(sorted(set(removed)))
        # An object carried over unchanged (the same dict: a resync, a cache rebuild) keeps
        # its bytes; only new or changed objects are serialised.
        encoded = {
            oid: self.encoded[oid] if self.objects.get(oid) is obj else encode_json(obj)
            for oid, obj in sorted(upserts.items())
        }
        objects = {**self.objects, **upserts}
        all_encoded = {**self.encoded, **encoded}
        for oid in gone:
            objects.pop(oid, None)
            all_encoded.pop(oid, None)
        nxt = Outputs(version, objects, all_encoded, self.version, tuple(sorted(upserts)), gone)
        return nxt, encoded


@dataclass(frozen=True)
class Change:
    """What the next version changes: objects to add or update, ids to remove."""

    upserts: dict[ObjectId, Mapping[str, Any]]
    removed: frozenset[ObjectId]

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removed)


def full_change(current: Outputs, desired: Iterable[Mapping[str, Any]], keep: Keep) -> Change:
    """The change from `current` to the whole `desired` set (plus what `keep` keeps). With
    nothing published yet every object is an upsert: the store gets the whole set."""
    wanted = {}
    for obj in desired:
        delivered = for_delivery(obj)
        wanted[ObjectId.of(delivered)] = delivered
    unpublished = current.version == 0
    upserts = {
        oid: obj for oid, obj in wanted.items() if unpublished or current.objects.get(oid) != obj
    }
    removed = frozenset(
        oid for oid, obj in current.objects.items() if oid not in wanted and not keep(obj)
    )
    if unpublished:
        upserts.update((oid, obj) for oid, obj in current.objects.items() if oid not in wanted)
        upserts = {oid: obj for oid, obj in upserts.items() if oid not in removed}
    return Change(upserts, removed)


def partial_change(
    current: Outputs, changes: Mapping[OutKey, Mapping[str, Any] | None], keep: Keep
) -> Change:
    """The change from `current` given only the objects a translation update changed
    (None: no longer rendered)."""
    upserts: dict[ObjectId, Mapping[str, Any]] = {}
    removed: set[ObjectId] = set()
    gone = {key for key, obj in changes.items() if obj is None}
    if gone:
        by_key = {(oid.kind, oid.namespace, oid.name): oid for oid in current.objects}
        for key in gone:
            oid = by_key.get(key)
            if oid is not None and not keep(current.objects[oid]):
                removed.add(oid)
    for obj in changes.values():
        if obj is None:
            continue
        delivered = for_delivery(obj)
        oid = ObjectId.of(delivered)
        removed.discard(oid)
        if current.objects.get(oid) != delivered:
            upserts[oid] = delivered
    return Change(upserts, frozenset(removed))
