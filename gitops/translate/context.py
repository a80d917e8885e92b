"""The fleet context: everything translators look up, indexed once per translation.

Built by `gitops.translate.translate` from a Bundle and the clusters' inputs,
then read (never changed) by every translator while clusters are rendered one
by one. Holds: registered clusters and their inputs, workspace membership and
visibility, the placed config objects by kind, and service indexes (by
namespace/name and by label) so selectors do not scan the fleet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops import names, workspaces
from gitops.bundle import Bundle, ConfigObject
from gitops.diagnostics import Diagnostic, Source
from gitops.discovery import ClusterInputs, Service
from gitops.ids import ObjectRef
from gitops.models.admin import KubernetesClusterSpec, WorkspaceSettingsSpec, WorkspaceSpec
from gitops.models.common import ObjectSelector
from gitops.reasons import Reason
from gitops.selectors import Target, object_match

#: Kinds that are not placed in a workspace: they configure the fleet itself.
_ADMIN_KINDS = frozenset({"KubernetesCluster", "Workspace"})


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """A discovered Service in one cluster, with the workspace that owns its namespace."""

    cluster: str
    service: Service
    workspace: str | None
    #: What selectors match against (built once: selectors run over every Service).
    target: Target = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        s = self.service
        target = Target(s.name, s.namespace, self.cluster, self.workspace, s.labels)
        object.__setattr__(self, "target", target)


@dataclass
class Context:
    """Read-only lookups for one translation."""

    bundle: Bundle
    inputs: Mapping[str, ClusterInputs]
    clusters: Mapping[str, ConfigObject[KubernetesClusterSpec]]
    membership: workspaces.Membership
    visibility: workspaces.Visibility
    settings: Mapping[str, WorkspaceSettingsSpec]
    workspace_of: Mapping[ObjectRef, str]
    placed: Mapping[str, tuple[ConfigObject[Any], ...]]
    #: Cluster and workspace problems (fixed for a given set of clusters and workspaces).
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Objects that could not be placed in a workspace, and why.
    placement_problems: Mapping[ObjectRef, Diagnostic] = field(default_factory=dict)
    services_by_key: Mapping[tuple[str, str], tuple[ServiceRef, ...]] = field(default_factory=dict)
    #: (cluster, namespace, name) -> the Service there.
    services_at: Mapping[tuple[str, str, str], ServiceRef] = field(default_factory=dict)
    services_by_label: Mapping[tuple[str, str], tuple[ServiceRef, ...]] = field(
        default_factory=dict
    )
    all_services: tuple[ServiceRef, ...] = ()
    services_in: Mapping[str, tuple[ServiceRef, ...]] = field(default_factory=dict)
    services_of_workspace: Mapping[str, tuple[ServiceRef, ...]] = field(default_factory=dict)
    vds_by_key: Mapping[tuple[str, str], ConfigObject[Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> tuple[ConfigObject[Any], ...]:
        """Valid config objects of a kind that belong to a workspace, sorted by ref."""
        return self.placed.get(kind, ())

    def virtual_destination(self, namespace: str, name: str) -> ConfigObject[Any] | None:
        return self.vds_by_key.get((namespace, name))

    def trust_domain(self, cluster: str) -> str:
        """The cluster's Istio trust domain (principals `<td>/ns/<ns>/sa/<sa>`, SPIFFE
        SANs): the data-plane values' `gitops.mesh.trustDomain`, else the cluster name."""
        configured = getattr(self.bundle.helm, "trust_domain", None)
        return str(configured(cluster)) if callable(configured) else cluster

    def cluster_domain(self, cluster: str) -> str:
        registered = self.clusters.get(cluster)
        return registered.spec.cluster_domain if registered else "cluster.local"

    def fqdn(self, service: Service, cluster: str) -> str:
        return f"{service.name}.{service.namespace}.svc.{self.cluster_domain(cluster)}"

    def target(self, obj: ConfigObject[Any]) -> Target:
        return Target(
            obj.name, obj.namespace, obj.cluster, self.workspace_of.get(obj.ref), obj.labels
        )

    def service_in(self, cluster: str, key: tuple[str, str]) -> ServiceRef | None:
        """The Service `key` (namespace, name) in one cluster, if it exists there."""
        return self.services_at.get((cluster, *key))

    def find_services(self, selector: ObjectSelector) -> Iterable[ServiceRef]:
        """Services matching an ObjectSelector (visibility is the caller's business)."""
        candidates: tuple[ServiceRef, ...]
        if selector.name is not None and selector.namespace is not None:
            candidates = self.services_by_key.get((selector.namespace, selector.name), ())
        elif selector.labels:
            buckets: list[tuple[ServiceRef, ...]] = [
                self.services_by_label.get(item, ()) for item in selector.labels.items()
            ]
            candidates = min(buckets, key=len)
        else:
            candidates = self.all_services
        return (s for s in candidates if object_match(selector, s.target))

    def service_visible(self, viewer: str, ref: ServiceRef) -> bool:
        return ref.workspace is not None and self.visibility.can_see(
            viewer, ref.workspace, "SERVICE", ref.target
        )


