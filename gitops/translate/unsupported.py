"""Fields that load (they are valid Gloo config) but are not translated by this version.

Called once per translation by `translate`. Each field a user set that we do not
turn into Istio config is an `UnsupportedField` warning naming the field, so nothing
is ignored silently; the rest of the resource is translated. The table below is
the single list of such fields (docs/kinds.md mirrors it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.reasons import Reason

#: kind -> (camelCase field path, `[]` = every list item; what happens instead)
NOT_TRANSLATED: dict[str, tuple[tuple[str, str], ...]] = {
    "RouteTable": (
        ("tcp", "tcp routes are not translated yet; ignored"),
        ("tls", "tls routes are not translated yet; ignored"),
        ("applyToDestinations", "destination-scoped route tables are not translated yet; ignored"),
        ("portalMetadata", "portal metadata has no Istio equivalent; ignored"),
        ("http[].graphql", "graphql routes are not translated; the route is dropped"),
        ("http[].forwardTo.autoHostRewrite", "autoHostRewrite has no Istio equivalent; ignored"),
        ("http[].delegate.allowedRoutes", "allowedRoutes filters are not applied yet; ignored"),
    ),
    "VirtualGateway": (
        ("listeners[].exposedExternalServices", "ExternalService exposure is not translated yet"),
        ("listeners[].allowedRouteTables[].allowedRoutes", "route filters are not applied yet"),
        ("listeners[].appProtocol", "appProtocol is not translated yet; ignored"),
    ),
    "VirtualDestination": (
        ("clientMode", "client modes are not translated yet; SNI passthrough is used"),
        ("externalServices", "ExternalService backends are not translated yet; ignored"),
        ("externalWorkloads", "external workloads are not translated yet; ignored"),
    ),
    # Loaded and validated; their translation is being built (issue 3).
    "AccessPolicy": (("config", "AccessPolicy is not translated yet; nothing is emitted"),),
    "JWTPolicy": (("config", "JWTPolicy is not translated yet; nothing is emitted"),),
    "ExternalService": (("ports", "ExternalService is not translated yet; nothing is emitted"),),
    "WorkspaceSettings": (
        ("options.serviceIsolation", "service isolation is not translated yet; ignored"),
        ("options.federation", "federation is not translated yet; ignored"),
        (
            "options.eastWestGateways",
            "east-west gateway selection is not translated yet; "
            "gateways labelled istio: eastwestgateway are used",
        ),
        ("options.virtualDestClientMode", "client modes are not translated yet; ignored"),
        ("options.trimAllProxyConfig", "trimming proxy config is not translated yet; ignored"),
    ),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _set_values(value: Any, parts: list[str], where: str) -> Iterator[str]:
    """Paths (with indexes) under which the field named by `parts` is set to something."""
    if not parts:
        if value not in (None, [], {}, False):
            yield where
        return
    part, rest = parts[0], parts[1:]
    many = part.endswith("[]")
    name = part.removesuffix("[]")
    if not isinstance(value, BaseModel) or _snake(name) not in value.model_fields_set:
        return
    child = getattr(value, _snake(name))
    here = f"{where}.{name}"
    if many:
        for i, item in enumerate(child):
            yield from _set_values(item, rest, f"{here}[{i}]")
    else:
        yield from _set_values(child, rest, here)


def check(objects: Iterator[ConfigObject[Any]]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for obj in objects:
        for path, what in NOT_TRANSLATED.get(obj.kind, ()):
            for field in _set_values(obj.spec, path.split("."), "spec"):
                out.append(Diagnostic(Reason.UnsupportedField, what, obj.source, obj.ref, field))
    return out
