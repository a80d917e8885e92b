"""Route tables flattened: delegation resolved, matchers in Istio form, names fixed.

Cluster-independent work done once per root RouteTable, before any cluster is
rendered; `virtual_service` then turns the flat routes into HTTPRoute dicts per
cluster. Rules (gloo-semantics.md 1.2 and 3.4):

- route names in the VirtualService are `{route}-{table}`; an unnamed route is
  `route-{index}`; a name used twice in one table becomes `duplicate-{name}-{n}`;
  a leading `insecure-` is trimmed;
- no matchers means `uri.prefix: /`; each Gloo matcher becomes one Istio match;
- delegation: children are the RouteTables the parent's workspace can see that
  match one of `delegate.routeTables`; with TABLE_WEIGHT they are ordered by
  `weight` (highest first, then namespace/name), with ROUTE_SPECIFICITY their
  routes are ordered most specific first; child matchers are ANDed with the
  parent's; a combination that cannot be expressed replaces the route with a 500
  direct response (`DelegationMatcherConflict`); cycles are `DelegationCycle`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.common import DestinationReference, HTTPRequestMatcher
from gitops.models.networking import HTTPRoute, RouteTableSpec
from gitops.reasons import Reason
from gitops.selectors import object_match
from gitops.translate.context import Context

Match = dict[str, Any]
Table = ConfigObject[RouteTableSpec]
_ROOT_MATCH: Match = {"uri": {"prefix": "/"}}


@dataclass(frozen=True, slots=True)
class FlatRoute:
    """One route of a root table after delegation, with its Istio matches."""

    table: Table  # the table that defines the route (a child, for delegated routes)
    index: int
    route: HTTPRoute
    name: str
    matches: tuple[Match, ...]
    #: Set when the route cannot be translated as written (replaced by a 500 response).
    replaced: Diagnostic | None = None

    @property
    def key(self) -> tuple[ObjectRef, int]:
        return (self.table.ref, self.index)

    @property
    def field(self) -> str:
        return f"spec.http[{self.index}]"

    @property
    def destinations(self) -> list[DestinationReference]:
        """forwardTo destinations; an empty list means the table's `defaultDestination`."""
        forward = self.route.forward_to
        if forward is None:
            return []
        if forward.destinations:
            return list(forward.destinations)
        default = self.table.spec.default_destination
        return [default] if default is not None else []


class _Conflict(Exception):
    pass


def _string_match(value: str, *, regex: bool) -> dict[str, str]:
    return {"regex": value} if regex else {"exact": value}


def to_istio(m: HTTPRequestMatcher) -> Match:
    """One Gloo HTTPRequestMatcher as an Istio HTTPMatchRequest (without sourceLabels)."""
    out: Match = {}
    if m.name:
        out["name"] = m.name
    if m.uri is not None:
        u = m.uri
        if u.exact is not None:
            out["uri"] = {"exact": u.exact}
        elif u.prefix is not None:
            out["uri"] = {"prefix": u.prefix}
        elif u.regex is not None:
            out["uri"] = {"regex": u.regex}
        elif u.suffix is not None:
            out["uri"] = {"regex": ".*" + re.escape(u.suffix)}
        if u.ignore_case:
            out["ignoreUriCase"] = True
    headers: dict[str, Any] = {}
    without: dict[str, Any] = {}
    for h in m.headers:
        # A header matcher without a value checks presence: an empty StringMatch in Istio.
        value = {} if h.value is None else _string_match(h.value, regex=h.regex)
        (without if h.invert_match else headers)[h.name] = value
    if headers:
        out["headers"] = headers
    if without:
        out["withoutHeaders"] = without
    params = {
        q.name: {"regex": ".*"} if q.value is None else _string_match(q.value, regex=q.regex)
        for q in m.query_parameters
    }
    if params:
        out["queryParams"] = params
    if m.method:
        out["method"] = {"exact": m.method.upper()}
    if m.port is not None:
        out["port"] = m.port
    return out


