"""Spec models of the security policies: AccessPolicy and JWTPolicy.

`security.policy.gloo.solo.io/v2`, from solo-apis `api/gloo.solo.io/policy/v2/security/
{access_policy,jwt_policy}.proto` (and `common/v2/{selectors,phase,enforcement_layers}.proto`);
field names are the protos' JSON names. The loader validates `spec` with these; the
AuthorizationPolicy/PeerAuthentication translator (gloo-semantics.md 3.6) and the JWT
EnvoyFilter translator (section 6) read them. The rules enforced are the protos'
documented constraints; anything Gloo accepts but does not act on is accepted here too
and left to the translators.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from gitops.models.admin import EnforcementLayers
from gitops.models.base import GlooModel, Labels
from gitops.models.common import (
    DestinationReference,
    DestinationSelector,
    MsDuration,
    ObjectReference,
    ObjectSelector,
    RouteSelector,
    at_most_one,
    exactly_one,
)

# -- shared value rules ----------------------------------------------------------------------


def _ip_block(value: str) -> str:
    # access_policy.proto: "Single IP addresses (e.g. 1.2.3.4) and CIDRs (e.g. 1.2.3.0/24) are
    # supported". Host bits may be set (`1.2.3.4/24`), as Istio's own validation allows.
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4/IPv6 address or CIDR (e.g. '10.0.0.1', '10.0.0.0/8')"
        ) from None
    return value


#: An IPv4/IPv6 address or CIDR block.
IpBlock = Annotated[str, AfterValidator(_ip_block)]


def _allowed_path(value: str) -> str:
    # access_policy.proto `allowedPaths`: "Exact match, prefix match, and suffix match are
    # supported": `/books/review`, `/books*`, `*books/` (Istio adds a lone `*`: any path).
    if not value:
        raise ValueError("an allowed path must not be empty")
    if value == "*" or "*" not in value:
        return value
    inner = value[1:] if value.startswith("*") else value[:-1]
    if "*" in inner or not (value.startswith("*") or value.endswith("*")):
        raise ValueError(
            f"path {value!r}: '*' may only open (suffix match, '*/reviews') or close "
            "(prefix match, '/api/*') the path, once"
        )
    return value


#: An `allowedPaths` entry: exact, `prefix*`, `*suffix` or `*`.
AllowedPath = Annotated[str, AfterValidator(_allowed_path)]

# RFC 9110 `token`: the characters of a method name.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _http_method(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP method name")
    if value != value.upper():
        # Methods are case-sensitive; Envoy compares them verbatim, so `get` never matches.
        raise ValueError(f"HTTP methods are case-sensitive and upper case: write {value.upper()!r}")
    return value


#: An upper-case HTTP method name (`GET`, `POST`, ...).
HttpMethod = Annotated[str, AfterValidator(_http_method)]

# -- AccessPolicy (access_policy.proto) ------------------------------------------------------


class WorkloadObjectSelector(GlooModel):
    """`NamespaceWorkloadSelector.ObjectSelector`: like ObjectSelector, without `name`."""

    labels: Labels = Field(default_factory=dict)
    namespace: str | None = None
    cluster: str | None = None
    workspace: str | None = None


class NamespaceWorkloadSelector(GlooModel):
    """Selects workloads by labels within namespaces; `{}` selects every workload visible."""

    selector: WorkloadObjectSelector | None = None


class RequestIdentityMatcher(GlooModel):
    """selectors.proto `IdentitySelector.RequestIdentityMatcher`: JWT `iss/sub` identities."""

    request_principals: list[str] = Field(default_factory=list)
    not_request_principals: list[str] = Field(default_factory=list)


class IdentitySelector(GlooModel):
    """selectors.proto `IdentitySelector`: client identities; set fields are ANDed.

    A single empty selector (`{}`) allows every client identity.
    """

    service_account_selector: ObjectSelector | None = None
    external_workload_selector: ObjectSelector | None = None
    request_identity_matcher: RequestIdentityMatcher | None = None


class HeaderValues(GlooModel):
    """A header condition: any of `values` must match, none of `notValues` (`*` globs)."""

    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Self:
        # access_policy.proto HeaderValues: "At least one of `values` or `notValues` must be set."
        if not self.values and not self.not_values:
            raise ValueError("set 'values', 'notValues' or both")
        return self


class RequestSpec(GlooModel):
    """Request conditions; `headers` maps a header name to its value condition."""

    headers: dict[str, HeaderValues] = Field(default_factory=dict)


class MatchSpec(GlooModel):
    request: RequestSpec | None = None


class AuthzEntry(GlooModel):
    """One allow rule (proto `Config.Authorization`); the set fields are ANDed.

    Empty lists allow anything. With `applyToWorkloads`, an entry `{}` in `authzList`
    allows no request (a fallback that denies what other entries do not allow).
    """

    allowed_clients: list[IdentitySelector] = Field(default_factory=list)
    allowed_paths: list[AllowedPath] = Field(default_factory=list)
    allowed_methods: list[HttpMethod] = Field(default_factory=list)
    match: MatchSpec | None = None
    allowed_ip_blocks: list[IpBlock] = Field(default_factory=list)
    allowed_remote_ip_blocks: list[IpBlock] = Field(default_factory=list)
    # Istio `istio.io/dry-run`: logged, not enforced (L7 only).
    dry_run: bool = False


TLSMode = Literal["DISABLE", "PERMISSIVE", "STRICT"]


class Authentication(GlooModel):
    """How clients authenticate; under service isolation the mode is always STRICT."""

    # Enum value 0 is DISABLE.
    tls_mode: TLSMode = "DISABLE"


class AccessPolicyConfig(GlooModel):
    """Authentication and the allow rules (entries of `authzList` are ORed).

    `authz` is deprecated and ignored when `authzList` is set (not refused here);
    read `effective_authz()`.
    """

    authn: Authentication | None = None
    authz: AuthzEntry | None = None
    enforcement_layers: EnforcementLayers | None = None
    authz_list: list[AuthzEntry] = Field(default_factory=list)

    def effective_authz(self) -> list[AuthzEntry]:
        """The allow rules Gloo uses: `authzList`, else the deprecated single `authz`."""
        if self.authz_list:
            return list(self.authz_list)
        return [self.authz] if self.authz is not None else []


class AccessPolicySpec(GlooModel):
    """Destination/workload policy: AuthorizationPolicies and PeerAuthentications (3.6).

    `applyToDestinations` is ignored when `applyToWorkloads` is non-empty; both empty
    selects every port of every destination in the workspace. VirtualDestinations are
    documented as unsupported destinations (accepted here, left to the translator).
    Several AccessPolicies on one destination add up.
    """

    apply_to_destinations: list[DestinationSelector] = Field(default_factory=list)
    apply_to_workloads: list[NamespaceWorkloadSelector] = Field(default_factory=list)
    config: AccessPolicyConfig = Field(default_factory=AccessPolicyConfig)


# -- JWTPolicy (jwt_policy.proto) ------------------------------------------------------------

_INT32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
_UINT32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Phase(GlooModel):
    """phase.proto `PrioritizedPhase.Phase`: lower priorities run first (Int32Value, 0)."""

    priority: _INT32 | None = None


class PrioritizedPhase(GlooModel):
    """phase.proto: before or after authorization (`oneof phase`); unset is `preAuthz`."""

    pre_authz: Phase | None = None
    post_authz: Phase | None = None

    @model_validator(mode="after")
    def _one_phase(self) -> Self:
        at_most_one(self, "pre_authz", "post_authz")
        return self


class TokenHeader(GlooModel):
    """`TokenSource.fromHeader`: the token follows `prefix` (e.g. `Bearer `) in a header."""

    name: NonEmpty
    prefix: str | None = None


class TokenSource(GlooModel):
    """Where the JWT is read; unset means `Authorization: Bearer` then `access_token`."""

    headers: list[TokenHeader] = Field(default_factory=list)
    query_params: list[NonEmpty] = Field(default_factory=list)


class SecretRef(GlooModel):
    """`LocalJWKS.SecretRef`: the key of a Secret that holds the PEM public key."""

    # Proto field `objectRef` (already camelCase in the proto).
    object_ref: ObjectReference
    key: NonEmpty


class LocalJWKS(GlooModel):
    """Keys from a Secret or inline (`oneof specifier`)."""

    secret_ref: SecretRef | None = None
    inline: NonEmpty | None = None

    @model_validator(mode="after")
    def _one_specifier(self) -> Self:
        exactly_one(self, "secret_ref", "inline")
        return self


def _jwks_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"JWKS url {value!r} must be an http(s) URL with a host, "
            "e.g. 'https://idp.example.com/.well-known/jwks.json'"
        )
    return value


class RemoteJWKS(GlooModel):
    """Keys fetched from a JWKS server; `destinationRef` is the Service/VD/ES serving it."""

    url: Annotated[str, AfterValidator(_jwks_url)]
    destination_ref: DestinationReference | None = None
    # Defaults from the proto comments: cache 5 minutes, fetch timeout 5 seconds.
    cache_duration: MsDuration = 300_000_000_000
    timeout: MsDuration = 5_000_000_000
    enable_async_fetch: bool = False


class ClaimsToHeader(GlooModel):
    """Copy a claim into a request header; `append` adds to an existing header."""

    claim: NonEmpty
    header: NonEmpty
    append: bool = False


class Provider(GlooModel):
    """A JWT issuer and how its tokens are verified; keys: `local` or `remote` (required)."""

    issuer: str | None = None
    audiences: list[str] = Field(default_factory=list)
    token_source: TokenSource | None = None
    local: LocalJWKS | None = None
    remote: RemoteJWKS | None = None
    claims_to_headers: list[ClaimsToHeader] = Field(default_factory=list)
    keep_token: bool = False
    # UInt32Value; unset means 60 seconds.
    clock_skew_seconds: _UINT32 = 60
    output_payload_to_header: str | None = None

    @model_validator(mode="after")
    def _one_jwks_source(self) -> Self:
        # jwt_policy.proto: "Required: Where to find the public keys" (`oneof jwks_source`).
        exactly_one(self, "local", "remote")
        return self


class ClaimMatcher(GlooModel):
    """A required claim: any of `values`, none of `notValues` (`*` globs)."""

    key: NonEmpty
    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list)
    nested_claim_delimiter: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        # jwt_policy.proto ClaimMatcher: "You must set at least one of values or not_values".
        if not self.values and not self.not_values:
            raise ValueError(f"claim {self.key!r}: set 'values', 'notValues' or both")
        return self


ValidationPolicy = Literal["REQUIRE_VALID", "ALLOW_MISSING", "ALLOW_MISSING_OR_FAILED"]


class JWTConfig(GlooModel):
    """Providers (keyed by a free name) and what a request must prove."""

    # [I] a policy without a provider can verify nothing; Gloo's proto does not say.
    providers: Annotated[dict[str, Provider], Field(min_length=1)]
    phase: PrioritizedPhase | None = None
    # Deprecated by `validationPolicy`; see `effective_validation_policy()`.
    allow_missing_or_failed: bool = False
    clear_route_cache: Literal["AUTO", "FALSE", "TRUE"] = "AUTO"
    claims: list[ClaimMatcher] = Field(default_factory=list)
    required_scopes: list[str] = Field(default_factory=list)
    validation_policy: ValidationPolicy = "REQUIRE_VALID"

    def effective_validation_policy(self) -> ValidationPolicy:
        """`validationPolicy`, unless it is REQUIRE_VALID and `allowMissingOrFailed` is true.

        jwt_policy.proto: ALLOW_MISSING(_OR_FAILED) takes precedence over the deprecated
        flag; the flag set to true takes precedence over REQUIRE_VALID.
        """
        if self.validation_policy == "REQUIRE_VALID" and self.allow_missing_or_failed:
            return "ALLOW_MISSING_OR_FAILED"
        return self.validation_policy


class JWTPolicySpec(GlooModel):
    """Route (and destination) policy: JWT verification on the selected routes.

    `applyToRoutes` empty: every route of the workspace, unless `applyToDestinations` is
    set, in which case no route. `applyToDestinations` empty: no destination
    (jwt_policy.proto; only Kubernetes Services are supported as destinations).
    """

    apply_to_routes: list[RouteSelector] = Field(default_factory=list)
    apply_to_destinations: list[DestinationSelector] = Field(default_factory=list)
    config: JWTConfig
