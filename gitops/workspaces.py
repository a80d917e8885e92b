"""Workspaces: who owns which namespace, where config objects belong, and who sees what.

Built once per translation by `gitops.translate.context` from the Bundle and the
clusters' inputs; every translator asks it two questions: "which workspace owns
(cluster, namespace)?" and "can workspace B see this object of workspace A?".

Rules (gloo-semantics.md section 2, DESIGN.md section 2):
- a Workspace selects clusters (name glob, KubernetesCluster labels) and, in each,
  namespaces (name glob and/or labels, ANDed); no namespace entries = all of them.
  Cluster globs see the registered clusters and the config cluster.
- a (cluster, namespace) belongs to at most one workspace: the earliest-created
  Workspace keeps it; later ones get `NamespaceInMultipleWorkspaces`.
- a config object lives in its pinned cluster (`cluster.solo.io/cluster`) or the
  config cluster, and belongs to the workspace of that (cluster, namespace). If that
  namespace is in no workspace there and nothing pins the object, the workspace that
  owns the namespace in the workload clusters is used; two candidates is ambiguous.
- sharing is a handshake: A's `exportTo` selects B and the object, and B's
  `importFrom` selects A and the object. Policies never cross.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.bundle import CLUSTER_ANNOTATION, ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.models.admin import (
    ImportExportEntry,
    TypedObjectSelector,
    WorkspaceSettingsSpec,
    WorkspaceSpec,
)
from gitops.models.common import WorkspaceSelector
from gitops.reasons import Reason
from gitops.selectors import Target, glob_match, labels_match

#: Name of the WorkspaceSettings whose options apply to every workspace without its own.
GLOBAL_SETTINGS = "global"


@dataclass(frozen=True)
class Membership:
    """Namespace ownership across the fleet."""

    workspaces: Mapping[str, ConfigObject[WorkspaceSpec]]
    owner: Mapping[tuple[str, str], str]
    config_enabled: Mapping[tuple[str, str], bool]
    namespaces: Mapping[str, Mapping[str, tuple[str, ...]]]  # ws -> cluster -> namespaces
    diagnostics: tuple[Diagnostic, ...] = ()

    def owner_of(self, cluster: str, namespace: str) -> str | None:
        return self.owner.get((cluster, namespace))

    def namespaces_in(self, workspace: str, cluster: str) -> tuple[str, ...]:
        return self.namespaces.get(workspace, {}).get(cluster, ())

    def place(self, obj: ConfigObject[Any]) -> tuple[str | None, Diagnostic | None]:
        """The workspace a config object belongs to, or why it has none."""
        key = (obj.cluster, obj.namespace)
        owner = self.owner.get(key)
        if owner is not None and self.config_enabled.get(key, True):
            return owner, None
        if owner is not None:
            return None, Diagnostic(
                Reason.NotInWorkspace,
                f"config is disabled (configEnabled: false) for namespace {obj.namespace} of "
                f"workspace {owner} in cluster {obj.cluster}",
                obj.source,
                obj.ref,
            )
        if CLUSTER_ANNOTATION not in obj.meta.annotations:
            candidates = sorted(
                {
                    ws
                    for (cluster, ns), ws in self.owner.items()
                    if ns == obj.namespace and self.config_enabled.get((cluster, ns), True)
                }
            )
            if len(candidates) == 1:
                return candidates[0], None
            if candidates:
                return None, Diagnostic(
                    Reason.AmbiguousWorkspace,
                    f"namespace {obj.namespace} belongs to workspaces {', '.join(candidates)} "
                    f"in different clusters; add the {CLUSTER_ANNOTATION} annotation",
                    obj.source,
                    obj.ref,
                )
        return None, Diagnostic(
            Reason.NotInWorkspace,
            f"namespace {obj.namespace} of cluster {obj.cluster} belongs to no workspace",
            obj.source,
            obj.ref,
        )


def build_membership(
    workspaces: list[ConfigObject[WorkspaceSpec]],
    clusters: Mapping[str, Mapping[str, str]],
    namespaces: Mapping[str, Mapping[str, Mapping[str, str]]],
) -> Membership:
    """Assign namespaces to workspaces.

    `clusters` maps every cluster name to its KubernetesCluster labels (the config
    cluster included); `namespaces` maps cluster -> namespace -> namespace labels.
    """
    owner: dict[tuple[str, str], str] = {}
    enabled: dict[tuple[str, str], bool] = {}
    per_ws: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    diagnostics: list[Diagnostic] = []
    for ws in sorted(workspaces, key=ConfigObject.age_key):
        lost: dict[str, list[str]] = defaultdict(list)
        for entry in ws.spec.workload_clusters:
            for cluster in sorted(clusters):
                if not glob_match(entry.name, cluster) or not labels_match(
                    entry.selector, clusters[cluster]
                ):
                    continue
                for ns, ns_labels in sorted(namespaces.get(cluster, {}).items()):
                    config_on = entry.config_enabled
                    if entry.namespaces:
                        chosen = next(
                            (
                                n
                                for n in entry.namespaces
                                if glob_match(n.name, ns) and labels_match(n.labels, ns_labels)
                            ),
                            None,
                        )
                        if chosen is None:
                            continue
                        if chosen.config_enabled is not None:
                            config_on = chosen.config_enabled
                    key = (cluster, ns)
                    holder = owner.get(key)
                    if holder is not None:
                        if holder != ws.name:
                            lost[holder].append(f"{cluster}/{ns}")
                        continue
                    owner[key] = ws.name
                    enabled[key] = True if config_on is None else config_on
                    per_ws[ws.name][cluster].append(ns)
        for holder, where in sorted(lost.items()):
            diagnostics.append(
                Diagnostic(
                    Reason.NamespaceInMultipleWorkspaces,
                    f"{', '.join(sorted(set(where)))} already belong to workspace {holder}",
                    ws.source,
                    ws.ref,
                )
            )
    frozen = {ws: {c: tuple(sorted(set(nss))) for c, nss in m.items()} for ws, m in per_ws.items()}
    return Membership({w.name: w for w in workspaces}, owner, enabled, frozen, tuple(diagnostics))


def _workspace_selected(
    selectors: list[WorkspaceSelector], name: str, labels: Mapping[str, str]
) -> bool:
    return any(glob_match(s.name, name) and labels_match(s.selector, labels) for s in selectors)


def _resource_selected(resources: list[TypedObjectSelector], kind: str, target: Target) -> bool:
    if not resources:
        return True
    return any(
        (r.kind == "ALL" or r.kind == kind)
        and (r.name is None or r.name == target.name)
        and (r.namespace is None or r.namespace == target.namespace)
        and (r.cluster is None or r.cluster == target.cluster)
        and labels_match(r.labels, target.labels)
        for r in resources
    )


@dataclass
class Visibility:
    """Who can see what across workspaces (the export/import handshake)."""

    #: (viewer, owner) -> list of (owner's exportTo entry, viewer's importFrom entry).
    handshakes: Mapping[tuple[str, str], list[tuple[ImportExportEntry, ImportExportEntry]]]
    importers_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def can_see(self, viewer: str, owner: str, kind: str, target: Target) -> bool:
        """Can workspace `viewer` use an object of `kind` owned by workspace `owner`?"""
        if viewer == owner:
            return True
        return any(
            _resource_selected(export.resources, kind, target)
            and _resource_selected(imported.resources, kind, target)
            for export, imported in self.handshakes.get((viewer, owner), ())
        )

    def viewers(self, owner: str, kind: str, target: Target) -> tuple[str, ...]:
        """The owner plus every workspace that imports this object, sorted after the owner."""
        others = [
            v for v in self.importers_of.get(owner, ()) if self.can_see(v, owner, kind, target)
        ]
        return (owner, *others)


def build_visibility(
    workspaces: Mapping[str, ConfigObject[WorkspaceSpec]],
    settings: Mapping[str, WorkspaceSettingsSpec],
) -> Visibility:
    """Pair every owner's exportTo entries with the matching viewers' importFrom entries."""
    handshakes: dict[tuple[str, str], list[tuple[ImportExportEntry, ImportExportEntry]]] = (
        defaultdict(list)
    )
    for owner, owner_settings in settings.items():
        if owner not in workspaces:
            continue
        for export in owner_settings.export_to:
            for viewer, viewer_ws in workspaces.items():
                if viewer == owner or not _workspace_selected(
                    export.workspaces, viewer, viewer_ws.labels
                ):
                    continue
                for imported in settings.get(viewer, WorkspaceSettingsSpec()).import_from:
                    if _workspace_selected(imported.workspaces, owner, workspaces[owner].labels):
                        handshakes[(viewer, owner)].append((export, imported))
    importers: dict[str, set[str]] = defaultdict(set)
    for viewer, owner in handshakes:
        importers[owner].add(viewer)
    return Visibility(dict(handshakes), {owner: tuple(sorted(v)) for owner, v in importers.items()})
