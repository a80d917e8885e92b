"""Per-resource reports: one verdict per Gloo resource, per cluster where it differs.

Computed once, at the end, from everything the stages returned (Flux's rule:
status is summarised from step results, never set piecemeal). Called by the CLI
after rendering, and later by the server before it writes statuses. A report's
state is the worst state of the reasons attached to the resource (ranked in
`gitops.reasons.State`), ACCEPTED when there are none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic, Source, sort_key
from gitops.ids import ObjectRef
from gitops.reasons import State


@dataclass(frozen=True, slots=True)
class Report:
    """The verdict on one Gloo resource."""

    ref: ObjectRef
    api_version: str
    source: Source | None
    workspace: str | None
    state: State
    #: Clusters where the resource's state is not the same as everywhere else.
    clusters: Mapping[str, State]
    diagnostics: tuple[Diagnostic, ...]
    #: For policies: the routes or destination ports it applies to (Gloo's numSelected*).
    selected: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.ref.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "state": self.state.name,
        }
        if self.api_version:
            out["apiVersion"] = self.api_version
        if self.source is not None:
            out["file"] = self.source.file
            out["line"] = self.source.line
        if self.workspace:
            out["workspace"] = self.workspace
        if self.selected is not None:
            out["selected"] = self.selected
        if self.clusters:
            out["clusters"] = {c: s.name for c, s in sorted(self.clusters.items())}
        if self.diagnostics:
            out["reasons"] = [
                {
                    k: v
                    for k, v in d.to_json().items()
                    if k in ("reason", "message", "field", "cluster", "file", "line")
                }
                for d in self.diagnostics
            ]
        return out


def build(
    bundle: Bundle,
    workspace_of: Mapping[ObjectRef, str],
    diagnostics: Iterable[Diagnostic],
    selected: Mapping[ObjectRef, int] | None = None,
) -> list[Report]:
    """One report per Gloo resource in the bundle (valid or invalid), sorted by ref."""
    by_ref: dict[ObjectRef, list[Diagnostic]] = defaultdict(list)
    for d in diagnostics:
        if d.obj is not None:
            by_ref[d.obj].append(d)
    known: dict[ObjectRef, tuple[str, Source | None]] = {
        o.ref: (o.api_version, o.source) for o in bundle.objects
    }
    for ref in bundle.invalid:
        if ref not in known:
            first = min(by_ref.get(ref, []), key=sort_key, default=None)
            known[ref] = ("", first.source if first else None)
    reports = []
    for ref in sorted(known):
        api_version, source = known[ref]
        found = sorted(set(by_ref.get(ref, [])), key=sort_key)
        state = max((d.reason.state for d in found), default=State.ACCEPTED)
        clusters: dict[str, State] = {}
        for d in found:
            if d.cluster:
                clusters[d.cluster] = max(clusters.get(d.cluster, State.ACCEPTED), d.reason.state)
        fleet_state = max((d.reason.state for d in found if not d.cluster), default=State.ACCEPTED)
        differing = {c: s for c, s in clusters.items() if s != fleet_state}
        reports.append(
            Report(
                ref,
                api_version,
                source,
                workspace_of.get(ref),
                state,
                differing,
                tuple(found),
                (selected or {}).get(ref),
            )
        )
    return reports


def counts(reports: Iterable[Report]) -> dict[State, int]:
    out = dict.fromkeys(State, 0)
    for r in reports:
        out[r.state] += 1
    return out


def summary(reports: Iterable[Report]) -> str:
    """`12 accepted, 1 invalid` (states with zero resources left out)."""
    found = counts(reports)
    parts = [f"{n} {state.name.lower()}" for state, n in found.items() if n]
    return ", ".join(parts) or "no resources"
