"""Route policies: which RetryTimeout, FaultInjection and HeaderManipulation policy
applies to which route, and what each adds to the Istio HTTPRoute.

Runs once per translation (cluster-independent), after flattening, before
VirtualServices are built. Rules (gloo-semantics.md 1.2, 2.4, 3.4, 3.8):

- a policy applies only to routes of tables in its own workspace; it stays on the
  route wherever the table is consumed (imported tables carry their policies);
- `applyToRoutes` selectors match a route's labels or its table's labels, plus
  namespace, cluster and workspace; `withDestinations` matches routes forwarding
  to a selected destination; an empty list selects every route of the workspace;
- one policy of each kind per route: the earliest created wins, later ones are
  FAILED with Gloo's message ("RetryTimeoutPolicy conflicts existing policy
  applied to route. Skipping applying <name>.<namespace>").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops import durations
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.common import DestinationSelector, PortSelector, RouteSelector
from gitops.models.policies import (
    FaultInjectionPolicySpec,
    HeaderManipulationPolicySpec,
    RetryTimeoutPolicySpec,
)
from gitops.reasons import Reason
from gitops.selectors import Target, labels_match, object_match
from gitops.translate.context import Context
from gitops.translate.routes import FlatRoute

ROUTE_POLICY_KINDS = ("RetryTimeoutPolicy", "FaultInjectionPolicy", "HeaderManipulationPolicy")
RouteKey = tuple[ObjectRef, int]


@dataclass
class RoutePolicies:
    """Policies chosen per route: `applied[route key][kind] = policy`."""

    applied: dict[RouteKey, dict[str, ConfigObject[Any]]] = field(default_factory=dict)
    #: For a HeaderManipulationPolicy chosen through `applyToRouteDestinations`: the indexes
    #: of the route's destinations it applies to.
    header_destinations: dict[RouteKey, frozenset[int]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Policy ref -> number of routes it applies to (reported as `selected`).
    counts: dict[ObjectRef, int] = field(default_factory=dict)
    #: The same, per workspace (what `choose` can reuse).
    chunks: dict[str, RoutePolicies] = field(default_factory=dict)

    @classmethod
    def assemble(cls, chunks: dict[str, RoutePolicies]) -> RoutePolicies:
        whole = cls(chunks=chunks)
        for chunk in chunks.values():
            whole.applied.update(chunk.applied)
            whole.header_destinations.update(chunk.header_destinations)
            whole.diagnostics.extend(chunk.diagnostics)
            whole.counts.update(chunk.counts)
        return whole

    def for_route(self, key: RouteKey) -> Mapping[str, ConfigObject[Any]]:
        return self.applied.get(key, {})


def _port_match(selector: PortSelector | None, number: int | None, name: str | None) -> bool:
    if selector is None:
        return True
    if selector.number is not None:
        return selector.number == number
    return selector.name == name


def selected_destinations(
    ctx: Context, selector: DestinationSelector, route: FlatRoute
) -> set[int]:
    """Indexes of the route's forwardTo destinations that a DestinationSelector selects."""
    found: set[int] = set()
    for j, dest in enumerate(route.destinations):
        if dest.kind != selector.kind:
            continue
        namespace = dest.ref.namespace or route.table.namespace
        labels: Mapping[str, str] = {}
        cluster = dest.ref.cluster or ""
        workspace = None
        if dest.kind == "SERVICE":
            refs = ctx.services_by_key.get((namespace, dest.ref.name), ())
            if refs:
                labels, workspace = refs[0].service.labels, refs[0].workspace
                cluster = cluster or refs[0].cluster
        else:
            vd = ctx.virtual_destination(namespace, dest.ref.name)
            if vd is not None:
                labels, workspace = vd.labels, ctx.workspace_of.get(vd.ref)
                cluster = cluster or vd.cluster
        target = Target(dest.ref.name, namespace, cluster, workspace, labels)
        port = dest.port
        if object_match(selector.selector, target) and _port_match(
            selector.port, port.number if port else None, port.name if port else None
        ):
            found.add(j)
    return found


def route_selected(
    ctx: Context, selectors: Iterable[RouteSelector], route: FlatRoute, workspace: str
) -> bool:
    """Does any RouteSelector select this route? (Empty list: every route.)"""
    selectors = list(selectors)
    if not selectors:
        return True
    table = route.table
    for s in selectors:
        if s.route is not None:
            r = s.route
            if (
                (r.namespace is None or r.namespace == table.namespace)
                and (r.cluster is None or r.cluster == table.cluster)
                and (r.workspace is None or r.workspace == workspace)
                and (
                    labels_match(r.labels, route.route.labels)
                    or labels_match(r.labels, table.labels)
                )
            ):
                return True
        elif s.with_destinations is not None and selected_destinations(
            ctx, s.with_destinations, route
        ):
            return True
    return False


