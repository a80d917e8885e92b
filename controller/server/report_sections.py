"""What a commit's report says about its translation and its sync, from one look at the fleet.

Called by the status reporter (`controller/server/status_loop.py`): on every tick it takes
a `FleetFacts` (`capture`, under the fleet's lock, cheap: counts and references only) and
computes the statuses from it; when the statuses of a commit changed, it builds that
commit's `translation` and `sync` sections here from the same facts and stores them in
`controller/server/commit_reports.py`. `/reports/<sha>` serves them
(`controller/server/report_pages.py`; `docs/endpoints.md` shows the shapes).

Built from reports, versions and counts only, like the statuses' descriptions: no value
here comes from a secret. Long lists are cut (`MAX_ITEMS`), with the number left out said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.server.cluster import Translated
from controller.server.fleet import Fleet
from gitops import reports
from gitops.reasons import State
from gitops.statuses import Status

__all__ = ["MAX_ITEMS", "ClusterFacts", "FleetFacts", "capture", "sync_entry", "translation"]

#: Resources, diagnostics or NACK errors listed per section; the rest are counted.
MAX_ITEMS = 500


@dataclass(frozen=True)
class ClusterFacts:
    """What the statuses and the report need of one cluster, copied under the fleet lock."""

    name: str
    #: The commit the published version was translated from.
    published_revision: str | None
    #: The published output version (0: nothing published yet).
    version: int
    #: The version number the agent ACKed in this cache generation, if any.
    applied: str | None
    #: The agent's last NACK: (object, error), in the agent's order.
    errors: tuple[tuple[str, str], ...]
    objects: int
    drift: int
    refused: str
    refused_revision: str | None
    held_revision: str | None


@dataclass(frozen=True)
class FleetFacts:
    """One consistent look at the fleet."""

    #: The commit last loaded (translated or not).
    loaded: str | None
    translated: Translated | None
    clusters: tuple[ClusterFacts, ...]


def capture(fleet: Fleet) -> FleetFacts:
    """The fleet's facts, under its lock (references and counts: no copy of outputs)."""
    with fleet.lock:
        loaded = fleet.bundle.revision if fleet.bundle is not None else None
        # Versions on the wire carry the cache generation; statuses show the number.
        current = f"{fleet.generation}:"
        clusters = []
        for name, c in sorted(fleet.clusters.items()):
            held = c.applied or ""
            clusters.append(
                ClusterFacts(
                    name=name,
                    published_revision=c.published_revision,
                    version=c.version,
                    applied=held[len(current) :] if held.startswith(current) else None,
                    errors=tuple(c.errors.items()),
                    objects=len(c.outputs),
                    drift=c.drift,
                    refused=c.refused,
                    refused_revision=c.refused_revision,
                    held_revision=c.held_revision,
                )
            )
        return FleetFacts(loaded, fleet.translated, tuple(clusters))


def translation(done: Translated, status: Status | None) -> dict[str, Any]:
    """The `translation` section: counts by state, the resources not ACCEPTED (with their
    reasons, files and lines) and the diagnostics attached to no resource."""
    found = list(done.reports)
    counts = reports.counts(found)
    problems = sorted((r for r in found if r.state is not State.ACCEPTED), key=_worst_first)
    loose = [d for d in done.diagnostics if d.obj is None]
    out: dict[str, Any] = {
        "summary": reports.summary(found),
        "counts": {state.name: counts[state] for state in State},
        "resources": [r.to_json() for r in problems[:MAX_ITEMS]],
        "diagnostics": [d.to_json() for d in loose[:MAX_ITEMS]],
    }
    if status is not None:
        out = {"state": status.state.value, "description": status.description, **out}
    omitted = max(0, len(problems) - MAX_ITEMS) + max(0, len(loose) - MAX_ITEMS)
    if omitted:
        out["omitted"] = omitted
    return out


def _worst_first(report: reports.Report) -> tuple[int, str, str, str]:
    ref = report.ref
    return (-report.state, ref.kind, ref.namespace, ref.name)


def sync_entry(
    sha: str, cluster: ClusterFacts, sync: Status, drift: Status | None
) -> dict[str, Any]:
    """One cluster's row of the `sync` section of commit `sha`.

    Versions, objects and drift are given only when `sha` is what was published to the
    cluster (a commit refused by the sync policy or held for a manual sync has none)."""
    entry: dict[str, Any] = {"state": sync.state.value, "description": sync.description}
    if cluster.published_revision != sha:
        entry["publishedVersion"] = None
        return entry
    shown = cluster.applied
    applied: int | str | None = int(shown) if shown and shown.isdigit() else shown
    entry.update(
        {
            "publishedVersion": cluster.version,
            "appliedVersion": applied,
            "objects": cluster.objects,
            "drift": cluster.drift,
            "errors": [
                {"object": obj, "message": message}
                for obj, message in sorted(cluster.errors)[:MAX_ITEMS]
            ],
        }
    )
    if drift is not None:
        entry["driftState"] = drift.state.value
        entry["driftDescription"] = drift.description
    return entry


def merged_clusters(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The `sync` section: `new` rows over `old` ones (a cluster that moved on to a later
    commit keeps its last row on this one, as its status on this commit stays)."""
    clusters = dict((old or {}).get("clusters") or {})
    clusters.update(new)
    return {"clusters": dict(sorted(clusters.items()))}
