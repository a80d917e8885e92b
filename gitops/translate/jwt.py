"""JWTPolicy: which policy verifies which route, and the Envoy `jwt_authn` config of one.

`choose` runs once per translation (from `envoy_filter.EnvoyFilters`), after routes are
flattened; `build` runs per policy and cluster while proxies are rendered (a JWKS host
depends on the cluster's domain). Rules (gloo-semantics.md 1.2, 2.4, 3.4, 3.8):

- selection is the route policies' (`route_policies.route_selected`): routes of tables in
  the policy's own workspace, wherever the table is consumed; an empty `applyToRoutes`
  selects every route, unless `applyToDestinations` is set (then none, jwt_policy.proto);
- JWT guards every route Envoy serves from a table (forwardTo, redirect, direct
  response); routes replaced by a 500 take no policy;
- one JWTPolicy per route: the earliest created wins, later ones are FAILED with Gloo's
  message ("JWTPolicy conflicts existing policy applied to route. Skipping applying
  <name>.<namespace>");
- Envoy config (envoy.extensions.filters.http.jwt_authn.v3, snake_case as Istio passes
  it through): providers keyed `<policy>.<namespace>/<provider>`, and one requirement per
  policy, keyed `<policy>.<namespace>`, that every route of the policy names;
- what cannot be enforced fails closed: a policy with `claims` or `requiredScopes`, or a
  provider reading a Secret, leaves out what it cannot check, and its routes then name a
  requirement that does not exist, which Envoy answers with 403 (`UnenforceablePolicy`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gitops import durations
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.security import JWTPolicySpec, Provider, RemoteJWKS
from gitops.reasons import Reason
from gitops.translate import routes
from gitops.translate.context import Context
from gitops.translate.route_policies import RouteKey, route_selected
from gitops.translate.routes import FlatRoute

Policy = ConfigObject[JWTPolicySpec]
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
_ALLOW = {"ALLOW_MISSING": "allow_missing", "ALLOW_MISSING_OR_FAILED": "allow_missing_or_failed"}


@dataclass
class Choice:
    """The JWTPolicy of each route, and what choosing found."""

    applied: dict[RouteKey, Policy] = field(default_factory=dict)
    #: Policy ref -> number of routes it applies to (reported as `selected`).
    counts: dict[ObjectRef, int] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def vs_route_names(flat: Iterable[FlatRoute]) -> list[tuple[FlatRoute, str]]:
    """The routes a root table's VirtualServices hold, with their names there."""
    return routes.emitted(list(flat))


def choose(ctx: Context, routes: Iterable[FlatRoute]) -> Choice:
    """Pick at most one JWTPolicy per route, earliest created first."""
    choice = Choice()
    by_workspace: dict[str, list[FlatRoute]] = {}
    seen: set[RouteKey] = set()
    for fr in routes:
        ws = ctx.workspace_of.get(fr.table.ref)
        if fr.key in seen or ws is None or fr.replaced is not None:
            continue
        if fr.route.delegate is not None or fr.route.graphql is not None:
            continue
        seen.add(fr.key)
        by_workspace.setdefault(ws, []).append(fr)
    for policy in sorted(ctx.of_kind("JWTPolicy"), key=ConfigObject.age_key):
        spec: JWTPolicySpec = policy.spec
        choice.diagnostics.extend(checks(policy))
        ws = ctx.workspace_of[policy.ref]
        selected: list[FlatRoute] = []
        if spec.apply_to_routes or not spec.apply_to_destinations:
            selected = [
                r
                for r in by_workspace.get(ws, ())
                if route_selected(ctx, spec.apply_to_routes, r, ws)
            ]
        applied = 0
        conflicted = False
        for fr in selected:
            if fr.key in choice.applied:
                conflicted = True
                continue
            choice.applied[fr.key] = policy
            applied += 1
        choice.counts[policy.ref] = applied
        if conflicted:
            choice.diagnostics.append(
                Diagnostic(
                    Reason.PolicyConflict,
                    "JWTPolicy conflicts existing policy applied to route. Skipping applying "
                    f"{policy.name}.{policy.namespace}",
                    policy.source,
                    policy.ref,
                )
            )
        elif not selected and not spec.apply_to_destinations:
            choice.diagnostics.append(
                Diagnostic(
                    Reason.NothingSelected,
                    f"JWTPolicy selects no route in workspace {ws}",
                    policy.source,
                    policy.ref,
                    "spec.applyToRoutes",
                )
            )
    return choice


