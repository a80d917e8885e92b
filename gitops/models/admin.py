"""Spec models of the admin kinds: KubernetesCluster, Workspace, WorkspaceSettings.

`admin.gloo.solo.io/v2`, from solo-apis `api/gloo.solo.io/admin/v2/{kubernetes_cluster,
workspace,workspace_settings}.proto` (and `common/v2/selectors.proto` `ClusterSelector`).
The loader validates `spec` with these; workspace placement and import/export
(gloo-semantics.md section 2) and the option translators read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from gitops.models.base import GlooModel, Labels, Port
from gitops.models.common import ClientMode, ObjectSelector, PortSelector, WorkspaceSelector

# -- KubernetesCluster -----------------------------------------------------------------------


class KubernetesClusterSpec(GlooModel):
    """A registered workload cluster; `metadata.name` is the cluster's identity."""

    cluster_domain: str = "cluster.local"
    # Exclude the cluster from safe mode (section 5.6).
    skip_warming: bool = False

    @field_validator("cluster_domain")
    @classmethod
    def _default_domain(cls, value: str) -> str:
        # proto3 string: "" is indistinguishable from unset, which means cluster.local.
        return value or "cluster.local"


# -- Workspace -------------------------------------------------------------------------------


def _config_enabled_problem(flags: Sequence[bool | None], what: str) -> str | None:
    # selectors.proto ClusterSelector.config_enabled: "If you explicitly set this field ... you
    # must also explicitly set the field for every other" sibling.
    set_at = [i for i, flag in enumerate(flags) if flag is not None]
    if set_at and len(set_at) != len(flags):
        unset = [i for i, flag in enumerate(flags) if flag is None]
        return (
            f"'configEnabled' is set on {what} {set_at} but not on {unset}; "
            f"once it is set on one {what[:-1]} it must be set on all of them"
        )
    return None


class NamespaceSelector(GlooModel):
    """Namespaces of the selected clusters: `name` (glob `*`) AND `labels`."""

    name: str | None = None
    labels: Labels = Field(default_factory=dict)
    # Unset means true, unless a sibling sets it (see `_config_enabled_problem`).
    config_enabled: bool | None = None


class WorkloadClusterSelector(GlooModel):
    """One `workloadClusters` entry (proto `common.gloo.solo.io.ClusterSelector`).

    Clusters by `name` (glob `*`) AND by the labels of their KubernetesCluster.
    """

    name: str | None = None
    selector: Labels = Field(default_factory=dict)
    namespaces: list[NamespaceSelector] = Field(default_factory=list)
    config_enabled: bool | None = None

    @model_validator(mode="after")
    def _config_enabled_everywhere(self) -> Self:
        problem = _config_enabled_problem(
            [ns.config_enabled for ns in self.namespaces], "namespaces"
        )
        if problem:
            raise ValueError(problem)
        return self


class WorkspaceSpec(GlooModel):
    """No `workloadClusters` is valid: a workspace without clusters (policy-only)."""

    workload_clusters: list[WorkloadClusterSelector] = Field(default_factory=list)

    @model_validator(mode="after")
    def _config_enabled_everywhere(self) -> Self:
        problem = _config_enabled_problem(
            [c.config_enabled for c in self.workload_clusters], "workloadClusters"
        )
        if problem:
            raise ValueError(problem)
        return self


# -- WorkspaceSettings -----------------------------------------------------------------------

ObjectKind = Literal[
    "ALL",
    "ROUTE_TABLE",
    "SERVICE",
    "VIRTUAL_DESTINATION",
    "EXTERNAL_SERVICE",
    "API_DOC",
    "GRAPHQL_RESOLVER_MAP",
    "GRAPHQL_SCHEMA",
    "GRAPHQL_STITCHED_SCHEMA",
    "EXTERNAL_WORKLOAD",
]


class TypedObjectSelector(GlooModel):
    """Resources to import or export; name, namespace and cluster match exactly."""

    kind: ObjectKind = "ALL"
    labels: Labels = Field(default_factory=dict)
    name: str | None = None
    namespace: str | None = None
    cluster: str | None = None


class ImportExportEntry(GlooModel):
    """An `importFrom`/`exportTo` entry (proto `WorkspaceObjectSelector`)."""

    workspaces: list[WorkspaceSelector] = Field(default_factory=list)
    resources: list[TypedObjectSelector] = Field(default_factory=list)


class EnforcementLayers(GlooModel):
    """enforcement_layers.proto: which layers enforce service isolation."""

    cni: bool = False
    mesh: bool = False


class ServiceIsolation(GlooModel):
    """Allow only the owning and importing workspaces to reach the workspace's services."""

    enabled: bool = False
    # BoolValue: unset and false differ (section 2.7).
    trim_proxy_config: bool | None = None
    enforcement_layers: EnforcementLayers | None = None


class Federation(GlooModel):
    """Generated global hostnames for the selected services (section 4.4)."""

    enabled: bool = False
    host_suffix: str | None = None
    service_selector: list[ObjectSelector] = Field(default_factory=list)
    ports: list[PortSelector] = Field(default_factory=list)


class HostInfo(GlooModel):
    """An address that reaches an east-west gateway, overriding the discovered one."""

    addr: str | None = None
    port: Port | None = None
    port_type: Literal["SNI_PASSTHROUGH", "TLS_TERMINATION"] = "SNI_PASSTHROUGH"


class EastWestGatewaySelector(GlooModel):
    """An east-west gateway; `port` defaults to the port named `tls`, the other to `https`."""

    selector: ObjectSelector | None = None
    port: PortSelector | None = None
    tls_termination_port: PortSelector | None = None
    host_info_overrides: list[HostInfo] = Field(default_factory=list)


class WorkspaceSettingsOptions(GlooModel):
    """Workspace-wide options (proto `WorkspaceSettingsSpec.Options`)."""

    service_isolation: ServiceIsolation | None = None
    federation: Federation | None = None
    east_west_gateways: list[EastWestGatewaySelector] = Field(default_factory=list)
    # Unset means `auto` (SNI passthrough at the east-west gateway).
    virtual_dest_client_mode: ClientMode | None = None
    trim_all_proxy_config: bool = False


class WorkspaceSettingsSpec(GlooModel):
    """Import/export and options of one workspace (or all, when named `global`)."""

    import_from: list[ImportExportEntry] = Field(default_factory=list)
    export_to: list[ImportExportEntry] = Field(default_factory=list)
    options: WorkspaceSettingsOptions | None = None
