"""Selectors, references and matchers shared by the Gloo kinds (`common.gloo.solo.io`).

Sits under every kind module (`admin`, `networking`, `policies`); the translators
read these types when they resolve selectors and references (gloo-semantics.md
section 1.1). Field names are the JSON names of solo-apis
`api/gloo.solo.io/common/v2/{selectors,references,http_matchers,string_match,port,
clientmode,locality}.proto`.

Also holds the small rule helpers the kinds share: oneof checks, the hostname
rule, destination weights, and `MsDuration` (Gloo refuses sub-millisecond
durations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from gitops import durations
from gitops.models.base import GlooModel, Labels, Port, PositiveDuration

# -- rule helpers -------------------------------------------------------------------------


def _json_names(model: GlooModel, fields: Sequence[str]) -> list[str]:
    """The YAML (camelCase) names of the fields of `model` that are set (not None)."""
    info = type(model).model_fields
    return [info[f].alias or f for f in fields if getattr(model, f) is not None]


def at_most_one(model: GlooModel, *fields: str) -> None:
    """Raise if more than one field of a proto `oneof` is set."""
    present = _json_names(model, fields)
    if len(present) > 1:
        raise ValueError(f"set at most one of {_names(model, fields)}; found {_joined(present)}")


def exactly_one(model: GlooModel, *fields: str) -> None:
    """Raise unless exactly one field of a required proto `oneof` is set."""
    present = _json_names(model, fields)
    if len(present) != 1:
        found = _joined(present) if present else "none"
        raise ValueError(f"set exactly one of {_names(model, fields)}; found {found}")


def _names(model: GlooModel, fields: Sequence[str]) -> str:
    info = type(model).model_fields
    return _joined([info[f].alias or f for f in fields])


def _joined(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _whole_millis(nanos: int) -> int:
    # Gloo's CRDs: "The value cannot have granularity smaller than one millisecond."
    if nanos % 1_000_000:
        raise ValueError(
            f"duration {durations.to_proto(nanos)} is not a whole number of milliseconds "
            "(Gloo refuses sub-millisecond durations such as '1.5ms')"
        )
    return nanos


#: A duration of at least 1ms, in whole milliseconds (Gloo's rule for every policy duration).
MsDuration = Annotated[PositiveDuration, AfterValidator(_whole_millis)]

# One DNS label (RouteTable/VirtualDestination host rules, route_table.proto `hosts`).
_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")
# The left-most label of a wildcard host: `*`, `*bar`, `*-bar` (route_table.proto `hosts`).
_WILDCARD_LABEL = re.compile(r"\*[-a-zA-Z0-9]*")


def hostname_problem(host: str, *, allow_wildcard: bool) -> str | None:
    """Why `host` breaks Gloo's hostname rules, or None if it is valid.

    Rules of route_table.proto / virtual_destination `hosts`: 1-255 characters of
    `a-z A-Z 0-9 - .`; each label 1-63 characters matching `[a-zA-Z0-9]([-a-zA-Z0-9]*
    [a-zA-Z0-9])?`; the last label is not all digits and may be empty (`istio.io.`).
    With `allow_wildcard`, `*` may open the left-most label only (`*.foo.com`,
    `*-bar.foo.com`); a bare `"*"` is refused (Gloo 2.6 validation).
    """
    if not 1 <= len(host) <= 255:
        return f"host {host!r} must be 1-255 characters long"
    if host == "*":
        return "host '*' is not allowed; put the wildcard on a domain, e.g. '*.example.com'"
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels = labels[:-1]  # a trailing dot is an absolute name
    for i, label in enumerate(labels):
        if "*" in label:
            if not allow_wildcard:
                return f"host {host!r} must not contain a wildcard '*'"
            if i != 0 or not _WILDCARD_LABEL.fullmatch(label):
                return (
                    f"host {host!r}: '*' is allowed only at the start of the left-most label "
                    "(e.g. '*.example.com')"
                )
            if len(labels) == 1:
                return f"host {host!r}: a wildcard host needs a domain after it ('*.example.com')"
            continue
        if not 1 <= len(label) <= 63 or not _LABEL.fullmatch(label):
            return (
                f"host {host!r}: label {label!r} must be 1-63 letters, digits or '-', "
                "starting and ending with a letter or digit"
            )
    if labels[-1].isdigit():
        return f"host {host!r}: the top-level label must not be all digits"
    return None


def _route_host(host: str) -> str:
    if host == "*":
        return host  # allowed on gateway-only tables; RouteTableSpec decides
    problem = hostname_problem(host, allow_wildcard=True)
    if problem:
        raise ValueError(problem)
    return host


def _exact_host(host: str) -> str:
    problem = hostname_problem(host, allow_wildcard=False)
    if problem:
        raise ValueError(problem)
    return host


#: A RouteTable host: `*` only at the start of the left-most label; bare `*` is checked by
#: RouteTableSpec (gateway-only tables may use it).
RouteHost = Annotated[str, AfterValidator(_route_host)]
#: A host without any wildcard (VirtualDestination `hosts`).
ExactHost = Annotated[str, AfterValidator(_exact_host)]


def weights_problem(weights: Sequence[int | None], what: str = "destination") -> str | None:
    """Why a list of destination weights is invalid, or None.

    route_table.proto `ForwardToAction.destinations`: weights across all destinations
    must sum to 100; if the set weights sum to less, the remainder is shared by the
    destinations without a weight, at least 1 each. One destination: weight ignored
    (references.proto: "only relevant ... with multiple destinations").
    """
    if len(weights) < 2:
        return None
    total = sum(w for w in weights if w is not None)
    unset = sum(1 for w in weights if w is None)
    if unset == 0 and total != 100:
        return f"{what} weights sum to {total}; they must sum to 100"
    if unset and 100 - total < unset:
        return (
            f"{what} weights sum to {total}, leaving {100 - total} for {unset} {what}(s) "
            "without a weight (each needs at least 1)"
        )
    return None


def split_weights(weights: Sequence[int | None]) -> list[int]:
    """Effective weights (summing to 100) for weights that passed `weights_problem`.

    The remainder is split evenly over unset weights, leftover units to the first
    ones [I: Gloo does not say how it rounds].
    """
    if len(weights) == 1:
        return [100]
    unset = sum(1 for w in weights if w is None)
    if not unset:
        return [w or 0 for w in weights]
    share, extra = divmod(100 - sum(w for w in weights if w is not None), unset)
    out: list[int] = []
    for w in weights:
        if w is None:
            out.append(share + (1 if extra > 0 else 0))
            extra -= 1
        else:
            out.append(w)
    return out


# -- selectors (selectors.proto) ------------------------------------------------------------

DestinationKind = Literal["SERVICE", "VIRTUAL_DESTINATION", "EXTERNAL_SERVICE"]


class ObjectSelector(GlooModel):
    """Selects objects; set fields are ANDed, unset ones match anything visible."""

    labels: Labels = Field(default_factory=dict)
    name: str | None = None
    namespace: str | None = None
    cluster: str | None = None
    workspace: str | None = None


class PortSelector(GlooModel):
    """A port by number or by name (port.proto `oneof specifier`)."""

    number: Port | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_specifier(self) -> Self:
        exactly_one(self, "number", "name")
        return self


class DestinationSelector(GlooModel):
    """Selects Services, VirtualDestinations or ExternalServices; no port = every port."""

    selector: ObjectSelector | None = None
    kind: DestinationKind = "SERVICE"
    port: PortSelector | None = None


class RouteLabelSelector(GlooModel):
    """Selects routes by the labels of the route or of its route table (no `name`)."""

    labels: Labels = Field(default_factory=dict)
    namespace: str | None = None
    cluster: str | None = None
    workspace: str | None = None


class RouteSelector(GlooModel):
    """Selects routes by labels or by their `forwardTo` destinations (`oneof selector_type`)."""

    route: RouteLabelSelector | None = None
    with_destinations: DestinationSelector | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        at_most_one(self, "route", "with_destinations")
        return self


class RouteDestinationSelector(GlooModel):
    """Selects destinations inside the routes selected by `route` (empty = every route)."""

    route: RouteLabelSelector | None = None
    on_destinations: list[DestinationSelector] = Field(default_factory=list)


class WorkloadSelector(GlooModel):
    """Selects workloads (pods, or VMs) by their metadata."""

    selector: ObjectSelector | None = None
    kind: Literal["KUBE", "VM"] = "KUBE"
    port: PortSelector | None = None


class WorkspaceSelector(GlooModel):
    """Selects workspaces by name (exact or `*` glob) and/or by Workspace labels."""

    name: str | None = None
    selector: Labels = Field(default_factory=dict)


class AwsFilter(GlooModel):
    """cloud_provider_options.proto `AWSFilterOptions`."""

    account_ids: list[str] = Field(default_factory=list)
    iam_roles: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    lambda_functions: list[str] = Field(default_factory=list)


class CloudProviderFilter(GlooModel):
    """cloud_provider_options.proto `CloudProviderFilterOptions` (`oneof`: only `aws`)."""

    aws: AwsFilter | None = None


class RouteFilter(GlooModel):
    """`allowedRoutes` entry: restricts routes by the cloud functions they use."""

    cloud_provider: CloudProviderFilter | None = None


# -- references (references.proto) -----------------------------------------------------------


class ObjectReference(GlooModel):
    """One object; missing namespace/cluster default to those of the referring object."""

    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    cluster: str | None = None


class DestinationReference(GlooModel):
    """A route destination. `weight` is 0-100; see `weights_problem` for the sum rule."""

    ref: ObjectReference
    kind: DestinationKind = "SERVICE"
    port: PortSelector | None = None
    subset: Labels = Field(default_factory=dict)
    weight: Annotated[int, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _subset_not_empty(self) -> Self:
        # route_table.proto: "A destination `subset` must not be set to the empty object {}".
        if "subset" in self.model_fields_set and not self.subset:
            raise ValueError("'subset' must not be an empty map; omit it to use every endpoint")
        return self


# -- matchers (http_matchers.proto, string_match.proto) ---------------------------------------


class StringMatch(GlooModel):
    """A path match (`oneof match_type`). Gloo documents `suffix` as unsupported."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None
    suffix: str | None = None
    ignore_case: bool = False

    @model_validator(mode="after")
    def _one_match(self) -> Self:
        at_most_one(self, "exact", "prefix", "regex", "suffix")
        return self


