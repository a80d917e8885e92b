"""Per-cluster output collection: metadata, provenance, conflicts, order, size guard.

Every translator hands its Istio objects to a `ClusterOutputs` for the cluster
being rendered. This module owns the rules that hold for all of them:

- metadata: the standard Gloo labels of gloo-semantics.md 3.1 (parent group,
  version, kind, name, namespace, cluster; output cluster, namespace, workspace;
  owner and reconciler), the `cluster.solo.io/cluster` annotation, and our
  provenance annotation `mesh-gitops.io/source` (the repository files that
  produced the object). The commit is *not* stamped on objects: it would rewrite
  every object on every commit; commits are recorded on reports and snapshots.
- conflicts: two parents producing the same kind/namespace/name — the earliest
  parent (creation time, then namespace/name) keeps it, the other is reported
  `OutputConflict` (spec 3.8);
- the 1 MiB guard: an object whose serialized size exceeds the etcd-safe limit is
  not emitted and its parent is reported `ObjectTooLarge`;
- order: make-before-break kind order, then namespace, then name.

Shared sub-dicts (labels, annotations) are reused between outputs on purpose:
outputs are never mutated after `add`, and the YAML emitter renders a shared
dict once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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


@dataclass(slots=True)
class _Entry:
    obj: dict[str, Any]
    owner: ObjectRef
    age: tuple[Any, ...]
    source: Source | None = None


@dataclass
class ClusterOutputs:
    """The Istio objects of one workload cluster, as they are being built."""

    cluster: str
    entries: dict[tuple[str, str, str], _Entry] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Owners that lost a conflict here: all their outputs in this cluster are withdrawn,
    #: since half of a resource's outputs (a DestinationRule without its ServiceEntry) is
    #: worse than none.
    losers: set[ObjectRef] = field(default_factory=set)
    _labels: dict[tuple[Any, ...], dict[str, str]] = field(default_factory=dict)
    _annotations: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict)

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
    ) -> bool:
        """Add an object; False (and an `OutputConflict`) if an older owner has it."""
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        new = _Entry(obj, owner, age, source)
        held = self.entries.get(key)
        if held is not None and held.owner != owner:
            winner, loser = (new, held) if age < held.age else (held, new)
            self.entries[key] = winner
            self.losers.add(loser.owner)
            self.diagnostics.append(
                Diagnostic(
                    Reason.OutputConflict,
                    f"{key[0]} {key[1]}/{key[2]} is also produced by {winner.owner}, which is "
                    "older; this resource's outputs in this cluster are not applied",
                    loser.source,
                    loser.owner,
                    cluster=self.cluster,
                )
            )
            return winner is new
        self.entries[key] = new
        return True

    def add_all(
        self,
        objs: list[dict[str, Any]],
        owner: ObjectRef,
        age: tuple[Any, ...],
        source: Source | None = None,
    ) -> None:
        """`add` for many objects of one owner (the WorkloadEntries of a VirtualDestination)."""
        entries = self.entries
        for obj in objs:
            meta = obj["metadata"]
            key = (obj["kind"], meta["namespace"], meta["name"])
            if key in entries:
                self.add(obj, owner, age, source)
            else:
                entries[key] = _Entry(obj, owner, age, source)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        entry = self.entries.get((kind, namespace, name))
        return entry.obj if entry else None

    def finish(self) -> list[dict[str, Any]]:
        """The cluster's objects in apply order, oversized ones removed and reported."""
        out: list[dict[str, Any]] = []
        for key in sorted(self.entries, key=lambda k: (KIND_ORDER.get(k[0], 99), k[1], k[2])):
            entry = self.entries[key]
            if entry.owner in self.losers:
                continue
            if key[0] in _GROWING and _items(entry.obj) >= _MEASURE_ITEMS:
                size = len(json.dumps(entry.obj, separators=(",", ":")).encode())
                if size > MAX_OBJECT_BYTES:
                    self.diagnostics.append(
                        Diagnostic(
                            Reason.ObjectTooLarge,
                            f"{key[0]} {key[1]}/{key[2]} would be {size:,} bytes "
                            f"(limit {MAX_OBJECT_BYTES:,}); not emitted",
                            entry.source,
                            entry.owner,
                            cluster=self.cluster,
                        )
                    )
                    continue
            out.append(entry.obj)
        return out


def _items(obj: dict[str, Any]) -> int:
    return sum(len(v) for v in obj.get("spec", {}).values() if isinstance(v, (list, dict)))
