"""The kind registry: which Gloo Platform kinds mesh-gitops reads, and with which spec model.

The loader (`gitops.loading`) looks every document's `apiVersion`/`kind` up here:
a supported (group, kind) at a supported version is validated with its spec
model; a Gloo kind listed in `KNOWN_UNSUPPORTED` (or any other kind in a Gloo
group) is reported as `UnsupportedKind`; anything else is `UnknownKind`.
Groups and kinds are those of the Gloo Platform 2.x CRDs (solo-apis
`api/gloo.solo.io/`, gloo-platform-crds chart).
"""

from __future__ import annotations

from gitops.models.admin import KubernetesClusterSpec, WorkspaceSettingsSpec, WorkspaceSpec
from gitops.models.base import GlooModel
from gitops.models.external import ExternalServiceSpec
from gitops.models.networking import RouteTableSpec, VirtualDestinationSpec, VirtualGatewaySpec
from gitops.models.policies import (
    FailoverPolicySpec,
    FaultInjectionPolicySpec,
    HeaderManipulationPolicySpec,
    OutlierDetectionPolicySpec,
    RetryTimeoutPolicySpec,
)
from gitops.models.security import AccessPolicySpec, JWTPolicySpec

__all__ = [
    "GLOO_GROUP_SUFFIX",
    "KNOWN_UNSUPPORTED",
    "SUPPORTED",
    "SUPPORTED_VERSIONS",
    "GlooModel",
    "is_gloo_group",
    "spec_model",
]

#: Every Gloo Platform API group ends with this (`networking.gloo.solo.io`, `extauth.solo.io`).
GLOO_GROUP_SUFFIX = ".solo.io"

ADMIN = "admin.gloo.solo.io"
NETWORKING = "networking.gloo.solo.io"
RESILIENCE = "resilience.policy.gloo.solo.io"
TRAFFIC_CONTROL = "trafficcontrol.policy.gloo.solo.io"
SECURITY = "security.policy.gloo.solo.io"

#: The supported kinds, all served at `v2`.
SUPPORTED: dict[tuple[str, str], type[GlooModel]] = {
    (ADMIN, "KubernetesCluster"): KubernetesClusterSpec,
    (ADMIN, "Workspace"): WorkspaceSpec,
    (ADMIN, "WorkspaceSettings"): WorkspaceSettingsSpec,
    (NETWORKING, "RouteTable"): RouteTableSpec,
    (NETWORKING, "VirtualGateway"): VirtualGatewaySpec,
    (NETWORKING, "VirtualDestination"): VirtualDestinationSpec,
    (NETWORKING, "ExternalService"): ExternalServiceSpec,
    (RESILIENCE, "RetryTimeoutPolicy"): RetryTimeoutPolicySpec,
    (RESILIENCE, "FaultInjectionPolicy"): FaultInjectionPolicySpec,
    (RESILIENCE, "FailoverPolicy"): FailoverPolicySpec,
    (RESILIENCE, "OutlierDetectionPolicy"): OutlierDetectionPolicySpec,
    (TRAFFIC_CONTROL, "HeaderManipulationPolicy"): HeaderManipulationPolicySpec,
    (SECURITY, "AccessPolicy"): AccessPolicySpec,
    (SECURITY, "JWTPolicy"): JWTPolicySpec,
}

#: Versions of the supported kinds. Some Gloo kinds exist only as `v2alpha1` (ExternalWorkload,
#: ProgressiveDelivery, InsightsConfig, ...); none of those is supported yet.
SUPPORTED_VERSIONS: frozenset[str] = frozenset({"v2"})


def _kinds(group: str, *kinds: str) -> set[tuple[str, str]]:
    return {(group, kind) for kind in kinds}


#: The other Gloo Platform 2.x kinds, so the loader can name them `UnsupportedKind`.
KNOWN_UNSUPPORTED: frozenset[tuple[str, str]] = frozenset(
    _kinds(
        ADMIN,
        "Dashboard",
        "ExtAuthServer",
        "GatewayLifecycleManager",
        "InsightsConfig",
        "IstioLifecycleManager",
        "RateLimitServerConfig",
        "RateLimitServerSettings",
        "RootTrustPolicy",
        "WaypointLifecycleManager",
    )
    | _kinds(
        "apimanagement.gloo.solo.io",
        "ApiDoc",
        "ApiProduct",
        "ApiSchemaDiscovery",
        "GraphQLResolverMap",
        "GraphQLSchema",
        "GraphQLStitchedSchema",
        "Portal",
        "PortalGroup",
    )
    | _kinds("extensions.policy.gloo.solo.io", "LuaPolicy", "WasmDeploymentPolicy")
    | _kinds("infrastructure.gloo.solo.io", "CloudProvider", "CloudResources")
    | _kinds(
        NETWORKING,
        "CloudProvider",
        "CloudResources",
        "ExternalEndpoint",
        "ExternalWorkload",
        "ProgressiveDelivery",
    )
    | _kinds("observability.policy.gloo.solo.io", "AccessLogPolicy")
    | _kinds(
        RESILIENCE,
        "ActiveHealthCheckPolicy",
        "AdaptiveRequestConcurrencyPolicy",
        "ConnectionPolicy",
        "GraphQLPersistedQueryCachePolicy",
        "ListenerConnectionPolicy",
        "TrimProxyConfigPolicy",
    )
    | _kinds(
        SECURITY,
        "CORSPolicy",
        "CSRFPolicy",
        "ClientTLSPolicy",
        "DLPPolicy",
        "ExtAuthPolicy",
        "GraphQLAllowedQueryPolicy",
        "WAFPolicy",
    )
    | _kinds(
        TRAFFIC_CONTROL,
        "HTTPBufferPolicy",
        "LoadBalancerPolicy",
        "MirrorPolicy",
        "ProxyProtocolPolicy",
        "RateLimitClientConfig",
        "RateLimitPolicy",
        "TransformationPolicy",
    )
    # Written by Gloo itself; they turn up in `kubectl get -o yaml` dumps.
    | _kinds(
        "internal.gloo.solo.io",
        "CertificateRequest",
        "DiscoveredCNI",
        "DiscoveredGateway",
        "IssuedCertificate",
        "IstioInstallation",
        "Mesh",
        "PodBounceDirective",
        "PortalConfig",
        "SpireRegistrationEntry",
        "VirtualServiceBackup",
        "XdsConfig",
    )
    # Installed by the gloo-platform-crds chart next to the Gloo kinds.
    | _kinds("extauth.solo.io", "AuthConfig")
    | _kinds("ratelimit.solo.io", "RateLimitConfig")
)


def is_gloo_group(group: str) -> bool:
    """True for Gloo API groups (`*.gloo.solo.io`, and the other `*.solo.io` groups)."""
    return group.endswith(GLOO_GROUP_SUFFIX)


def spec_model(group: str, kind: str) -> type[GlooModel] | None:
    """The spec model of a supported kind, or None."""
    return SUPPORTED.get((group, kind))