class HeaderMatcher(GlooModel):
    """A request header; no `value` matches any value of a present header."""

    name: Annotated[str, Field(min_length=1)]
    value: str | None = None
    regex: bool = False
    invert_match: bool = False


class QueryParameterMatcher(GlooModel):
    """A query parameter; `regex` makes `value` a regular expression."""

    name: Annotated[str, Field(min_length=1)]
    value: str | None = None
    regex: bool = False


class HTTPRequestMatcher(GlooModel):
    """All set conditions must match. `name` is accepted but unsupported by Gloo."""

    name: str | None = None
    uri: StringMatch | None = None
    headers: list[HeaderMatcher] = Field(default_factory=list)
    query_parameters: list[QueryParameterMatcher] = Field(default_factory=list)
    method: str | None = None
    port: Port | None = None


# -- client mode and locality ---------------------------------------------------------------


class Empty(GlooModel):
    """`google.protobuf.Empty`: written `{}` in YAML."""


class ClientMode(GlooModel):
    """clientmode.proto: how cross-cluster traffic crosses the east-west gateway."""

    auto: Empty | None = None
    sni_routing: Empty | None = None
    tls_termination: Empty | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        at_most_one(self, "auto", "sni_routing", "tls_termination")
        return self


class Locality(GlooModel):
    """locality.proto: region, then optional zone and sub-zone."""

    region: Annotated[str, Field(min_length=1)]
    zone: str | None = None
    sub_zone: str | None = None
