"""The EnvoyFilter config patches that put a proxy's JWT policies in place.

Called by `envoy_filter` per proxy and cluster, with the proxy's policies already built
by `jwt.build` (oldest first); `segments` then cuts the patches into EnvoyFilters.
Rules (gloo-semantics.md 3.4, 6):

- per listener port, one `HTTP_FILTER` `INSERT_BEFORE` `envoy.filters.http.router`
  matched on `listener{portNumber, filterChain.filter{http_connection_manager,
  subFilter router}}` (no `portNumber` for sidecars: every outbound HTTP listener),
  inserting `envoy.filters.http.jwt_authn` with every provider and requirement of the
  proxy. The same config goes on every port, so a route names a requirement that exists
  wherever it is served;
- a config too big for one EnvoyFilter spills: the insert keeps entries (providers, then
  the policy's requirement; oldest policy first) while they fit, and each other entry is a
  `MERGE` patch on the inserted filter (Istio merges them into it after every insert,
  maps entry by entry). A policy with one entry bigger than an EnvoyFilter is left out
  whole, so no requirement ever names a missing provider (Envoy would refuse the listener);
- per protected route, one `HTTP_ROUTE` `MERGE` matched on
  `routeConfiguration.vhost.route.name`, with no port (the route names its requirement
  on every listener that serves it), setting `typed_per_filter_config` to
  `PerRouteConfig{requirement_name}`. A route whose requirement is missing gets 403 from
  Envoy: failing closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops.translate import jwt, segments
from gitops.translate.outputs import MAX_OBJECT_BYTES
from gitops.translate.segments import Patch

HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
#: Largest jwt_authn config kept in one patch: leaves room for the EnvoyFilter's metadata
#: under `MAX_OBJECT_BYTES - segments.MARGIN`.
FILTER_BUDGET = MAX_OBJECT_BYTES - segments.MARGIN - 48 * 1024

#: One map entry of `JwtAuthentication`: (policy config, field, key, value, size).
_Entry = tuple[jwt.PolicyConfig, str, str, Any, int]


def filter_patches(
    context: str, ports: Sequence[int | None], configs: Sequence[jwt.PolicyConfig]
) -> tuple[list[Patch], list[tuple[jwt.PolicyConfig, int]]]:
    """The jwt_authn insert (and spill-over merges) for each listener port; and the policies
    left out because one of their entries alone is bigger than an EnvoyFilter."""
    entries: list[_Entry] = []
    oversize: list[tuple[jwt.PolicyConfig, int]] = []
    for c in configs:
        items: list[tuple[str, str, Any]] = [("providers", k, v) for k, v in c.providers.items()]
        if c.requirement is not None:
            items.append(("requirement_map", jwt.requirement_key(c.policy), c.requirement))
        sized = [(c, field, key, value, segments.size({key: value})) for field, key, value in items]
        biggest = max((e[4] for e in sized), default=0)
        if biggest > FILTER_BUDGET:
            oversize.append((c, biggest))
        else:
            entries.extend(sized)
    kept, used = 0, 0
    while kept < len(entries) and used + entries[kept][4] <= FILTER_BUDGET:
        used += entries[kept][4]
        kept += 1
    # With nothing enforceable the filter still goes in: the routes then get 403.
    owners = _policies(entries[:kept]) or tuple(c.policy for c in configs)
    insert = _filter_value(entries[:kept])
    patches: list[Patch] = []
    for port in ports:
        label = "outbound" if port is None else str(port)
        patches.append(
            Patch(
                {
                    "applyTo": "HTTP_FILTER",
                    "match": listener_match(context, port, ROUTER),
                    "patch": {"operation": "INSERT_BEFORE", "value": insert},
                },
                owners,
                tuple(p.source.file for p in owners),
                label,
                jwt.JWT_FILTER,
            )
        )
        for entry in entries[kept:]:
            policy = entry[0].policy
            patches.append(
                Patch(
                    {
                        "applyTo": "HTTP_FILTER",
                        "match": listener_match(context, port, jwt.JWT_FILTER),
                        "patch": {"operation": "MERGE", "value": _filter_value([entry])},
                    },
                    (policy,),
                    (policy.source.file,),
                    label,
                    jwt.JWT_FILTER,
                )
            )
    return patches, oversize


def route_patches(context: str, routes: Mapping[str, tuple[jwt.Policy, str]]) -> list[Patch]:
    """One HTTP_ROUTE MERGE per protected route: `routes` maps a VirtualService route name
    to its policy and the file of the table that defines the route."""
    patches = []
    for name, (policy, table_file) in sorted(routes.items()):
        per_route = {"@type": jwt.PER_ROUTE_TYPE, "requirement_name": jwt.requirement_key(policy)}
        patches.append(
            Patch(
                {
                    "applyTo": "HTTP_ROUTE",
                    "match": {
                        "context": context,
                        "routeConfiguration": {"vhost": {"route": {"name": name}}},
                    },
                    "patch": {
                        "operation": "MERGE",
                        "value": {"typed_per_filter_config": {jwt.JWT_FILTER: per_route}},
                    },
                },
                (policy,),
                (policy.source.file, table_file),
                "",
                name,
            )
        )
    return patches


def listener_match(context: str, port: int | None, sub_filter: str) -> dict[str, Any]:
    """An HTTP filter of the connection manager, on one listener port (any when None)."""
    listener: dict[str, Any] = {
        "filterChain": {"filter": {"name": HCM, "subFilter": {"name": sub_filter}}}
    }
    if port is not None:
        listener["portNumber"] = port
    return {"context": context, "listener": listener}


def _filter_value(entries: Sequence[_Entry]) -> dict[str, Any]:
    typed: dict[str, Any] = {"@type": jwt.JWT_TYPE}
    for _, field, key, value, _ in entries:
        typed.setdefault(field, {})[key] = value
    return {"name": jwt.JWT_FILTER, "typed_config": typed}


def _policies(entries: Sequence[_Entry]) -> tuple[jwt.Policy, ...]:
    found: dict[Any, jwt.Policy] = {}
    for entry in entries:
        found.setdefault(entry[0].policy.ref, entry[0].policy)
    return tuple(found.values())
