"""Per-cluster object diff: the first pure stage of a pull-request preview.

Where it sits: `controller.preview` renders the base and the head merged onto it with
`gitops.pipeline.run`, then calls `diff_clusters` with both renderings (and both runs'
reports); `gitops.preview.report` turns the resulting `Preview` into markdown, JSON and a
one-line commit-status description. The server's `<prefix>/preview` status and
`gitops diff` both go through here, so the two always agree.

Objects are paired by (apiVersion group, kind, namespace, name): the version is left out
so that a `v1beta1` -> `v1` move reads as a change, not a removal plus an addition. Text
diffs are `difflib` over `gitops.rendering.dump`, the same bytes `gitops render` writes,
so a reviewer sees exactly what would be applied. Everything is sorted: the same inputs
give the same preview, byte for byte.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops import rendering
from gitops.preview import semantics
from gitops.reports import Report

__all__ = ["Change", "ClusterDiff", "ObjectChange", "Preview", "diff_clusters", "object_key"]

#: (group, kind, namespace, name): what makes two renderings of an object "the same object".
ObjectKey = tuple[str, str, str, str]


class Change(enum.Enum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One Istio object that differs between the base and the head rendering of a cluster."""

    group: str
    kind: str
    namespace: str
    name: str
    change: Change
    #: Unified diff of the rendered YAML (`--- base`, `+++ head`), lines joined with "\n".
    diff: str

    @property
    def title(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def diff_lines(self) -> int:
        return self.diff.count("\n") + 1 if self.diff else 0


@dataclass(frozen=True, slots=True)
class ClusterDiff:
    """What the change does to one workload cluster."""

    cluster: str
    changes: tuple[ObjectChange, ...] = ()
    #: Mesh-semantic bullets (`gitops.preview.semantics`), already sorted.
    semantics: tuple[str, ...] = ()

    def count(self, change: Change) -> int:
        return sum(c.change is change for c in self.changes)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.semantics)

    def counts_line(self) -> str:
        """`+2 ~3 -0`, or `no change`."""
        if not self.changed:
            return "no change"
        added, changed, removed = (self.count(c) for c in Change)
        return f"+{added} ~{changed} -{removed}"


@dataclass(frozen=True, slots=True)
class Preview:
    """The whole preview: one `ClusterDiff` per cluster in either rendering, sorted by name."""

    clusters: tuple[ClusterDiff, ...] = ()
    #: Resources that became INVALID or FAILED in the head (and were not in the base).
    invalid: tuple[str, ...] = ()
    #: Free-form context for the report header (refs, commit ids); set by the caller.
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.invalid) or any(c.changed for c in self.clusters)


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return (
        group,
        str(obj.get("kind", "")),
        str(meta.get("namespace", "") or ""),
        str(meta.get("name", "")),
    )


def diff_clusters(
    base: Mapping[str, Sequence[Mapping[str, Any]]],
    head: Mapping[str, Sequence[Mapping[str, Any]]],
    base_reports: Iterable[Report] = (),
    head_reports: Iterable[Report] = (),
) -> Preview:
    """Pair each cluster's objects by `object_key` and describe every difference.

    A cluster present on one side only is diffed against an empty rendering, so a cluster
    dropped from the config shows every object as removed.
    """
    clusters = []
    for name in sorted(set(base) | set(head)):
        before = _index(base.get(name, ()))
        after = _index(head.get(name, ()))
        changes = tuple(_changes(before, after))
        bullets = semantics.summarize(
            [before[k] for k in sorted(before)], [after[k] for k in sorted(after)]
        )
        clusters.append(ClusterDiff(name, changes, bullets))
    invalid = semantics.newly_invalid(base_reports, head_reports)
    return Preview(tuple(clusters), invalid)


def _index(objects: Sequence[Mapping[str, Any]]) -> dict[ObjectKey, Mapping[str, Any]]:
    # Translators never emit two objects with one key; if a buggy one did, the last wins
    # here and the text diff of that object still shows what is published.
    return {object_key(o): o for o in objects}


def _changes(
    before: Mapping[ObjectKey, Mapping[str, Any]], after: Mapping[ObjectKey, Mapping[str, Any]]
) -> Iterable[ObjectChange]:
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        old_text = rendering.dump(old) if old is not None else ""
        new_text = rendering.dump(new) if new is not None else ""
        if old_text == new_text:
            continue
        change = Change.ADDED if old is None else Change.REMOVED if new is None else Change.CHANGED
        yield ObjectChange(*key, change=change, diff=unified(old_text, new_text))


def unified(old_text: str, new_text: str) -> str:
    """A unified diff with 3 lines of context and no trailing newline."""
    lines = difflib.unified_diff(
        old_text.splitlines(),
        new_text.splitlines(),
        fromfile="base",
        tofile="head",
        lineterm="",
    )
    return "\n".join(lines)