def choose(
    ctx: Context,
    routes: Iterable[FlatRoute],
    previous: RoutePolicies | None = None,
    stale: set[str] | None = None,
) -> RoutePolicies:
    """Pick, for every route, at most one policy of each route-policy kind.

    Choices are independent per workspace (policies never cross workspaces), so with
    `previous` only the `stale` workspaces are chosen again; the others are reused.
    """
    by_workspace: dict[str, list[FlatRoute]] = defaultdict(list)
    seen: set[RouteKey] = set()
    for route in routes:
        if route.key in seen:
            continue
        seen.add(route.key)
        ws = ctx.workspace_of.get(route.table.ref)
        # Route policies shape forwarded traffic; redirects and direct responses take none
        # (Istio refuses e.g. `fault` next to `redirect`).
        if ws is not None and route.route.forward_to is not None:
            by_workspace[ws].append(route)
    policies: dict[str, list[ConfigObject[Any]]] = defaultdict(list)
    for kind in ROUTE_POLICY_KINDS:
        for policy in sorted(ctx.of_kind(kind), key=ConfigObject.age_key):
            policies[ctx.workspace_of[policy.ref]].append(policy)
    chunks: dict[str, RoutePolicies] = {}
    for ws in sorted(by_workspace.keys() | policies.keys()):
        if previous is not None and stale is not None and ws not in stale:
            if ws in previous.chunks:
                chunks[ws] = previous.chunks[ws]
            continue
        chunks[ws] = _choose_in(ctx, ws, by_workspace.get(ws, []), policies.get(ws, []))
    return RoutePolicies.assemble(chunks)


def _choose_in(
    ctx: Context, ws: str, routes: list[FlatRoute], policies: list[ConfigObject[Any]]
) -> RoutePolicies:
    result = RoutePolicies()
    for policy in policies:  # by kind, then oldest first: the order conflicts are decided in
        kind = policy.kind
        selected = [r for r in routes if route_selected(ctx, policy.spec.apply_to_routes, r, ws)]
        on_destinations: dict[RouteKey, frozenset[int]] = {}
        if kind == "HeaderManipulationPolicy" and policy.spec.apply_to_route_destinations:
            selected = []
            for r in routes:
                indexes: set[int] = set()
                for sel in policy.spec.apply_to_route_destinations:
                    if sel.route is not None and not route_selected(
                        ctx, [RouteSelector(route=sel.route)], r, ws
                    ):
                        continue
                    for d in sel.on_destinations:
                        indexes |= selected_destinations(ctx, d, r)
                if indexes:
                    selected.append(r)
                    on_destinations[r.key] = frozenset(indexes)
        applied = 0
        conflicted = False
        for route in selected:
            chosen = result.applied.setdefault(route.key, {})
            if kind in chosen:
                conflicted = True
                continue
            chosen[kind] = policy
            if route.key in on_destinations:
                result.header_destinations[route.key] = on_destinations[route.key]
            applied += 1
        result.counts[policy.ref] = applied
        if conflicted:
            result.diagnostics.append(
                Diagnostic(
                    Reason.PolicyConflict,
                    f"{kind} conflicts existing policy applied to route. Skipping applying "
                    f"{policy.name}.{policy.namespace}",
                    policy.source,
                    policy.ref,
                )
            )
        elif not selected:
            result.diagnostics.append(
                Diagnostic(
                    Reason.NothingSelected,
                    f"{kind} selects no route in workspace {ws}",
                    policy.source,
                    policy.ref,
                    "spec.applyToRoutes",
                )
            )
    return result


def decorate(
    route: dict[str, Any],
    policies: Mapping[str, ConfigObject[Any]],
    header_destinations: frozenset[int] | None = None,
) -> None:
    """Add the chosen policies' fields to an Istio HTTPRoute dict (in place, while building).

    `header_destinations`: with `applyToRouteDestinations`, the destinations (by index) that
    get the headers; otherwise the headers go on the route.
    """
    retry = policies.get("RetryTimeoutPolicy")
    if retry is not None:
        spec: RetryTimeoutPolicySpec = retry.spec
        if spec.config.request_timeout is not None:
            route["timeout"] = durations.to_proto(spec.config.request_timeout)
        r = spec.config.retries
        if r is not None:
            retries: dict[str, Any] = {"attempts": r.attempts}
            if r.per_try_timeout is not None:
                retries["perTryTimeout"] = durations.to_proto(r.per_try_timeout)
            if r.retry_on:
                retries["retryOn"] = r.retry_on
            if r.retry_remote_localities is not None:
                retries["retryRemoteLocalities"] = r.retry_remote_localities
            route["retries"] = retries
    fault = policies.get("FaultInjectionPolicy")
    if fault is not None:
        fspec: FaultInjectionPolicySpec = fault.spec
        out: dict[str, Any] = {}
        if fspec.config.delay is not None:
            d = fspec.config.delay
            out["delay"] = {
                "fixedDelay": durations.to_proto(d.fixed_delay),
                "percentage": {"value": _number(d.percentage)},
            }
        if fspec.config.abort is not None:
            a = fspec.config.abort
            out["abort"] = {
                "httpStatus": a.http_status,
                "percentage": {"value": _number(a.percentage)},
            }
        route["fault"] = out
    headers = policies.get("HeaderManipulationPolicy")
    if headers is not None:
        hspec: HeaderManipulationPolicySpec = headers.spec
        block = header_block(hspec)
        if not block:
            pass
        elif header_destinations is not None:
            for j, destination in enumerate(route.get("route", ())):
                if j in header_destinations:
                    destination["headers"] = block
        else:
            route["headers"] = block


def header_block(spec: HeaderManipulationPolicySpec) -> dict[str, Any]:
    c = spec.config
    out: dict[str, Any] = {}
    for side, add, remove in (
        ("request", c.append_request_headers, c.remove_request_headers),
        ("response", c.append_response_headers, c.remove_response_headers),
    ):
        ops: dict[str, Any] = {}
        if add:
            ops["add"] = dict(sorted(add.items()))
        if remove:
            ops["remove"] = sorted(remove)
        if ops:
            out[side] = ops
    return out


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