def checks(policy: Policy) -> list[Diagnostic]:
    """What a policy asks for that cannot be enforced, or only in part (cluster-independent;
    plain unsupported fields are in `unsupported.NOT_TRANSLATED`)."""
    spec = policy.spec
    found: list[Diagnostic] = []

    def report(reason: Reason, where: str, message: str) -> None:
        found.append(Diagnostic(reason, message, policy.source, policy.ref, where))

    config = spec.config
    for what, value in (("claims", config.claims), ("requiredScopes", config.required_scopes)):
        if value:
            report(
                Reason.UnenforceablePolicy,
                f"spec.config.{what}",
                f"{what} cannot be checked by Envoy's jwt_authn filter in this version; "
                "the policy's routes deny every request (403) instead of skipping the check",
            )
    for name, provider in sorted(config.providers.items()):
        where = f"spec.config.providers.{name}"
        if provider.local is not None and provider.local.secret_ref is not None:
            report(
                Reason.UnenforceablePolicy,
                f"{where}.local.secretRef",
                "JWKS from a Secret is not translated yet (Secrets are not read); tokens of "
                "this provider are refused",
            )
        for i, claim in enumerate(provider.claims_to_headers):
            if claim.append:
                report(
                    Reason.UnsupportedField,
                    f"{where}.claimsToHeaders[{i}].append",
                    "Envoy replaces the header with the claim; appending is not translated",
                )
    return found


def requirement_key(policy: Policy) -> str:
    """The requirement every route of the policy names (`name.namespace` cannot collide:
    namespaces hold no dots)."""
    return f"{policy.name}.{policy.namespace}"


def provider_key(policy: Policy, provider: str) -> str:
    return f"{requirement_key(policy)}/{provider}"


@dataclass(frozen=True)
class PolicyConfig:
    """One policy's share of a proxy's `JwtAuthentication`, for one cluster."""

    policy: Policy
    providers: dict[str, Any]
    #: None when the policy cannot be enforced: its routes name a missing requirement.
    requirement: dict[str, Any] | None
    problems: tuple[Diagnostic, ...] = ()


def build(ctx: Context, policy: Policy, cluster: str) -> PolicyConfig:
    """The Envoy providers and requirement of a policy in one cluster."""
    config = policy.spec.config
    providers: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for name, provider in sorted(config.providers.items()):
        built = _provider(ctx, policy, name, provider, cluster, problems)
        if built is not None:
            providers[provider_key(policy, name)] = built
    requirement: dict[str, Any] | None = None
    if providers and not config.claims and not config.required_scopes:
        names = [{"provider_name": key} for key in providers]
        mode = config.effective_validation_policy()
        if mode == "REQUIRE_VALID":
            requirement = names[0] if len(names) == 1 else {"requires_any": {"requirements": names}}
        else:
            requirement = {"requires_any": {"requirements": [*names, {_ALLOW[mode]: {}}]}}
    return PolicyConfig(policy, providers, requirement, tuple(problems))


