"""Keep the last good outputs of what a commit could not state: before a cluster is published.

A translation of a commit is the desired state only where the commit says something valid.
Two cases say nothing, and must not turn into deletions (DESIGN.md sections 6 and 8):

- the repository as a whole could not be read (`Bundle.complete` is False, e.g. a broken
  `gitops.yaml`): every previously published object stays; new and changed ones apply;
- a resource is INVALID in this commit (`Bundle.invalid`): the objects it produced last
  time (found by their `gloo.solo.io/parent_*` labels) stay as they were.

The server (`controller/server/fleet.py`) calls `merge` with what it last published to a
cluster and what the new translation renders for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from gitops.bundle import Bundle
from gitops.ids import ObjectRef
from gitops.objects import ObjectId


def parent(obj: Mapping[str, Any]) -> ObjectRef | None:
    """The config resource an output was translated from (its parent labels)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    kind = labels.get("gloo.solo.io/parent_kind")
    name = labels.get("gloo.solo.io/parent_name")
    if not kind or not name:
        return None
    return ObjectRef(kind, labels.get("gloo.solo.io/parent_namespace", ""), name)


def must_keep(obj: Mapping[str, Any], *, complete: bool, invalid: Collection[ObjectRef]) -> bool:
    """Whether a published object the new translation no longer renders must stay: the
    commit could not be read as a whole, or the object's parent is INVALID in it."""
    return not complete or (bool(invalid) and parent(obj) in invalid)


def merge(
    previous: Sequence[Mapping[str, Any]],
    desired: Sequence[dict[str, Any]],
    bundle: Bundle,
) -> list[dict[str, Any]]:
    """`desired`, plus the previously published objects this commit could not speak for."""
    return keep(previous, desired, complete=bundle.complete, invalid=bundle.invalid)


def keep(
    previous: Sequence[Mapping[str, Any]],
    desired: Sequence[dict[str, Any]],
    *,
    complete: bool,
    invalid: Collection[ObjectRef],
) -> list[dict[str, Any]]:
    if complete and not invalid:
        return list(desired)
    present = {ObjectId.of(o) for o in desired}
    kept = [
        dict(o)
        for o in previous
        if ObjectId.of(o) not in present and must_keep(o, complete=complete, invalid=invalid)
    ]
    return list(desired) + kept
