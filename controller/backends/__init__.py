"""Cluster backends: the agent's port to one workload cluster (DESIGN.md section 7).

The agent process (`controller.agent`) holds one `ClusterBackend` for its cluster. It calls
`discover` for a full input snapshot and `watch_inputs` for the deltas it pushes over the
relay, `apply` with the change sets it pulls, and `watch_drift` to report what someone else
changed. Two implementations:

- `controller.backends.kubernetes.KubernetesBackend`: a real cluster through the official
  client (list/watch, server-side apply), connected by `controller.backends.kubeconfig.load`;
- `controller.backends.directory.DirectoryBackend`: a folder of manifests in the snapshot
  format (demo and tests).

Both record what they applied in an `Inventory` (`controller.backends.inventory`) and prune
by one rule: an object is deleted only if it is in that inventory, carries every ownership
label live, and is absent from the desired set (reliability-anchors.md rules 1, 2 and F17).

Errors: `BackendError` is the root. `Unavailable` means "the cluster could not be read or
written at all right now; try the whole step again later" and never means "empty". Problems
with single objects are not exceptions: they are entries of `ApplyResult.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gitops.objects import ObjectId
from gitops.plan import ChangeSet

__all__ = [
    "ApplyResult",
    "BackendError",
    "ClusterBackend",
    "Drift",
    "DriftCallback",
    "InputsCallback",
    "Unavailable",
]

#: Field manager of every server-side apply, and the agent's name in managedFields.
FIELD_MANAGER = "mesh-gitops"


class BackendError(Exception):
    """Root of the backend errors; the message is meant for the user as is."""


class Unavailable(BackendError):
    """The cluster could not be reached or read as a whole; retry the step later.

    Never treat this as an empty cluster: an unreadable cluster must not cause deletes.
    """


@dataclass(frozen=True)
class ApplyResult:
    """What one `apply` did, object by object.

    `skipped` holds deletes the prune rule refused or deferred, with the reason; they are not
    failures (the object stays where it is, which is the safe default), but the agent may
    report them.
    """

    applied: tuple[ObjectId, ...]
    deleted: tuple[ObjectId, ...]
    errors: Mapping[ObjectId, str]
    skipped: Mapping[ObjectId, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Drift:
    """An owned object someone else changed (`modified`) or removed (`deleted`)."""

    id: ObjectId
    change: Literal["modified", "deleted"]


#: (upserted objects, removed ids) of the discovered kinds.
InputsCallback = Callable[[list[dict[str, Any]], list[ObjectId]], None]
DriftCallback = Callable[[list[Drift]], None]


class ClusterBackend(Protocol):
    """One workload cluster as the agent sees it.

    Callbacks run on the backend's own threads; they must be quick and must not call back
    into `close`.
    """

    cluster: str

    def discover(self) -> list[dict[str, Any]]:
        """Every object of `gitops.discovery.DISCOVERED_KINDS` now; raises `Unavailable`."""
        ...

    def watch_inputs(self, callback: InputsCallback) -> None:
        """Start reporting changes to the discovered kinds (after the last `discover`)."""
        ...

    def apply(self, changes: ChangeSet) -> ApplyResult:
        """Apply in `gitops.plan.apply_order`; one object's failure never stops the rest."""
        ...

    def inventory(self) -> set[ObjectId]:
        """What this agent applied and still owns, as recorded in its state directory."""
        ...

    def watch_drift(self, callback: DriftCallback) -> None:
        """Start reporting owned objects changed or deleted by someone else."""
        ...

    def close(self) -> None:
        """Stop every watch and release connections; idempotent."""
        ...