def matches_of(route: HTTPRoute) -> tuple[Match, ...]:
    return tuple(to_istio(m) for m in route.matchers) or (_ROOT_MATCH,)


def _and_uri(parent: dict[str, str], child: dict[str, str]) -> dict[str, str]:
    (pk, pv), (ck, cv) = next(iter(parent.items())), next(iter(child.items()))
    if (pk, pv) == (ck, cv):
        return child
    if pk == "prefix" and ck in ("prefix", "exact") and cv.startswith(pv):
        return child
    if ck == "prefix" and pk in ("prefix", "exact") and pv.startswith(cv):
        return parent
    raise _Conflict(f"uri {ck} {cv!r} is not inside the delegating route's {pk} {pv!r}")


def _and_maps(name: str, parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        if key in out and out[key] != value:
            raise _Conflict(f"{name} {key!r} is matched differently by parent and child")
        out[key] = value
    return out


def and_matches(parent: Match, child: Match) -> Match:
    """Both matches at once, or `_Conflict` if Istio cannot express that."""
    out = dict(parent)
    for key, value in child.items():
        if key not in out:
            out[key] = value
        elif key == "uri":
            out[key] = _and_uri(out[key], value)
        elif key in ("headers", "withoutHeaders", "queryParams"):
            out[key] = _and_maps(key, out[key], value)
        elif out[key] != value:
            raise _Conflict(f"{key} is matched differently by parent and child")
    if parent.get("ignoreUriCase") != child.get("ignoreUriCase") and "uri" in child:
        out["ignoreUriCase"] = bool(child.get("ignoreUriCase"))
    return out


def specificity(route: FlatRoute) -> tuple[int, int, int, int, int]:
    """Sort key, most specific first: exact > regex > prefix (longer first), then
    more headers, more query parameters, a method (1.x's ordering, spec 3.4)."""
    m = route.matches[0]
    uri = m.get("uri", {"prefix": "/"})
    kind, value = next(iter(uri.items()))
    rank = {"exact": 0, "regex": 1, "prefix": 2}.get(kind, 3)
    return (
        rank,
        -len(value),
        -len(m.get("headers", {})),
        -len(m.get("queryParams", {})),
        0 if "method" in m else 1,
    )


def emitted(flat: list[FlatRoute]) -> list[tuple[FlatRoute, str]]:
    """The routes a root table's VirtualServices hold, with their names there.

    Delegating and graphql routes are not emitted (unless replaced by a 500), and a child
    table delegated to twice lands twice: Istio wants names unique in a VirtualService, so
    the second copy gets `-2`. The JWT EnvoyFilters match routes by these names.
    """
    used: dict[str, int] = {}
    out: list[tuple[FlatRoute, str]] = []
    for fr in flat:
        if fr.replaced is None and (fr.route.delegate is not None or fr.route.graphql is not None):
            continue
        seen = used.get(fr.name, 0)
        used[fr.name] = seen + 1
        out.append((fr, f"{fr.name}-{seen + 1}" if seen else fr.name))
    return out


def route_names(table: Table) -> list[str]:
    """VirtualService route names for each of a table's http routes."""
    seen: dict[str, int] = {}
    out = []
    for i, route in enumerate(table.spec.http):
        base = (route.name or f"route-{i}").removeprefix("insecure-")
        count = seen.get(base, 0)
        seen[base] = count + 1
        name = base if count == 0 else f"duplicate-{base}-{count}"
        out.append(f"{name}-{table.name}")
    return out


class Flattener:
    """Flattens root tables; collects diagnostics about delegation."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tables: tuple[Table, ...] = ctx.of_kind("RouteTable")
        self.diagnostics: list[Diagnostic] = []
        self._names: dict[ObjectRef, list[str]] = {}
        self._reported: set[tuple[ObjectRef, int, str]] = set()

    def _report(self, d: Diagnostic, key: tuple[ObjectRef, int]) -> None:
        if (key[0], key[1], d.reason.name) not in self._reported:
            self._reported.add((key[0], key[1], d.reason.name))
            self.diagnostics.append(d)

    def names(self, table: Table) -> list[str]:
        if table.ref not in self._names:
            self._names[table.ref] = route_names(table)
        return self._names[table.ref]

    def children(self, table: Table, route: HTTPRoute) -> list[Table]:
        assert route.delegate is not None
        ws = self.ctx.workspace_of[table.ref]
        found = []
        for child in self.tables:
            if child.ref == table.ref:
                continue
            target = self.ctx.target(child)
            owner = target.workspace
            if owner is None or not self.ctx.visibility.can_see(ws, owner, "ROUTE_TABLE", target):
                continue
            if any(object_match(sel, target) for sel in route.delegate.route_tables):
                found.append(child)
        found.sort(key=lambda t: (-t.spec.weight, t.namespace, t.name))
        return found

    def flatten(self, root: Table) -> list[FlatRoute]:
        return self._walk(root, None, (root.ref,))

    def _walk(
        self, table: Table, parent_matches: tuple[Match, ...] | None, path: tuple[ObjectRef, ...]
    ) -> list[FlatRoute]:
        out: list[FlatRoute] = []
        names = self.names(table)
        for i, route in enumerate(table.spec.http):
            own = matches_of(route)
            if parent_matches is None:
                combined: tuple[Match, ...] | None = own
                conflict = None
            else:
                combined, conflict = self._combine(parent_matches, own)
            if route.delegate is None:
                replaced = None
                if conflict is not None:
                    replaced = Diagnostic(
                        Reason.DelegationMatcherConflict,
                        f"route {names[i]}: {conflict}; replaced by a 500 direct response",
                        table.source,
                        table.ref,
                        f"spec.http[{i}].matchers",
                    )
                    self._report(replaced, (table.ref, i))
                # A replaced route keeps the delegating route's matchers: the child's own
                # would reach outside the parent's scope and shadow other routes of the host.
                matches = combined or (parent_matches if replaced and parent_matches else own)
                out.append(FlatRoute(table, i, route, names[i], matches, replaced))
                continue
            if conflict is not None:
                d = Diagnostic(
                    Reason.DelegationMatcherConflict,
                    f"route {names[i]}: {conflict}",
                    table.source,
                    table.ref,
                    f"spec.http[{i}].matchers",
                )
                self._report(d, (table.ref, i))
                out.append(FlatRoute(table, i, route, names[i], own, d))
                continue
            assert combined is not None
            out.extend(self._delegate(table, i, route, combined, path))
        return out

    def _combine(
        self, parents: tuple[Match, ...], own: tuple[Match, ...]
    ) -> tuple[tuple[Match, ...] | None, str | None]:
        combined = []
        problem = None
        for p in parents:
            for c in own:
                try:
                    combined.append(and_matches(p, c))
                except _Conflict as exc:
                    problem = str(exc)
        if not combined:
            return None, problem
        return tuple(combined), None

    def _delegate(
        self,
        table: Table,
        i: int,
        route: HTTPRoute,
        matches: tuple[Match, ...],
        path: tuple[ObjectRef, ...],
    ) -> list[FlatRoute]:
        assert route.delegate is not None
        children = self.children(table, route)
        field = f"spec.http[{i}].delegate"
        if not children:
            self._report(
                Diagnostic(
                    Reason.NothingSelected,
                    f"route {self.names(table)[i]} delegates to no RouteTable it can see",
                    table.source,
                    table.ref,
                    field,
                ),
                (table.ref, i),
            )
            return []
        out: list[FlatRoute] = []
        for child in children:
            if child.ref in path:
                cycle = " -> ".join(f"{r.namespace}/{r.name}" for r in (*path, child.ref))
                self._report(
                    Diagnostic(
                        Reason.DelegationCycle,
                        f"delegation cycle: {cycle}",
                        table.source,
                        table.ref,
                        field,
                    ),
                    (table.ref, i),
                )
                continue
            out.extend(self._walk(child, matches, (*path, child.ref)))
        if route.delegate.sort_method == "ROUTE_SPECIFICITY":
            out.sort(key=specificity)
        return out
