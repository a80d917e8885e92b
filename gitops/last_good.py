"""Keep the last good outputs of what a commit could not state: before a cluster is published.

A translation of a commit is the desired state only where the commit says something valid.
Two cases say nothing, and must not turn into deletions (DESIGN.md sections 6 and 8):

- the repository as a whole could not be read (`Bundle.complete` is False, e.g. a broken
  `gitops.yaml`): every previously published object stays; new and changed ones apply;
- a resource is INVALID in this commit (`Bundle.invalid`): the objects it produced last
  time (found by their `gloo.solo.io/parent_*` labels) stay as they were.

The server (`controller/server/published.py`, called by `controller/server/fleet.py`) asks
`must_keep` of every published object the new translation no longer renders.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from gitops.ids import ObjectRef


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
