"""Kubernetes object identity, shared by the runtime's store, relay and cluster backends.

Every object that crosses a boundary (an agent's discovered inputs, the outputs published
to a cluster, what a backend applied) is a plain JSON-shaped mapping with `apiVersion`,
`kind` and `metadata`. `ObjectId` names one such object the same way everywhere: the Redis
hash key and field of DESIGN.md section 4 (`{cluster}~{group}~{version}~{kind}`,
`namespace/name`), the relay's resource identifiers, and a backend's inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: Labels every output carries; a backend prunes only objects that have all of them.
OWNER_LABELS: Mapping[str, str] = {
    "app.kubernetes.io/managed-by": "mesh-gitops",
    "reconciler.mesh.gloo.solo.io/name": "translator",
}


class ObjectId(NamedTuple):
    """group/version/kind/namespace/name of one Kubernetes object (core group: "")."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectId:
        """The id of an object; raises ValueError naming what is missing."""
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        meta = obj.get("metadata")
        if not isinstance(api_version, str) or not api_version:
            raise ValueError("object has no apiVersion")
        if not isinstance(kind, str) or not kind:
            raise ValueError("object has no kind")
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
            raise ValueError(f"{kind} has no metadata.name")
        group, _, version = api_version.rpartition("/")
        namespace = meta.get("namespace") or ""
        if not isinstance(namespace, str):
            raise ValueError(f"{kind} {meta['name']}: metadata.namespace is not a string")
        return cls(group, version, kind, namespace, meta["name"])

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> str:
        """`group~version~kind`, the GVK part of a Redis hash key (core group empty)."""
        return f"{self.group}~{self.version}~{self.kind}"

    @property
    def field(self) -> str:
        """`namespace/name` (`/name` for cluster-scoped objects), a Redis hash field."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_parts(cls, gvk: str, field: str) -> ObjectId:
        """Inverse of (`gvk`, `field`); raises ValueError on a malformed key."""
        parts = gvk.split("~")
        namespace, sep, name = field.partition("/")
        if len(parts) != 3 or not sep or not name or not parts[1] or not parts[2]:
            raise ValueError(f"malformed object key {gvk!r} {field!r}")
        return cls(parts[0], parts[1], parts[2], namespace, name)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


def owned(obj: Mapping[str, Any]) -> bool:
    """Whether an object carries every ownership label (so a backend may prune it)."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return False
    return all(labels.get(k) == v for k, v in OWNER_LABELS.items())


#: Fields removed before an output is delivered to an agent (gloo-semantics.md section 5.2):
#: they describe the management side's view, not what the workload cluster should hold.
_UNDELIVERED_META = ("deletionTimestamp", "deletionGracePeriodSeconds")
_CLUSTER_ANNOTATION = "cluster.solo.io/cluster"


def for_delivery(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object as an agent receives it: without `deletionTimestamp`,
    `deletionGracePeriodSeconds` and the `cluster.solo.io/cluster` annotation. An object
    with none of them is returned as it is (not copied): callers never mutate outputs."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return obj
    annotations = meta.get("annotations")
    pinned = isinstance(annotations, Mapping) and _CLUSTER_ANNOTATION in annotations
    if not pinned and not any(k in meta for k in _UNDELIVERED_META):
        return obj
    cleaned = {k: v for k, v in meta.items() if k not in _UNDELIVERED_META}
    if isinstance(annotations, Mapping):
        kept = {k: v for k, v in annotations.items() if k != _CLUSTER_ANNOTATION}
        if kept:
            cleaned["annotations"] = kept
        else:
            cleaned.pop("annotations", None)
    return {**obj, "metadata": cleaned}