def build(bundle: Bundle, inputs: Mapping[str, ClusterInputs]) -> Context:
    """Index the bundle and the inputs; report cluster and workspace placement problems."""
    diagnostics: list[Diagnostic] = []
    clusters = {c.name: c for c in bundle.of_kind("KubernetesCluster")}
    usable = {name: inp for name, inp in inputs.items() if name in clusters}
    for name in sorted(set(inputs) - set(clusters)):
        bad_name = names.cluster_name_problem(name)
        if bad_name:
            diagnostics.append(
                Diagnostic(Reason.InvalidClusterName, bad_name, Source(f"{name}/"), cluster=name)
            )
            continue
        diagnostics.append(
            Diagnostic(
                Reason.UnregisteredCluster,
                f"snapshot for cluster {name} ignored: no KubernetesCluster named {name}",
                Source(f"{name}/"),
                cluster=name,
            )
        )
    for name in sorted(set(clusters) - set(inputs)):
        registered = clusters[name]
        diagnostics.append(
            Diagnostic(
                Reason.MissingSnapshot,
                f"no discovery snapshot for cluster {name}; nothing is rendered for it",
                registered.source,
                registered.ref,
                cluster=name,
            )
        )
    cluster_labels: dict[str, Mapping[str, str]] = {n: c.labels for n, c in clusters.items()}
    cluster_labels.setdefault(bundle.config_cluster, {})
    namespaces: dict[str, dict[str, Mapping[str, str]]] = {
        name: dict(inp.namespaces) for name, inp in usable.items()
    }
    for obj in bundle.objects:
        if obj.kind not in _ADMIN_KINDS:
            namespaces.setdefault(obj.cluster, {}).setdefault(obj.namespace, {})
    workspace_objs: list[ConfigObject[WorkspaceSpec]] = list(bundle.of_kind("Workspace"))
    membership = workspaces.build_membership(workspace_objs, cluster_labels, namespaces)
    diagnostics.extend(membership.diagnostics)

    workspace_of: dict[ObjectRef, str] = {}
    placed: dict[str, list[ConfigObject[Any]]] = defaultdict(list)
    placement_problems: dict[ObjectRef, Diagnostic] = {}
    settings: dict[str, WorkspaceSettingsSpec] = {}
    global_settings: WorkspaceSettingsSpec | None = None
    for obj in sorted(bundle.objects, key=ConfigObject.age_key):
        if obj.kind in _ADMIN_KINDS:
            continue
        if obj.kind == "WorkspaceSettings" and obj.name == workspaces.GLOBAL_SETTINGS:
            if global_settings is not None:
                diagnostics.append(
                    Diagnostic(
                        Reason.DuplicateWorkspaceSettings,
                        "an older `global` WorkspaceSettings exists; this one is ignored",
                        obj.source,
                        obj.ref,
                    )
                )
            else:
                global_settings = obj.spec
            continue
        ws = _place(membership, obj, placement_problems)
        if ws is None:
            continue
        workspace_of[obj.ref] = ws
        if obj.kind == "WorkspaceSettings":
            if ws in settings:
                diagnostics.append(
                    Diagnostic(
                        Reason.DuplicateWorkspaceSettings,
                        f"workspace {ws} already has older WorkspaceSettings; this one is ignored",
                        obj.source,
                        obj.ref,
                    )
                )
                continue
            settings[ws] = obj.spec
        placed[obj.kind].append(obj)
    if global_settings is not None and global_settings.options is not None:
        for ws in membership.workspaces:
            current = settings.get(ws)
            if current is None:
                settings[ws] = WorkspaceSettingsSpec(options=global_settings.options)
            elif current.options is None:
                settings[ws] = current.model_copy(update={"options": global_settings.options})
    visibility = workspaces.build_visibility(membership.workspaces, settings)

    by_key: dict[tuple[str, str], list[ServiceRef]] = defaultdict(list)
    by_label: dict[tuple[str, str], list[ServiceRef]] = defaultdict(list)
    every: list[ServiceRef] = []
    per_cluster: dict[str, list[ServiceRef]] = {}
    per_workspace: dict[str, list[ServiceRef]] = defaultdict(list)
    for name in sorted(usable):
        refs = per_cluster[name] = []
        for service in usable[name].services:
            ref = ServiceRef(name, service, membership.owner_of(name, service.namespace))
            every.append(ref)
            refs.append(ref)
            if ref.workspace is not None:
                per_workspace[ref.workspace].append(ref)
            by_key[(service.namespace, service.name)].append(ref)
            for item in service.labels.items():
                by_label[item].append(ref)
    return Context(
        bundle=bundle,
        inputs=usable,
        clusters=clusters,
        membership=membership,
        visibility=visibility,
        settings=settings,
        workspace_of=workspace_of,
        placed={kind: tuple(sorted(objs, key=lambda o: o.ref)) for kind, objs in placed.items()},
        diagnostics=diagnostics,
        placement_problems=placement_problems,
        services_by_key={k: tuple(v) for k, v in by_key.items()},
        services_at=_services_at(every),
        services_by_label={k: tuple(v) for k, v in by_label.items()},
        all_services=tuple(every),
        services_in={name: tuple(refs) for name, refs in per_cluster.items()},
        services_of_workspace={ws: tuple(refs) for ws, refs in per_workspace.items()},
        vds_by_key={(o.namespace, o.name): o for o in placed.get("VirtualDestination", ())},
    )