def _provider(
    ctx: Context,
    policy: Policy,
    name: str,
    p: Provider,
    cluster: str,
    problems: list[Diagnostic],
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if p.issuer:
        out["issuer"] = p.issuer
    if p.audiences:
        out["audiences"] = list(p.audiences)
    if p.local is not None:
        if p.local.inline is None:
            return None  # a Secret: reported by `checks`
        out["local_jwks"] = {"inline_string": p.local.inline}
    elif p.remote is not None:
        r = p.remote
        where = f"spec.config.providers.{name}.remote.destinationRef"
        remote: dict[str, Any] = {
            "cache_duration": durations.to_proto(r.cache_duration),
            "http_uri": {
                "cluster": _jwks_cluster(ctx, policy, r, cluster, where, problems),
                "timeout": durations.to_proto(r.timeout),
                "uri": r.url,
            },
        }
        if r.enable_async_fetch:
            remote["async_fetch"] = {}
        out["remote_jwks"] = remote
    if p.token_source is not None:
        headers = [
            {"name": h.name, **({"value_prefix": h.prefix} if h.prefix else {})}
            for h in p.token_source.headers
        ]
        if headers:
            out["from_headers"] = headers
        if p.token_source.query_params:
            out["from_params"] = list(p.token_source.query_params)
    if p.claims_to_headers:
        out["claim_to_headers"] = [
            {"claim_name": c.claim, "header_name": c.header} for c in p.claims_to_headers
        ]
    mode = policy.spec.config.clear_route_cache
    # Gloo's AUTO clears the route cache when claims become headers (routes may match them).
    if mode == "TRUE" or (mode == "AUTO" and p.claims_to_headers):
        out["clear_route_cache"] = True
    if p.keep_token:
        out["forward"] = True
    if p.output_payload_to_header:
        out["forward_payload_header"] = p.output_payload_to_header
    out["clock_skew_seconds"] = p.clock_skew_seconds
    return out


def _jwks_cluster(
    ctx: Context,
    policy: Policy,
    remote: RemoteJWKS,
    cluster: str,
    where: str,
    problems: list[Diagnostic],
) -> str:
    """Istio's cluster name for the JWKS server: `outbound|<port>||<host>`, from the
    `destinationRef` when set, else from the URL (a ServiceEntry must then exist)."""
    url = urlsplit(remote.url)
    url_port = url.port or (443 if url.scheme == "https" else 80)
    fallback = f"outbound|{url_port}||{url.hostname}"
    dest = remote.destination_ref
    if dest is None:
        return fallback
    ns = dest.ref.namespace or policy.namespace
    wanted = dest.port

    def problem(reason: Reason, message: str) -> str:
        problems.append(Diagnostic(reason, message, policy.source, policy.ref, where, cluster))
        return fallback

    if dest.kind == "SERVICE":
        found = ctx.service_in(cluster, (ns, dest.ref.name))
        host = f"{dest.ref.name}.{ns}.svc.{ctx.cluster_domain(cluster)}"
        if not found or dest.ref.cluster not in (None, cluster):
            problems.append(
                Diagnostic(
                    Reason.DestinationNotInCluster,
                    f"JWKS Service {ns}/{dest.ref.name} is not in this cluster; fetching the "
                    "keys will fail and tokens of this provider are refused",
                    policy.source,
                    policy.ref,
                    where,
                    cluster,
                )
            )
        number: int | None = url_port
        if wanted is not None:
            port = found.service.port(wanted.number, wanted.name) if found else None
            number = wanted.number or (port.port if port else None)
        if number is None:
            return problem(
                Reason.DestinationPortNotFound,
                f"JWKS Service {ns}/{dest.ref.name} has no port named "
                f"{wanted.name if wanted else ''}",
            )
        return f"outbound|{number}||{host}"
    if dest.kind == "VIRTUAL_DESTINATION":
        vd = ctx.virtual_destination(ns, dest.ref.name)
        if vd is None:
            return problem(
                Reason.DestinationNotFound,
                f"JWKS VirtualDestination {ns}/{dest.ref.name} not found",
            )
        # A VirtualDestination port's name is `{protocol}-{number}` (kinds.md).
        vd_ports = [(f"{p.protocol.lower()}-{p.number}", p.number) for p in vd.spec.ports]
        host = vd.spec.hosts[0]
    else:
        es = next(
            (
                o
                for o in ctx.of_kind("ExternalService")
                if (o.namespace, o.name) == (ns, dest.ref.name)
            ),
            None,
        )
        if es is None or not es.spec.hosts:
            return problem(
                Reason.DestinationNotFound,
                f"JWKS ExternalService {ns}/{dest.ref.name} not found (or it has no host)",
            )
        vd_ports = [(p.name or "", p.number) for p in es.spec.ports]
        host = es.spec.hosts[0]
    chosen = next(
        (
            n
            for label, n in vd_ports
            if wanted is None or wanted.number == n or (wanted.name and wanted.name == label)
        ),
        None,
    )
    if chosen is None:
        return problem(
            Reason.DestinationPortNotFound,
            f"JWKS {dest.kind} {ns}/{dest.ref.name} has no port {wanted.number or wanted.name}"
            if wanted
            else "",
        )
    return f"outbound|{chosen}||{host}"
