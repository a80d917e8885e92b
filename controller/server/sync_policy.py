"""The sync policy (`gitops.sync`) applied to a translation: what each cluster gets.

`plan` is the reconcile's step between translate and publish
(`controller/server/fleet.py`): per cluster safe mode lets through, the change from what
was published to what the commit renders (whole, or from the translation's change list),
less what the policy keeps (`prune: false`, last good outputs), unless the policy refuses
the commit (`failOnInvalid`), refuses to empty the cluster (`allowEmpty: false`) or holds
it for a manual sync (`automated: false`). Refusals and holds are recorded on the cluster
and become its `<prefix>/sync/<cluster>` status (`controller/server/status_loop.py`).
Runs under the fleet's lock; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.server.cluster import Cluster
from controller.server.published import Change, Outputs, full_change, partial_change
from gitops import last_good
from gitops.bundle import Bundle
from gitops.helm.gitops_block import Sync
from gitops.reasons import Severity
from gitops.translate.incremental import Session
from gitops.translate.outputs import OutKey

#: Per cluster, the translation's changed outputs (None: compute every cluster whole).
Changes = Mapping[str, Mapping[OutKey, dict[str, Any] | None]] | None


def plan(
    clusters: Mapping[str, Cluster],
    push_to: Iterable[str],
    bundle: Bundle,
    session: Session,
    changes: Changes,
    sync: Sync,
    approved: str | None,
) -> dict[str, Change]:
    """The change to publish to each cluster in `push_to` (only those with something to
    send); records refusals and holds on the clusters."""

    def keep(obj: Mapping[str, Any]) -> bool:
        # `prune: false` keeps every object the translation stopped rendering.
        return not sync.prune or last_good.must_keep(
            obj, complete=bundle.complete, invalid=bundle.invalid
        )

    refusal = commit_refusal(bundle, sync)
    # `automated: false`: compute, report, publish only what an operator approved.
    hold = not sync.automated and bundle.revision != approved
    todo: dict[str, Change] = {}
    for name in sorted(push_to):
        c = clusters[name]
        if changes is None or c.needs_full or c.version == 0:
            desired = session.objects(name) if name in session.clusters else []
            change = full_change(c.published, desired, keep)
        elif name in changes:
            change = partial_change(c.published, changes[name], keep)
        else:
            continue
        c.refused = refusal or empty_refusal(c.published, change, sync)
        c.refused_revision = bundle.revision
        if c.refused:
            c.needs_full = True  # computed whole again once the refusal lifts
            continue
        c.held_revision = bundle.revision if hold and change else None
        if c.held_revision:
            c.needs_full = True
            continue
        c.needs_full = False
        if change or c.version == 0:
            todo[name] = change
    return todo


def commit_refusal(bundle: Bundle, sync: Sync) -> str:
    """Why nothing of this commit may be published (`failOnInvalid`), or ""."""
    if not sync.fail_on_invalid:
        return ""
    errors = any(d.severity is Severity.ERROR for d in bundle.diagnostics)
    if bundle.invalid or bundle.unreadable_files or errors:
        return "not synced: the commit has invalid config and gitops.sync.failOnInvalid is set"
    return ""


def empty_refusal(current: Outputs, change: Change, sync: Sync) -> str:
    """Why a change may not empty a cluster (`allowEmpty: false`), or ""."""
    if sync.allow_empty or not current.objects or change.upserts:
        return ""
    if change.removed >= current.objects.keys():
        return (
            f"refusing to prune all {len(current.objects)} objects "
            "(gitops.sync.allowEmpty is false)"
        )
    return ""
