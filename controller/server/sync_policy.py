"""The sync policy's refusals (`gitops.sync`): when a translated commit is not published.

Called by `controller/server/fleet.py` for each cluster a reconcile would publish to; a
refusal becomes that cluster's `<prefix>/sync/<cluster>` failure status
(`controller/server/status_loop.py`). Pure functions of the bundle, the published outputs
and the settings.
"""

from __future__ import annotations

from controller.server.published import Change, Outputs
from gitops.bundle import Bundle
from gitops.helm.gitops_block import Sync
from gitops.reasons import Severity


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
