"""Per-cluster output collection: metadata, provenance, conflicts, order, size guard.

Every translator hands its Istio objects to a `ClusterOutputs` for the cluster
being rendered. This module owns the rules that hold for all of them:

- metadata: the standard Gloo labels of gloo-semantics.md 3.1 (parent group,
  version, kind, name, namespace, cluster; output cluster, namespace, workspace;
  owner and reconciler), the `cluster.solo.io/cluster` annotation, and our
  provenance annotation `mesh-gitops.io/source` (the repository files that
  produced the object). The commit is *not* stamped on objects: it would rewrite
  every object on every commit; commits are recorded on reports and snapshots.
- claims: producers render into the store under their own key, so any one of them
  can be rendered again alone (incremental translation);
- conflicts: two producers claiming the same kind/namespace/name — the earliest
  parent (creation time, then namespace/name) keeps it, the other is reported
  `OutputConflict` and withdrawn from the cluster (spec 3.8);
- the 1 MiB guard: an object whose serialized size exceeds the etcd-safe limit is
  not emitted and its parent is reported `ObjectTooLarge`;
- order: make-before-break kind order, then namespace, then name.

Shared sub-dicts (labels, annotations) are reused between outputs on purpose:
outputs are never mutated after `add`, and the YAML emitter renders a shared
dict once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.diagnostics import Diagnostic, Source
from gitops.ids import ObjectRef
from gitops.reasons import Reason

#: Largest serialized object we emit: etcd's default request limit is 1.5 MiB; keep margin.
MAX_OBJECT_BYTES = 1024 * 1024
SOURCE_ANNOTATION = "mesh-gitops.io/source"
CLUSTER_ANNOTATION = "cluster.solo.io/cluster"

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"

#: Apply order (make-before-break): what others refer to comes first.
KIND_ORDER = {
    "ServiceEntry": 0,
    "WorkloadEntry": 1,
    "DestinationRule": 2,
    "PeerAuthentication": 3,
    "AuthorizationPolicy": 4,
    "Sidecar": 5,
    "Gateway": 6,
    "EnvoyFilter": 7,
    "VirtualService": 8,
}
#: Kinds whose size can grow with user config (routes, subsets, endpoints, hosts).
_GROWING = frozenset({"VirtualService", "DestinationRule", "ServiceEntry", "Gateway", "Sidecar"})
#: Objects with fewer top-level list items than this are not serialized to be measured:
#: their items are bounded by Kubernetes' own limits. VirtualService routes, which carry
#: free text (direct-response bodies, header values), are measured where they are built.
_MEASURE_ITEMS = 256


@dataclass(frozen=True, slots=True)
class Parent:
    """The object an output belongs to (a Gloo resource or a discovered Kubernetes object)."""

    group: str
    version: str
    kind: str
    name: str
    namespace: str
    cluster: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)


OutKey = tuple[str, str, str]  # kind, namespace, name
ProducerKey = tuple[str, ...]
#: The incremental-translation dep on discovered objects (`gitops.translate.Dep`): every
#: producer reads Services, gateways or accounts of other clusters too, so one dep stands
#: for "anything discovered in any cluster".
INPUTS: tuple[str, ...] = ("inputs",)


@dataclass(slots=True)
class _Entry:
    obj: dict[str, Any]
    owner: ObjectRef
    age: tuple[Any, ...]
    source: Source | None
    producer: ProducerKey


@dataclass(frozen=True, slots=True)
class Need:
    """A client DestinationRule a producer needs: subsets of a Service host, per namespace."""

    service: tuple[str, str]  # namespace, name of the Service (the DestinationRule's parent)
    namespace: str  # where the VirtualService using the subsets lives
    host: str
    subset: str
    labels: Mapping[str, str]
    source: str


def sort_key(key: OutKey) -> tuple[int, str, str]:
    return (KIND_ORDER.get(key[0], 99), key[1], key[2])


@dataclass
class ClusterOutputs:
    """The Istio objects of one workload cluster, claimed by producers.

    A producer (a RouteTable, a VirtualDestination, ...) renders into this store between
    `begin(producer)` calls; everything it adds, needs or reports is recorded under its
    key, so it can be rendered again alone (incremental translation) without touching
    what other producers claimed. `resolve` then decides each object, independent of the
    order producers ran in:

    - the oldest claimant of a kind/namespace/name wins it (creation time, then
      namespace/name, spec 3.8); every other claimant loses (`OutputConflict`);
    - a producer that loses anywhere in the cluster is withdrawn there entirely, since
      half of a resource's outputs (a DestinationRule without its ServiceEntry) is worse
      than none; an object whose winner is withdrawn is not emitted either;
    - a winning object over 1 MiB serialized is not emitted (`ObjectTooLarge`).
    """

    cluster: str
    claims: dict[OutKey, dict[ProducerKey, _Entry]] = field(default_factory=dict)
    owned: dict[ProducerKey, list[OutKey]] = field(default_factory=dict)
    reported: dict[ProducerKey, list[Diagnostic]] = field(default_factory=dict)
    needs: dict[ProducerKey, list[Need]] = field(default_factory=dict)
    #: Needs by Service (namespace, name), then producer: what client DestinationRules read.
    needs_by_service: dict[tuple[str, str], dict[ProducerKey, list[Need]]] = field(
        default_factory=dict
    )
    #: After `resolve`: the object emitted for each key, and why others were not.
    final: dict[OutKey, dict[str, Any]] = field(default_factory=dict)
    #: Producers that lose a contest somewhere, and where (never holds an empty set).
    lost_at: dict[ProducerKey, set[OutKey]] = field(default_factory=dict)
    resolution_notes: dict[OutKey, list[Diagnostic]] = field(default_factory=dict)
    size_notes: dict[OutKey, Diagnostic] = field(default_factory=dict)
    producer: ProducerKey = ("",)
    _labels: dict[tuple[Any, ...], dict[str, str]] = field(default_factory=dict)
    _annotations: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict)

    # -- rendering -------------------------------------------------------------------------

    def begin(self, producer: ProducerKey) -> set[OutKey]:
        """Start (re)rendering a producer: drop what it claimed before; returns those keys."""
        self.producer = producer
        old = set(self.owned.pop(producer, ()))
        for key in old:
            contenders = self.claims.get(key)
            if contenders is not None:
                contenders.pop(producer, None)
                if not contenders:
                    del self.claims[key]
        self.reported.pop(producer, None)
        # Where it lost before is decided again by the caller (`resolve(old | new keys)`).
        self.lost_at.pop(producer, None)
        for need in self.needs.pop(producer, ()):
            by_producer = self.needs_by_service.get(need.service)
            if by_producer is not None:
                by_producer.pop(producer, None)
                if not by_producer:
                    del self.needs_by_service[need.service]
        return old

    def report(self, diagnostic: Diagnostic) -> None:
        self.reported.setdefault(self.producer, []).append(diagnostic)

    def need(self, need: Need) -> None:
        self.needs.setdefault(self.producer, []).append(need)
        self.needs_by_service.setdefault(need.service, {}).setdefault(self.producer, []).append(
            need
        )

    def needs_for(self, service: tuple[str, str]) -> list[Need]:
        return [
            n for _, found in sorted(self.needs_by_service.get(service, {}).items()) for n in found
        ]

    def metadata(
        self,
        name: str,
        namespace: str,
        workspace: str | None,
        parent: Parent,
        sources: Iterable[str],
        extra_labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """`metadata` for an output, with the standard labels and provenance."""
        key = (namespace, workspace, parent)
        labels = self._labels.get(key)
        if labels is None:
            labels = {
                "agent.gloo.solo.io": "gloo-mesh",
                "app.kubernetes.io/managed-by": "mesh-gitops",
                "cluster.multicluster.solo.io": "",
                "context.mesh.gloo.solo.io/cluster": self.cluster,
                "context.mesh.gloo.solo.io/namespace": namespace,
                "gloo.solo.io/parent_cluster": parent.cluster,
                "gloo.solo.io/parent_group": parent.group,
                "gloo.solo.io/parent_kind": parent.kind,
                "gloo.solo.io/parent_name": parent.name,
                "gloo.solo.io/parent_namespace": parent.namespace,
                "gloo.solo.io/parent_version": parent.version,
                "owner.gloo.solo.io/name": "gloo-mesh",
                "reconciler.mesh.gloo.solo.io/name": "translator",
                "relay.solo.io/cluster": self.cluster,
            }
            if workspace:
                labels["context.mesh.gloo.solo.io/workspace"] = workspace
            self._labels[key] = labels
        if extra_labels:
            labels = {**extra_labels, **labels}
        files = tuple(sorted(set(sources)))
        notes = self._annotations.get(files)
        if notes is None:
            notes = {CLUSTER_ANNOTATION: self.cluster}
            if files:
                notes[SOURCE_ANNOTATION] = ",".join(files)
            self._annotations[files] = notes
        if annotations:
            notes = {**annotations, **notes}
        return {"annotations": notes, "labels": labels, "name": name, "namespace": namespace}

    def add(
        self,
        obj: dict[str, Any],
        owner: ObjectRef,
        age: tuple[Any, ...],
        source: Source | None = None,
    ) -> None:
        """Claim an object for the current producer (decided by `resolve`)."""
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        producer = self.producer
        self.claims.setdefault(key, {})[producer] = _Entry(obj, owner, age, source, producer)
        self.owned.setdefault(producer, []).append(key)

    def add_all(
        self,
        objs: list[dict[str, Any]],
        owner: ObjectRef,
        age: tuple[Any, ...],
        source: Source | None = None,
    ) -> None:
        """`add` for many objects of one owner (the WorkloadEntries of a VirtualDestination)."""
        producer = self.producer
        claims = self.claims
        keys = self.owned.setdefault(producer, [])
        for obj in objs:
            meta = obj["metadata"]
            key = (obj["kind"], meta["namespace"], meta["name"])
            entry = _Entry(obj, owner, age, source, producer)
            contenders = claims.get(key)
            if contenders is None:
                claims[key] = {producer: entry}
            else:
                contenders[producer] = entry
            keys.append(key)

    # -- deciding ----------------------------------------------------------------------------

    def resolve(self, keys: set[OutKey] | None = None) -> dict[OutKey, dict[str, Any] | None]:
        """Decide the objects at `keys` (all when None); returns what changed in `final`.

        Losing status spreads: a producer that newly loses (or stops losing) somewhere has
        all its keys decided again.
        """
        if keys is None and not self.final and not self.lost_at:
            return self._resolve_fresh()
        todo = set(self.claims) | set(self.final) if keys is None else set(keys)
        withdrawn_before = set(self.lost_at)
        for key in todo:
            self._contest(key)
        # Contests only change who is withdrawn; a producer whose status flipped has its
        # other objects decided again (their contests are unchanged).
        flipped = withdrawn_before ^ set(self.lost_at)
        todo |= {k for p in flipped for k in self.owned.get(p, ())}
        changed: dict[OutKey, dict[str, Any] | None] = {}
        for key in todo:
            found = self._decide(key)
            if found is not _UNCHANGED:
                changed[key] = found
        return changed

    def _resolve_fresh(self) -> dict[OutKey, dict[str, Any] | None]:
        """`resolve()` of a store nothing was decided in yet (a full render): the same
        decisions, with the undo bookkeeping skipped for the uncontested objects that
        make up nearly all of a cluster."""
        claims = self.claims
        for key, contenders in claims.items():
            if len(contenders) > 1:
                self._contest(key)
        final, lost_at = self.final, self.lost_at
        for key, contenders in claims.items():
            if len(contenders) == 1 and key[0] not in _GROWING:
                for entry in contenders.values():
                    if entry.producer not in lost_at:
                        final[key] = entry.obj
                continue
            self._decide(key)
        return dict(final)

    def _contest(self, key: OutKey) -> None:
        contenders = self.claims.get(key, {})
        if len(contenders) < 2 and not self.lost_at and not self.resolution_notes:
            return  # the common case of a first render: nobody to beat, nothing to undo
        for entry in contenders.values():
            lost = self.lost_at.get(entry.producer)
            if lost is not None:
                lost.discard(key)
                if not lost:
                    del self.lost_at[entry.producer]
        self.resolution_notes.pop(key, None)
        if len(contenders) < 2:
            return
        ranked = sorted(contenders.values(), key=lambda e: (e.age, e.producer))
        winner = ranked[0]
        notes = []
        for loser in ranked[1:]:
            self.lost_at.setdefault(loser.producer, set()).add(key)
            notes.append(
                Diagnostic(
                    Reason.OutputConflict,
                    f"{key[0]} {key[1]}/{key[2]} is also produced by {winner.owner}, which is "
                    "older; this resource's outputs in this cluster are not applied",
                    loser.source,
                    loser.owner,
                    cluster=self.cluster,
                )
            )
        self.resolution_notes[key] = notes

    def _decide(self, key: OutKey) -> Any:
        contenders = self.claims.get(key)
        obj: dict[str, Any] | None = None
        size_note: Diagnostic | None = None
        if contenders:
            if len(contenders) == 1:
                winner = next(iter(contenders.values()))
            else:
                winner = min(contenders.values(), key=lambda e: (e.age, e.producer))
            if not self.lost_at.get(winner.producer):
                obj = winner.obj
                if key[0] in _GROWING and _items(obj) >= _MEASURE_ITEMS:
                    size = len(json.dumps(obj, separators=(",", ":")).encode())
                    if size > MAX_OBJECT_BYTES:
                        obj = None
                        size_note = Diagnostic(
                            Reason.ObjectTooLarge,
                            f"{key[0]} {key[1]}/{key[2]} would be {size:,} bytes "
                            f"(limit {MAX_OBJECT_BYTES:,}); not emitted",
                            winner.source,
                            winner.owner,
                            cluster=self.cluster,
                        )
        if size_note is None:
            self.size_notes.pop(key, None)
        else:
            self.size_notes[key] = size_note
        previous = self.final.get(key)
        if obj is None:
            if previous is None:
                return _UNCHANGED
            del self.final[key]
            return None
        if previous is obj or previous == obj:
            self.final[key] = obj
            return _UNCHANGED
        self.final[key] = obj
        return obj

    def objects(self) -> list[dict[str, Any]]:
        """The cluster's objects in apply order (after `resolve`)."""
        return [self.final[k] for k in sorted(self.final, key=sort_key)]

    def diagnostics(self) -> list[Diagnostic]:
        """Everything reported in this cluster, by producers and by `resolve`."""
        found = [d for reported in self.reported.values() for d in reported]
        found.extend(d for notes in self.resolution_notes.values() for d in notes)
        found.extend(self.size_notes.values())
        return found


_UNCHANGED: Any = object()


def _items(obj: dict[str, Any]) -> int:
    return sum(len(v) for v in obj.get("spec", {}).values() if isinstance(v, (list, dict)))