def _place(
    membership: workspaces.Membership,
    obj: ConfigObject[Any],
    problems: dict[ObjectRef, Diagnostic],
) -> str | None:
    ws, problem = membership.place(obj)
    if ws is None and problem is not None:
        if obj.kind == "WorkspaceSettings":
            problem = Diagnostic(Reason.WorkspaceNotFound, problem.message, obj.source, obj.ref)
        problems[obj.ref] = problem
    return ws


def placed_namespaces(bundle: Bundle) -> frozenset[tuple[str, str]]:
    """The (cluster, namespace) pairs config objects live in: part of workspace membership."""
    return frozenset((o.cluster, o.namespace) for o in bundle.objects if o.kind not in _ADMIN_KINDS)


def refresh(previous: Context, bundle: Bundle, changed: Iterable[ObjectRef]) -> Context | None:
    """The context for `bundle`, reusing `previous` where only non-global objects changed
    (same clusters, workspaces, settings, inputs and config namespaces); None when a full
    `build` is needed."""
    if placed_namespaces(bundle) != placed_namespaces(previous.bundle):
        return None
    changed = set(changed)
    if any(ref.kind in _ADMIN_KINDS or ref.kind == "WorkspaceSettings" for ref in changed):
        return None
    workspace_of = dict(previous.workspace_of)
    problems = dict(previous.placement_problems)
    kinds = {ref.kind for ref in changed}
    for ref in changed:
        workspace_of.pop(ref, None)
        problems.pop(ref, None)
        obj = bundle.by_ref.get(ref)
        if obj is not None:
            ws = _place(previous.membership, obj, problems)
            if ws is not None:
                workspace_of[ref] = ws
    placed = dict(previous.placed)
    for kind in kinds:
        placed[kind] = tuple(
            sorted((o for o in bundle.of_kind(kind) if o.ref in workspace_of), key=lambda o: o.ref)
        )
    vds = previous.vds_by_key
    if "VirtualDestination" in kinds:
        vds = {(o.namespace, o.name): o for o in placed.get("VirtualDestination", ())}
    return Context(
        bundle=bundle,
        inputs=previous.inputs,
        clusters=previous.clusters,
        membership=previous.membership,
        visibility=previous.visibility,
        settings=previous.settings,
        workspace_of=workspace_of,
        placed=placed,
        diagnostics=previous.diagnostics,
        placement_problems=problems,
        services_by_key=previous.services_by_key,
        services_at=previous.services_at,
        services_by_label=previous.services_by_label,
        all_services=previous.all_services,
        services_in=previous.services_in,
        services_of_workspace=previous.services_of_workspace,
        vds_by_key=vds,
    )


def _services_at(refs: Iterable[ServiceRef]) -> dict[tuple[str, str, str], ServiceRef]:
    found: dict[tuple[str, str, str], ServiceRef] = {}
    for ref in refs:  # the first one wins, as a scan of `services_by_key` would find it
        found.setdefault((ref.cluster, ref.service.namespace, ref.service.name), ref)
    return found
