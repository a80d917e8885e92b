"""What the management server knows of each workload cluster, and of its last translation.

Plain state, held by `controller/server/fleet.py` under its lock and read by the stream
handlers, the status reporter and the HTTP view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.server.published import Outputs
from gitops import discovery, reports
from gitops.diagnostics import Diagnostic
from gitops.discovery import ClusterInputs
from gitops.objects import ObjectId

#: Published versions whose commit is remembered per cluster (`Cluster.revisions`).
REVISIONS_KEPT = 16


@dataclass(frozen=True)
class Translated:
    """What the last translation said about its commit."""

    revision: str | None
    reports: tuple[reports.Report, ...]
    diagnostics: tuple[Diagnostic, ...]


@dataclass
class Cluster:
    """What the server knows of one workload cluster."""

    name: str
    inputs: dict[ObjectId, dict[str, Any]] = field(default_factory=dict)
    parsed: ClusterInputs | None = None
    #: Bumped whenever `inputs` change (here and on each input delta, `Fleet.update_inputs`):
    #: pull-request previews recompute when it moved (`controller/server/previews.py`).
    inputs_version: int = 0
    #: Pushed a complete snapshot in this cache generation.
    complete: bool = False
    last_snapshot: float | None = None
    #: What was last published to the cluster (immutable; replaced on each publish).
    published: Outputs = field(default_factory=Outputs)
    #: The next reconcile computes this cluster's outputs from its whole desired set.
    needs_full: bool = True
    #: Asked-for resends of the whole set (`Fleet.resync`); Pull handlers watch it.
    resyncs: int = 0
    #: The config commit the published version was translated from (statuses go there).
    published_revision: str | None = None
    #: Wire version -> the commit it was translated from, for the newest published versions:
    #: names the commit an agent runs when its applied version lags the published one.
    revisions: dict[str, str] = field(default_factory=dict)
    #: Why the last commit was not published to this cluster (sync policy), if it was not.
    refused: str = ""
    #: The commit that refusal is about.
    refused_revision: str | None = None
    #: A commit waiting for a manual sync before it is published here (`automated: false`).
    held_revision: str | None = None
    published_at: float | None = None
    applied: str | None = None
    acked_at: float | None = None
    #: Per-object errors of the agent's last NACK (empty after an ACK).
    errors: dict[str, str] = field(default_factory=dict)
    drift: int = 0
    #: Output messages sent to this cluster's agents: full snapshots and deltas.
    sent_full: int = 0
    sent_delta: int = 0
    push_streams: int = 0
    pull_streams: int = 0

    def set_inputs(
        self, objects: Iterable[dict[str, Any]], *, complete: bool, updated: float | None
    ) -> None:
        """Hold `objects` as this cluster's whole discovery snapshot (pushed by its agent,
        or read from Redis), parsed for translation; computed whole on the next reconcile."""
        inputs = {ObjectId.of(o): o for o in objects}
        if inputs != self.inputs:  # an agent's reconnect resends the same snapshot
            self.inputs_version += 1
        self.inputs = inputs
        self.parsed = discovery.from_objects(self.name, self.inputs.values())
        self.complete, self.last_snapshot = complete, updated
        self.needs_full = True

    def set_published(self, outputs: Outputs, revision: str | None, wire: str) -> None:
        """Hold `outputs` (wire version `wire`) as published, from commit `revision`."""
        self.published, self.published_revision = outputs, revision
        if revision and outputs.version:
            self.revisions[wire] = revision
            while len(self.revisions) > REVISIONS_KEPT:
                del self.revisions[next(iter(self.revisions))]  # the oldest: insertion order

    @property
    def version(self) -> int:
        return self.published.version

    @property
    def outputs(self) -> Mapping[ObjectId, Mapping[str, Any]]:
        return self.published.objects
