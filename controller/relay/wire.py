"""Objects on the relay: Kubernetes objects <-> `Resource` messages, and chunking.

Both ends use this: the server's stream handlers (`controller/server/streams.py`) and the
agent's loops (`controller/agent/streams.py`). An object travels as its JSON (with
`apiVersion` and `kind`), like skv2's `Any(BytesValue)`; before it is sent, the fields
gloo-semantics.md section 5.2 says to drop are removed (`deletionTimestamp`,
`deletionGracePeriodSeconds`, the `cluster.solo.io/cluster` annotation).

A snapshot bigger than one message is split into chunks of about `CHUNK_BYTES` (gRPC's
default message limit is 4 MiB; staying well under it leaves room for the envelope and
keeps each message's latency small); every chunk but the last has `more=True`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from controller.relay import relay_pb2 as pb
from gitops.objects import ObjectId

CHUNK_BYTES = 1024 * 1024

_DROPPED_META = ("deletionTimestamp", "deletionGracePeriodSeconds")
_CLUSTER_ANNOTATION = "cluster.solo.io/cluster"


def resource_id(oid: ObjectId) -> pb.ResourceId:
    gvk = pb.GVK(group=oid.group, version=oid.version, kind=oid.kind)
    return pb.ResourceId(gvk=gvk, namespace=oid.namespace, name=oid.name)


def object_id(rid: pb.ResourceId) -> ObjectId:
    return ObjectId(rid.gvk.group, rid.gvk.version, rid.gvk.kind, rid.namespace, rid.name)


def _clean(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return obj
    annotations = meta.get("annotations")
    dirty = any(k in meta for k in _DROPPED_META) or (
        isinstance(annotations, Mapping) and _CLUSTER_ANNOTATION in annotations
    )
    if not dirty:
        return obj
    meta = {k: v for k, v in meta.items() if k not in _DROPPED_META}
    if isinstance(annotations, Mapping):
        kept = {k: v for k, v in annotations.items() if k != _CLUSTER_ANNOTATION}
        if kept:
            meta["annotations"] = kept
        else:
            meta.pop("annotations", None)
    return {**obj, "metadata": meta}


def encode(obj: Mapping[str, Any]) -> pb.Resource:
    data = json.dumps(_clean(obj), separators=(",", ":"), sort_keys=True).encode()
    return pb.Resource(id=resource_id(ObjectId.of(obj)), json=data)


def decode(resource: pb.Resource) -> dict[str, Any]:
    """The object in a Resource; ValueError if it is not a JSON object matching its id."""
    try:
        obj = json.loads(resource.json)
    except ValueError as exc:
        raise ValueError(f"{object_id(resource.id)}: not JSON ({exc})") from None
    if not isinstance(obj, dict) or ObjectId.of(obj) != object_id(resource.id):
        raise ValueError(f"{object_id(resource.id)}: the object does not match its id")
    return obj


def patches(
    upserts: Iterable[Mapping[str, Any]], removed: Sequence[ObjectId] = ()
) -> Iterator[pb.ResourcePatch]:
    """Patches of at most about CHUNK_BYTES each; always at least one (maybe empty)."""
    patch = pb.ResourcePatch()
    size = 0
    for obj in upserts:
        resource = encode(obj)
        if size and size + len(resource.json) > CHUNK_BYTES:
            yield patch
            patch, size = pb.ResourcePatch(), 0
        patch.resources.append(resource)
        size += len(resource.json) + 64
    for oid in removed:
        if size > CHUNK_BYTES:
            yield patch
            patch, size = pb.ResourcePatch(), 0
        patch.removed.append(resource_id(oid))
        size += 64
    yield patch


def decode_patch(patch: pb.ResourcePatch) -> tuple[list[dict[str, Any]], list[ObjectId]]:
    return [decode(r) for r in patch.resources], [object_id(r) for r in patch.removed]
